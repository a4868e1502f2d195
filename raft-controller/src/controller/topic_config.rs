//! Topic config validation for the controller: the names, types and bounds are kafka-core's
//! table of Kafka topic configs; unknown names and bad values are INVALID_CONFIG, as in Kafka.

use std::collections::BTreeMap;

use kafka_core::TopicConfigError;

use crate::error::ControllerError;

fn refused(e: TopicConfigError) -> ControllerError {
    ControllerError::InvalidConfig(e.to_string())
}

/// Checks that `name` is a topic-level config.
pub(crate) fn validate_name(name: &str) -> Result<(), ControllerError> {
    match kafka_core::topic_config(name) {
        Some(_) => Ok(()),
        None => Err(refused(TopicConfigError::UnknownName(name.to_string()))),
    }
}

/// Validates one topic config.
pub(crate) fn validate(name: &str, value: &str) -> Result<(), ControllerError> {
    kafka_core::parse_topic_config(name, value)
        .map(drop)
        .map_err(refused)
}

/// Validates every config of a create request.
pub(crate) fn validate_all(configs: &BTreeMap<String, String>) -> Result<(), ControllerError> {
    configs.iter().try_for_each(|(k, v)| validate(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_pass_through() {
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate_all(
            &[("cleanup.policy".to_string(), "compact".to_string())]
                .into_iter()
                .collect()
        )
        .is_ok());
    }

    #[test]
    fn names_are_checked_for_deletes() {
        assert!(validate_name("retention.ms").is_ok());
        assert!(matches!(
            validate_name("no.such.config"),
            Err(ControllerError::InvalidConfig(_))
        ));
    }

    #[test]
    fn unknown_names_and_bad_values_are_invalid_config() {
        // The value rules themselves are kafka-core's and tested there.
        for (k, v) in [("no.such.config", "1"), ("retention.ms", "soon")] {
            assert!(
                matches!(validate(k, v), Err(ControllerError::InvalidConfig(_))),
                "{k}={v}"
            );
        }
    }
}

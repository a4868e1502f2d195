//! Topic-level configs as the broker serves them: the subset of kafka-core's table Rivulet
//! honours, the broker-side checks on top of Kafka's, broker-level defaults, and the log
//! settings the configs turn into.

use std::collections::BTreeMap;

use kafka_core::TopicConfig;
use storage::LogConfig;

use crate::config::BrokerConfig;

/// The topic configs Rivulet honours (DescribeConfigs lists these; others are refused).
pub fn topic_configs() -> impl Iterator<Item = &'static TopicConfig> {
    kafka_core::TOPIC_CONFIGS.iter().filter(|d| d.honoured)
}

/// Looks up a topic config Rivulet honours.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfig> {
    kafka_core::topic_config(name).filter(|d| d.honoured)
}

/// Why a topic config is refused (maps to INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTopicConfig(pub String);

/// Checks a full set of topic overrides: honoured names, values Kafka accepts, and only the
/// `producer` compression type (batches are stored as the producer compressed them).
pub fn validate(configs: &BTreeMap<String, String>) -> Result<(), InvalidTopicConfig> {
    for (name, value) in configs {
        let def = topic_config_def(name)
            .ok_or_else(|| InvalidTopicConfig(format!("Unknown topic config name: {name}")))?;
        def.parse(value)
            .map_err(|e| InvalidTopicConfig(e.to_string()))?;
        if name == "compression.type" && value.trim() != "producer" {
            return Err(InvalidTopicConfig(format!(
                "compression.type={value} is not supported: batches are stored as the producer compressed them (use \"producer\")"
            )));
        }
    }
    Ok(())
}

/// The log settings of a topic: broker defaults with the topic's overrides. Overrides were
/// validated when set; one that no longer parses falls back to the default.
pub fn log_config(broker: &BrokerConfig, configs: &BTreeMap<String, String>) -> LogConfig {
    match broker
        .log_defaults
        .with_overrides(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring invalid topic config");
            broker.log_defaults.clone()
        }
    }
}

pub fn min_insync_replicas(broker: &BrokerConfig, configs: &BTreeMap<String, String>) -> i32 {
    configs
        .get("min.insync.replicas")
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(broker.min_insync_replicas)
}

/// The broker's default for a topic config, as a string: the broker setting where the broker
/// has one, else Kafka's default.
pub fn default_value(broker: &BrokerConfig, name: &str) -> Option<String> {
    let def = topic_config_def(name)?;
    Some(match name {
        "min.insync.replicas" => broker.min_insync_replicas.to_string(),
        "unclean.leader.election.enable" => broker.unclean_leader_election.to_string(),
        _ => broker
            .log_defaults
            .to_kafka_pairs()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| def.default.to_string(), |(_, v)| v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;

    fn broker() -> BrokerConfig {
        BrokerConfig::from_properties(Properties::default()).unwrap()
    }

    #[test]
    fn every_topic_config_has_a_default() {
        let b = broker();
        for d in topic_configs() {
            assert!(default_value(&b, d.name).is_some(), "{}", d.name);
        }
    }

    #[test]
    fn validation_rejects_unknown_names_and_bad_values() {
        let configs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(validate(&configs(&[
            ("retention.ms", "1000"),
            ("cleanup.policy", "compact")
        ]))
        .is_ok());
        for refused in [
            ("no.such", "1"),
            ("retention.ms", "soon"),
            ("min.insync.replicas", "0"),
            ("remote.storage.enable", "false"),
            ("compression.type", "zstd"),
        ] {
            assert!(validate(&configs(&[refused])).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn overrides_reach_the_log_config() {
        let b = broker();
        let c: BTreeMap<String, String> = [("retention.ms", "1234"), ("min.insync.replicas", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(log_config(&b, &c).retention_ms, 1234);
        assert_eq!(min_insync_replicas(&b, &c), 2);
    }
}

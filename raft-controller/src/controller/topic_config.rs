//! Topic config validation: the names Kafka accepts as topic-level configs and the type and
//! range of their values. Unknown names and bad values are INVALID_CONFIG, as in Kafka.

use std::collections::BTreeMap;

use crate::error::ControllerError;

/// The value type of a topic config.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Bool,
    Int(i64),
    Long(i64),
    Ratio,
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    Text,
}

const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Topic-level configs (Kafka 3.x/4.x) with their types and lower bounds.
const TOPIC_CONFIGS: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::ListOf(&["compact", "delete"])),
    ("compression.type", Kind::OneOf(COMPRESSION)),
    ("compression.gzip.level", Kind::Int(-1)),
    ("compression.lz4.level", Kind::Int(1)),
    ("compression.zstd.level", Kind::Int(-131072)),
    ("delete.retention.ms", Kind::Long(0)),
    ("file.delete.delay.ms", Kind::Long(0)),
    ("flush.messages", Kind::Long(1)),
    ("flush.ms", Kind::Long(0)),
    ("follower.replication.throttled.replicas", Kind::Text),
    ("index.interval.bytes", Kind::Int(0)),
    ("leader.replication.throttled.replicas", Kind::Text),
    ("local.retention.bytes", Kind::Long(-2)),
    ("local.retention.ms", Kind::Long(-2)),
    ("max.compaction.lag.ms", Kind::Long(1)),
    ("max.message.bytes", Kind::Int(0)),
    ("message.downconversion.enable", Kind::Bool),
    ("message.format.version", Kind::Text),
    ("message.timestamp.after.max.ms", Kind::Long(0)),
    ("message.timestamp.before.max.ms", Kind::Long(0)),
    ("message.timestamp.difference.max.ms", Kind::Long(0)),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
    ),
    ("min.cleanable.dirty.ratio", Kind::Ratio),
    ("min.compaction.lag.ms", Kind::Long(0)),
    ("min.insync.replicas", Kind::Int(1)),
    ("preallocate", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("retention.bytes", Kind::Long(i64::MIN)),
    ("retention.ms", Kind::Long(-1)),
    ("segment.bytes", Kind::Int(14)),
    ("segment.index.bytes", Kind::Int(4)),
    ("segment.jitter.ms", Kind::Long(0)),
    ("segment.ms", Kind::Long(1)),
    ("unclean.leader.election.enable", Kind::Bool),
];

/// Whether `name` is a topic-level config.
pub(crate) fn is_known(name: &str) -> bool {
    TOPIC_CONFIGS.iter().any(|(n, _)| *n == name)
}

/// Validates one topic config.
pub(crate) fn validate(name: &str, value: &str) -> Result<(), ControllerError> {
    let kind = TOPIC_CONFIGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            ControllerError::InvalidConfig(format!("Unknown topic config name: {name}"))
        })?;
    let bad = |why: &str| {
        Err(ControllerError::InvalidConfig(format!(
            "Invalid value {value} for configuration {name}: {why}"
        )))
    };
    let v = value.trim();
    match kind {
        Kind::Bool => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return bad("Expected value to be either true or false");
            }
        }
        Kind::Int(min) => match v.parse::<i32>() {
            Ok(x) if i64::from(x) >= min => {}
            Ok(_) => return bad(&format!("Value must be at least {min}")),
            Err(_) => return bad("Not a number of type INT"),
        },
        Kind::Long(min) => match v.parse::<i64>() {
            Ok(x) if x >= min => {}
            Ok(_) => return bad(&format!("Value must be at least {min}")),
            Err(_) => return bad("Not a number of type LONG"),
        },
        Kind::Ratio => match v.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => {}
            _ => return bad("Value must be a number between 0 and 1"),
        },
        Kind::OneOf(allowed) => {
            if !allowed.contains(&v) {
                return bad(&format!("String must be one of: {}", allowed.join(", ")));
            }
        }
        Kind::ListOf(allowed) => {
            let items: Vec<&str> = v.split(',').map(str::trim).collect();
            if items.iter().any(|i| !allowed.contains(i)) {
                return bad(&format!("Each item must be one of: {}", allowed.join(", ")));
            }
        }
        Kind::Text => {}
    }
    Ok(())
}

/// Validates every config of a create request.
pub(crate) fn validate_all(configs: &BTreeMap<String, String>) -> Result<(), ControllerError> {
    configs.iter().try_for_each(|(k, v)| validate(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_valid_values() {
        for (k, v) in [
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "-1"),
            ("min.insync.replicas", "2"),
            ("unclean.leader.election.enable", "TRUE"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("compression.type", "zstd"),
            ("message.timestamp.type", "LogAppendTime"),
        ] {
            assert!(validate(k, v).is_ok(), "{k}={v}");
        }
    }

    #[test]
    fn rejects_unknown_or_bad_values() {
        for (k, v) in [
            ("no.such.config", "1"),
            ("retention.ms", "-5"),
            ("retention.ms", "soon"),
            ("min.insync.replicas", "0"),
            ("segment.bytes", "99999999999"),
            ("cleanup.policy", "compact,forever"),
            ("preallocate", "yes"),
            ("min.cleanable.dirty.ratio", "1.5"),
        ] {
            assert!(
                matches!(validate(k, v), Err(ControllerError::InvalidConfig(_))),
                "{k}={v}"
            );
        }
    }
}

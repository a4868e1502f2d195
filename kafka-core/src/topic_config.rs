//! The table of Kafka topic-level configs — name, broker-level synonym, type, allowed values,
//! default and doc — and the validation of a value against it. Unknown names and bad values are
//! refused the way Kafka refuses them (`INVALID_CONFIG`, with Kafka's messages).

use crate::config_type::ConfigType;

/// What a value must satisfy beyond parsing as its type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Any value of the type.
    Any,
    /// A number no smaller than this.
    AtLeast(i64),
    /// A number between 0 and 1.
    Fraction,
    /// One of these strings (case-sensitive).
    OneOf(&'static [&'static str]),
    /// A comma-separated list of these strings (case-sensitive, at least one item).
    ListOf(&'static [&'static str]),
}

/// One topic config.
#[derive(Clone, Copy, Debug)]
pub struct TopicConfig {
    pub name: &'static str,
    /// The broker property that sets the cluster-wide default, if Kafka has one.
    pub synonym: Option<&'static str>,
    pub kind: ConfigType,
    pub rule: Rule,
    /// Kafka's default, as `kafka-configs --describe --all` shows it.
    pub default: &'static str,
    pub doc: &'static str,
    /// Whether Rivulet acts on the config. The others are Kafka names the broker refuses rather
    /// than accept and silently ignore.
    pub honoured: bool,
}

/// A parsed config value.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    Boolean(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    String(String),
    List(Vec<String>),
}

/// Why a topic config is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    #[error("Unknown topic config name: {0}")]
    UnknownName(String),
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    InvalidValue {
        name: String,
        value: String,
        reason: String,
    },
}

const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
const LONG_MAX: &str = "9223372036854775807";

#[allow(clippy::too_many_arguments)]
const fn c(
    name: &'static str,
    synonym: Option<&'static str>,
    kind: ConfigType,
    rule: Rule,
    default: &'static str,
    honoured: bool,
    doc: &'static str,
) -> TopicConfig {
    TopicConfig {
        name,
        synonym,
        kind,
        rule,
        default,
        doc,
        honoured,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};
use Rule::{Any, AtLeast, Fraction, ListOf, OneOf};

/// Every topic-level config of Kafka 3.x/4.x, by name.
pub const TOPIC_CONFIGS: &[TopicConfig] = &[
    c(
        "cleanup.policy",
        Some("log.cleanup.policy"),
        List,
        ListOf(CLEANUP_POLICIES),
        "delete",
        true,
        "delete, compact, or both",
    ),
    c(
        "compression.gzip.level",
        Some("compression.gzip.level"),
        Int,
        AtLeast(-1),
        "-1",
        false,
        "Compression level for gzip",
    ),
    c(
        "compression.lz4.level",
        Some("compression.lz4.level"),
        Int,
        AtLeast(1),
        "9",
        false,
        "Compression level for lz4",
    ),
    c(
        "compression.type",
        Some("compression.type"),
        Str,
        OneOf(COMPRESSION_TYPES),
        "producer",
        true,
        "Only \"producer\": batches are stored as produced",
    ),
    c(
        "compression.zstd.level",
        Some("compression.zstd.level"),
        Int,
        AtLeast(-131072),
        "3",
        false,
        "Compression level for zstd",
    ),
    c(
        "delete.retention.ms",
        Some("log.cleaner.delete.retention.ms"),
        Long,
        AtLeast(0),
        "86400000",
        true,
        "How long tombstones survive compaction",
    ),
    c(
        "file.delete.delay.ms",
        Some("log.segment.delete.delay.ms"),
        Long,
        AtLeast(0),
        "60000",
        true,
        "Delay before a deleted segment's file is removed",
    ),
    c(
        "flush.messages",
        Some("log.flush.interval.messages"),
        Long,
        AtLeast(1),
        LONG_MAX,
        true,
        "Records between fsyncs",
    ),
    c(
        "flush.ms",
        Some("log.flush.interval.ms"),
        Long,
        AtLeast(0),
        LONG_MAX,
        true,
        "Time between fsyncs",
    ),
    c(
        "follower.replication.throttled.replicas",
        None,
        List,
        Any,
        "",
        false,
        "Replicas throttled on the follower side",
    ),
    c(
        "index.interval.bytes",
        Some("log.index.interval.bytes"),
        Int,
        AtLeast(0),
        "4096",
        true,
        "Bytes between index entries",
    ),
    c(
        "leader.replication.throttled.replicas",
        None,
        List,
        Any,
        "",
        false,
        "Replicas throttled on the leader side",
    ),
    c(
        "local.retention.bytes",
        Some("log.local.retention.bytes"),
        Long,
        AtLeast(-2),
        "-2",
        false,
        "Local bytes kept with tiered storage",
    ),
    c(
        "local.retention.ms",
        Some("log.local.retention.ms"),
        Long,
        AtLeast(-2),
        "-2",
        false,
        "Local time kept with tiered storage",
    ),
    c(
        "max.compaction.lag.ms",
        Some("log.cleaner.max.compaction.lag.ms"),
        Long,
        AtLeast(1),
        LONG_MAX,
        true,
        "Maximum time a record stays uncompacted",
    ),
    c(
        "max.message.bytes",
        Some("message.max.bytes"),
        Int,
        AtLeast(0),
        "1048588",
        true,
        "Largest record batch accepted",
    ),
    c(
        "message.downconversion.enable",
        Some("log.message.downconversion.enable"),
        Boolean,
        Any,
        "true",
        false,
        "Down-convert records for old consumers",
    ),
    c(
        "message.format.version",
        Some("log.message.format.version"),
        Str,
        Any,
        "3.0-IV1",
        false,
        "Deprecated message format version",
    ),
    c(
        "message.timestamp.after.max.ms",
        Some("log.message.timestamp.after.max.ms"),
        Long,
        AtLeast(0),
        LONG_MAX,
        true,
        "How far in the future a CreateTime timestamp may be",
    ),
    c(
        "message.timestamp.before.max.ms",
        Some("log.message.timestamp.before.max.ms"),
        Long,
        AtLeast(0),
        LONG_MAX,
        true,
        "How far in the past a CreateTime timestamp may be",
    ),
    c(
        "message.timestamp.difference.max.ms",
        Some("log.message.timestamp.difference.max.ms"),
        Long,
        AtLeast(0),
        LONG_MAX,
        false,
        "Deprecated: maximum timestamp difference",
    ),
    c(
        "message.timestamp.type",
        Some("log.message.timestamp.type"),
        Str,
        OneOf(TIMESTAMP_TYPES),
        "CreateTime",
        true,
        "CreateTime or LogAppendTime",
    ),
    c(
        "min.cleanable.dirty.ratio",
        Some("log.cleaner.min.cleanable.ratio"),
        Double,
        Fraction,
        "0.5",
        true,
        "Dirty ratio that triggers compaction",
    ),
    c(
        "min.compaction.lag.ms",
        Some("log.cleaner.min.compaction.lag.ms"),
        Long,
        AtLeast(0),
        "0",
        true,
        "Minimum time a record stays uncompacted",
    ),
    c(
        "min.insync.replicas",
        Some("min.insync.replicas"),
        Int,
        AtLeast(1),
        "1",
        true,
        "Minimum ISR size for acks=all",
    ),
    c(
        "preallocate",
        Some("log.preallocate"),
        Boolean,
        Any,
        "false",
        true,
        "Preallocate segment files",
    ),
    c(
        "remote.storage.enable",
        None,
        Boolean,
        Any,
        "false",
        false,
        "Tiered storage for the topic",
    ),
    c(
        "retention.bytes",
        Some("log.retention.bytes"),
        Long,
        AtLeast(i64::MIN),
        "-1",
        true,
        "Maximum partition size before old segments are deleted",
    ),
    c(
        "retention.ms",
        Some("log.retention.ms"),
        Long,
        AtLeast(-1),
        "604800000",
        true,
        "How long segments are kept",
    ),
    c(
        "segment.bytes",
        Some("log.segment.bytes"),
        Int,
        AtLeast(14),
        "1073741824",
        true,
        "Segment size",
    ),
    c(
        "segment.index.bytes",
        Some("log.index.size.max.bytes"),
        Int,
        AtLeast(4),
        "10485760",
        true,
        "Maximum index file size",
    ),
    c(
        "segment.jitter.ms",
        Some("log.roll.jitter.ms"),
        Long,
        AtLeast(0),
        "0",
        true,
        "Random jitter subtracted from segment.ms",
    ),
    c(
        "segment.ms",
        Some("log.roll.ms"),
        Long,
        AtLeast(1),
        "604800000",
        true,
        "Maximum segment age before rolling",
    ),
    c(
        "unclean.leader.election.enable",
        Some("unclean.leader.election.enable"),
        Boolean,
        Any,
        "false",
        true,
        "Allow leaders outside the ISR",
    ),
];

/// Looks a topic config up by name.
pub fn topic_config(name: &str) -> Option<&'static TopicConfig> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Parses and checks a value of the topic config `name`.
pub fn parse_topic_config(name: &str, value: &str) -> Result<ConfigValue, TopicConfigError> {
    topic_config(name)
        .ok_or_else(|| TopicConfigError::UnknownName(name.to_string()))?
        .parse(value)
}

impl TopicConfig {
    /// Parses `value` (surrounding spaces ignored, as Kafka does) and checks it against the rule.
    pub fn parse(&self, value: &str) -> Result<ConfigValue, TopicConfigError> {
        let bad = |reason: String| TopicConfigError::InvalidValue {
            name: self.name.to_string(),
            value: value.to_string(),
            reason,
        };
        let v = value.trim();
        let parsed = match self.kind {
            ConfigType::Boolean if v.eq_ignore_ascii_case("true") => ConfigValue::Boolean(true),
            ConfigType::Boolean if v.eq_ignore_ascii_case("false") => ConfigValue::Boolean(false),
            ConfigType::Boolean => {
                return Err(bad("Expected value to be either true or false".into()))
            }
            ConfigType::Int | ConfigType::Short => v
                .parse::<i32>()
                .ok()
                .filter(|n| self.kind == ConfigType::Int || i16::try_from(*n).is_ok())
                .map(ConfigValue::Int)
                .ok_or_else(|| bad(format!("Not a number of type {}", type_name(self.kind))))?,
            ConfigType::Long => v
                .parse::<i64>()
                .map(ConfigValue::Long)
                .map_err(|_| bad("Not a number of type LONG".into()))?,
            ConfigType::Double => v
                .parse::<f64>()
                .map(ConfigValue::Double)
                .map_err(|_| bad("Not a number of type DOUBLE".into()))?,
            ConfigType::String | ConfigType::Password => ConfigValue::String(v.to_string()),
            ConfigType::List => {
                ConfigValue::List(v.split(',').map(|i| i.trim().to_string()).collect())
            }
        };
        match (self.rule, &parsed) {
            (Rule::AtLeast(min), ConfigValue::Int(n)) if i64::from(*n) < min => {
                Err(bad(format!("Value must be at least {min}")))
            }
            (Rule::AtLeast(min), ConfigValue::Long(n)) if *n < min => {
                Err(bad(format!("Value must be at least {min}")))
            }
            (Rule::Fraction, ConfigValue::Double(x)) if !(0.0..=1.0).contains(x) => {
                Err(bad("Value must be a number between 0 and 1".into()))
            }
            (Rule::OneOf(allowed), ConfigValue::String(s)) if !allowed.contains(&s.as_str()) => {
                Err(bad(format!(
                    "String must be one of: {}",
                    allowed.join(", ")
                )))
            }
            (Rule::ListOf(allowed), ConfigValue::List(items))
                if items.iter().any(|i| !allowed.contains(&i.as_str())) =>
            {
                Err(bad(format!(
                    "Each item must be one of: {}",
                    allowed.join(", ")
                )))
            }
            _ => Ok(parsed),
        }
    }
}

fn type_name(kind: ConfigType) -> &'static str {
    match kind {
        ConfigType::Short => "SHORT",
        _ => "INT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_defaults_are_valid() {
        let mut seen = HashSet::new();
        for d in TOPIC_CONFIGS {
            assert!(seen.insert(d.name), "duplicate {}", d.name);
            assert!(
                d.parse(d.default).is_ok(),
                "default of {} is invalid",
                d.name
            );
        }
    }

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
            ("retention.bytes", "-1"),
            ("segment.bytes", " 1048576 "),
        ] {
            assert!(parse_topic_config(k, v).is_ok(), "{k}={v}");
        }
    }

    #[test]
    fn values_come_out_typed() {
        assert_eq!(
            parse_topic_config("segment.bytes", "1048576"),
            Ok(ConfigValue::Int(1_048_576))
        );
        assert_eq!(
            parse_topic_config("retention.ms", "-1"),
            Ok(ConfigValue::Long(-1))
        );
        assert_eq!(
            parse_topic_config("preallocate", "TRUE"),
            Ok(ConfigValue::Boolean(true))
        );
        assert_eq!(
            parse_topic_config("cleanup.policy", "delete, compact"),
            Ok(ConfigValue::List(vec!["delete".into(), "compact".into()]))
        );
    }

    #[test]
    fn rejects_unknown_or_bad_values() {
        for (k, v) in [
            ("no.such.config", "1"),
            ("retention.ms", "-5"),
            ("retention.ms", "soon"),
            ("min.insync.replicas", "0"),
            ("segment.bytes", "99999999999"),
            ("segment.bytes", "13"),
            ("cleanup.policy", "compact,forever"),
            ("cleanup.policy", "Delete"),
            ("cleanup.policy", ""),
            ("preallocate", "yes"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("message.timestamp.type", "Now"),
            ("flush.messages", "0"),
        ] {
            assert!(parse_topic_config(k, v).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn messages_are_kafkas() {
        assert_eq!(
            parse_topic_config("no.such", "1").map_err(|e| e.to_string()),
            Err("Unknown topic config name: no.such".to_string())
        );
        assert_eq!(
            parse_topic_config("retention.ms", "-5").map_err(|e| e.to_string()),
            Err(
                "Invalid value -5 for configuration retention.ms: Value must be at least -1"
                    .to_string()
            )
        );
    }
}

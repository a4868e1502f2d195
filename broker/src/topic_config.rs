//! Topic-level configs: Kafka's names, their broker-level synonyms, validation, and the log
//! settings they turn into.

use std::collections::BTreeMap;

use storage::{CleanupPolicy, LogConfig, TimestampType};

use crate::config::{BrokerConfig, ConfigType};

/// One topic config: its name, the broker property that sets its default, and its type.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub broker_synonym: &'static str,
    pub kind: ConfigType,
    pub doc: &'static str,
}

const fn t(
    name: &'static str,
    broker_synonym: &'static str,
    kind: ConfigType,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        broker_synonym,
        kind,
        doc,
    }
}

/// Every topic config Rivulet honours.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    t(
        "cleanup.policy",
        "log.cleanup.policy",
        ConfigType::List,
        "delete, compact, or both",
    ),
    t(
        "compression.type",
        "compression.type",
        ConfigType::String,
        "Only \"producer\": batches are stored as produced",
    ),
    t(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        ConfigType::Long,
        "How long tombstones survive compaction",
    ),
    t(
        "file.delete.delay.ms",
        "log.segment.delete.delay.ms",
        ConfigType::Long,
        "Delay before a deleted segment's file is removed",
    ),
    t(
        "flush.messages",
        "log.flush.interval.messages",
        ConfigType::Long,
        "Records between fsyncs",
    ),
    t(
        "flush.ms",
        "log.flush.interval.ms",
        ConfigType::Long,
        "Time between fsyncs",
    ),
    t(
        "index.interval.bytes",
        "log.index.interval.bytes",
        ConfigType::Int,
        "Bytes between index entries",
    ),
    t(
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        ConfigType::Long,
        "Maximum time a record stays uncompacted",
    ),
    t(
        "max.message.bytes",
        "message.max.bytes",
        ConfigType::Int,
        "Largest record batch accepted",
    ),
    t(
        "message.timestamp.type",
        "log.message.timestamp.type",
        ConfigType::String,
        "CreateTime or LogAppendTime",
    ),
    t(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        ConfigType::Double,
        "Dirty ratio that triggers compaction",
    ),
    t(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        ConfigType::Long,
        "Minimum time a record stays uncompacted",
    ),
    t(
        "min.insync.replicas",
        "min.insync.replicas",
        ConfigType::Int,
        "Minimum ISR size for acks=all",
    ),
    t(
        "preallocate",
        "log.preallocate",
        ConfigType::Boolean,
        "Preallocate segment files",
    ),
    t(
        "retention.bytes",
        "log.retention.bytes",
        ConfigType::Long,
        "Maximum partition size before old segments are deleted",
    ),
    t(
        "retention.ms",
        "log.retention.ms",
        ConfigType::Long,
        "How long segments are kept",
    ),
    t(
        "segment.bytes",
        "log.segment.bytes",
        ConfigType::Int,
        "Segment size",
    ),
    t(
        "segment.index.bytes",
        "log.index.size.max.bytes",
        ConfigType::Int,
        "Maximum index file size",
    ),
    t(
        "segment.jitter.ms",
        "log.roll.jitter.ms",
        ConfigType::Long,
        "Random jitter subtracted from segment.ms",
    ),
    t(
        "segment.ms",
        "log.roll.ms",
        ConfigType::Long,
        "Maximum segment age before rolling",
    ),
    t(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        "Allow leaders outside the ISR",
    ),
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Why a topic config is refused (maps to INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTopicConfig(pub String);

/// Checks a full set of topic overrides: known names, parseable values.
pub fn validate(
    broker: &BrokerConfig,
    configs: &BTreeMap<String, String>,
) -> Result<(), InvalidTopicConfig> {
    for (name, value) in configs {
        if topic_config_def(name).is_none() {
            return Err(InvalidTopicConfig(format!(
                "Unknown topic config name: {name}"
            )));
        }
        match name.as_str() {
            "compression.type" if value != "producer" => {
                return Err(InvalidTopicConfig(format!(
                    "compression.type={value} is not supported: batches are stored as the producer compressed them (use \"producer\")"
                )))
            }
            "min.insync.replicas" => match value.trim().parse::<i32>() {
                Ok(n) if n >= 1 => {}
                _ => return Err(InvalidTopicConfig(format!("Invalid value {value} for configuration min.insync.replicas: must be >= 1"))),
            },
            "unclean.leader.election.enable" | "preallocate" if value != "true" && value != "false" => {
                return Err(InvalidTopicConfig(format!("Invalid value {value} for configuration {name}: expected true or false")))
            }
            _ => {}
        }
    }
    broker
        .log_defaults
        .with_overrides(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map(|_| ())
        .map_err(|e| InvalidTopicConfig(e.to_string()))
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

/// The broker's default for a topic config, as a string.
pub fn default_value(broker: &BrokerConfig, name: &str) -> Option<String> {
    let d = &broker.log_defaults;
    Some(match name {
        "cleanup.policy" => match d.cleanup_policy {
            CleanupPolicy::Delete => "delete".to_string(),
            CleanupPolicy::Compact => "compact".to_string(),
            CleanupPolicy::CompactDelete => "compact,delete".to_string(),
        },
        "compression.type" => "producer".to_string(),
        "delete.retention.ms" => d.delete_retention_ms.to_string(),
        "file.delete.delay.ms" => d.file_delete_delay_ms.to_string(),
        "flush.messages" => d.flush_messages.to_string(),
        "flush.ms" => d.flush_ms.to_string(),
        "index.interval.bytes" => d.index_interval_bytes.to_string(),
        "max.compaction.lag.ms" => d.max_compaction_lag_ms.to_string(),
        "max.message.bytes" => d.max_message_bytes.to_string(),
        "message.timestamp.type" => match d.message_timestamp_type {
            TimestampType::CreateTime => "CreateTime".to_string(),
            TimestampType::LogAppendTime => "LogAppendTime".to_string(),
        },
        "min.cleanable.dirty.ratio" => d.min_cleanable_dirty_ratio.to_string(),
        "min.compaction.lag.ms" => d.min_compaction_lag_ms.to_string(),
        "min.insync.replicas" => broker.min_insync_replicas.to_string(),
        "preallocate" => d.preallocate.to_string(),
        "retention.bytes" => d.retention_bytes.to_string(),
        "retention.ms" => d.retention_ms.to_string(),
        "segment.bytes" => d.segment_bytes.to_string(),
        "segment.index.bytes" => d.segment_index_bytes.to_string(),
        "segment.jitter.ms" => d.segment_jitter_ms.to_string(),
        "segment.ms" => d.segment_ms.to_string(),
        "unclean.leader.election.enable" => broker.unclean_leader_election.to_string(),
        _ => return None,
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
        for d in TOPIC_CONFIGS {
            assert!(default_value(&b, d.name).is_some(), "{}", d.name);
        }
    }

    #[test]
    fn validation_rejects_unknown_names_and_bad_values() {
        let b = broker();
        let ok: BTreeMap<String, String> =
            [("retention.ms", "1000"), ("cleanup.policy", "compact")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert!(validate(&b, &ok).is_ok());
        let unknown: BTreeMap<String, String> = [("no.such", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(validate(&b, &unknown).is_err());
        let bad: BTreeMap<String, String> = [("retention.ms", "soon")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(validate(&b, &bad).is_err());
        let isr: BTreeMap<String, String> = [("min.insync.replicas", "0")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(validate(&b, &isr).is_err());
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

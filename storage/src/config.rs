//! Per-partition log configuration, named and defaulted after Kafka's topic configs, and the
//! application of Kafka topic-level overrides (checked against `kafka_core`'s config table).

use kafka_core::{ConfigValue, TopicConfigError};

use crate::error::{Result, StorageError};

/// `cleanup.policy`: what happens to old data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CleanupPolicy {
    /// Delete whole segments by time and size (`delete`).
    Delete,
    /// Keep the latest record per key (`compact`).
    Compact,
    /// Both (`compact,delete`).
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether retention by time/size deletes segments.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }

    /// Whether the log cleaner compacts this log.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    /// The Kafka spelling (`delete`, `compact`, `compact,delete`).
    pub fn as_kafka_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }

    /// The policy named by the items of a `cleanup.policy` list, if they name one.
    fn from_items(items: &[String]) -> Option<CleanupPolicy> {
        let delete = items.iter().any(|i| i == "delete");
        let compact = items.iter().any(|i| i == "compact");
        match (compact, delete) {
            (true, true) => Some(CleanupPolicy::CompactDelete),
            (true, false) => Some(CleanupPolicy::Compact),
            (false, true) => Some(CleanupPolicy::Delete),
            (false, false) => None,
        }
    }
}

/// `message.timestamp.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Keep the producer's timestamps (`CreateTime`).
    CreateTime,
    /// Stamp batches with the broker's clock on append (`LogAppendTime`).
    LogAppendTime,
}

impl TimestampType {
    /// The Kafka spelling.
    pub fn as_kafka_str(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// Configuration of one partition log. Field comments give the Kafka topic config and default.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes` (1073741824).
    pub segment_bytes: u64,
    /// `segment.ms` (604800000).
    pub segment_ms: i64,
    /// `segment.jitter.ms` (0).
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes` (10485760).
    pub segment_index_bytes: u64,
    /// `index.interval.bytes` (4096).
    pub index_interval_bytes: u64,
    /// `retention.ms` (604800000; -1 = forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// `cleanup.policy` (delete).
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms` (86400000).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms` (0).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms` (i64::MAX).
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio` (0.5).
    pub min_cleanable_dirty_ratio: f64,
    /// `flush.messages` (i64::MAX = leave it to the OS).
    pub flush_messages: i64,
    /// `flush.ms` (i64::MAX).
    pub flush_ms: i64,
    /// `max.message.bytes` (1048588).
    pub max_message_bytes: u32,
    /// `message.timestamp.type` (CreateTime).
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms` (i64::MAX): how far in the past a CreateTime may be.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (i64::MAX): how far in the future a CreateTime may be.
    pub message_timestamp_after_max_ms: i64,
    /// `file.delete.delay.ms` (60000).
    pub file_delete_delay_ms: i64,
    /// `preallocate` (false).
    pub preallocate: bool,
    /// Broker property `producer.id.expiration.ms` (86400000): idle producers are forgotten
    /// after this. Not a topic config.
    pub producer_id_expiration_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            segment_jitter_ms: 0,
            segment_index_bytes: 10_485_760,
            index_interval_bytes: 4096,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            preallocate: false,
            producer_id_expiration_ms: 86_400_000,
        }
    }
}

impl LogConfig {
    /// Applies Kafka topic-level config names on top of `self` (normally the broker defaults).
    /// Names this struct does not model are ignored (the broker validates names); a value Kafka
    /// would refuse for a modelled name is [`StorageError::InvalidConfig`].
    pub fn with_overrides<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(
        &self,
        overrides: I,
    ) -> Result<LogConfig> {
        let mut config = self.clone();
        for (key, value) in overrides {
            config.apply(key, value.trim())?;
        }
        Ok(config)
    }

    /// The topic-level configs this struct models, as Kafka names and strings
    /// (`producer_id_expiration_ms` is a broker-level setting, not among them).
    pub fn to_kafka_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            ("segment.jitter.ms", self.segment_jitter_ms.to_string()),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("retention.ms", self.retention_ms.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            (
                "cleanup.policy",
                self.cleanup_policy.as_kafka_str().to_string(),
            ),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            (
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms.to_string(),
            ),
            (
                "max.compaction.lag.ms",
                self.max_compaction_lag_ms.to_string(),
            ),
            (
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio.to_string(),
            ),
            ("flush.messages", self.flush_messages.to_string()),
            ("flush.ms", self.flush_ms.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.type",
                self.message_timestamp_type.as_kafka_str().to_string(),
            ),
            (
                "message.timestamp.before.max.ms",
                self.message_timestamp_before_max_ms.to_string(),
            ),
            (
                "message.timestamp.after.max.ms",
                self.message_timestamp_after_max_ms.to_string(),
            ),
            (
                "file.delete.delay.ms",
                self.file_delete_delay_ms.to_string(),
            ),
            ("preallocate", self.preallocate.to_string()),
        ]
    }

    /// Bytes to preallocate for a new segment file, when `preallocate` is on.
    pub(crate) fn preallocate_bytes(&self) -> Option<u64> {
        self.preallocate.then_some(self.segment_bytes)
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        let parsed = match kafka_core::parse_topic_config(key, value) {
            Ok(parsed) => parsed,
            Err(TopicConfigError::UnknownName(_)) => return Ok(()),
            Err(TopicConfigError::InvalidValue { reason, .. }) => {
                return Err(invalid(key, value, &reason))
            }
        };
        let size =
            |n: i32| u64::try_from(n).map_err(|_| invalid(key, value, "must not be negative"));
        match (key, parsed) {
            ("segment.bytes", ConfigValue::Int(n)) => self.segment_bytes = size(n)?,
            ("segment.ms", ConfigValue::Long(n)) => self.segment_ms = n,
            ("segment.jitter.ms", ConfigValue::Long(n)) => self.segment_jitter_ms = n,
            ("segment.index.bytes", ConfigValue::Int(n)) => self.segment_index_bytes = size(n)?,
            ("index.interval.bytes", ConfigValue::Int(n)) => self.index_interval_bytes = size(n)?,
            ("retention.ms", ConfigValue::Long(n)) => self.retention_ms = n,
            ("retention.bytes", ConfigValue::Long(n)) => self.retention_bytes = n,
            ("cleanup.policy", ConfigValue::List(items)) => {
                self.cleanup_policy = CleanupPolicy::from_items(&items)
                    .ok_or_else(|| invalid(key, value, "expected delete, compact or both"))?
            }
            ("delete.retention.ms", ConfigValue::Long(n)) => self.delete_retention_ms = n,
            ("min.compaction.lag.ms", ConfigValue::Long(n)) => self.min_compaction_lag_ms = n,
            ("max.compaction.lag.ms", ConfigValue::Long(n)) => self.max_compaction_lag_ms = n,
            ("min.cleanable.dirty.ratio", ConfigValue::Double(x)) => {
                self.min_cleanable_dirty_ratio = x
            }
            ("flush.messages", ConfigValue::Long(n)) => self.flush_messages = n,
            ("flush.ms", ConfigValue::Long(n)) => self.flush_ms = n,
            ("max.message.bytes", ConfigValue::Int(n)) => {
                self.max_message_bytes =
                    u32::try_from(n).map_err(|_| invalid(key, value, "must not be negative"))?
            }
            ("message.timestamp.type", ConfigValue::String(s)) => {
                self.message_timestamp_type = if s == TimestampType::LogAppendTime.as_kafka_str() {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                }
            }
            ("message.timestamp.before.max.ms", ConfigValue::Long(n)) => {
                self.message_timestamp_before_max_ms = n
            }
            ("message.timestamp.after.max.ms", ConfigValue::Long(n)) => {
                self.message_timestamp_after_max_ms = n
            }
            ("file.delete.delay.ms", ConfigValue::Long(n)) => self.file_delete_delay_ms = n,
            ("preallocate", ConfigValue::Boolean(b)) => self.preallocate = b,
            _ => {}
        }
        Ok(())
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> StorageError {
    StorageError::InvalidConfig {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1 << 30);
        assert_eq!(c.retention_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.cleanup_policy, CleanupPolicy::Delete);
        assert_eq!(c.producer_id_expiration_ms, 86_400_000);
    }

    #[test]
    fn overrides_apply_and_unknown_keys_are_ignored() {
        let c = LogConfig::default()
            .with_overrides([
                ("segment.bytes", "1048576"),
                ("cleanup.policy", "delete,compact"),
                ("message.timestamp.type", "LogAppendTime"),
                ("retention.bytes", "-1"),
                ("min.cleanable.dirty.ratio", "0.1"),
                ("preallocate", "TRUE"),
                ("compression.type", "zstd"),
            ])
            .unwrap();
        assert_eq!(c.segment_bytes, 1_048_576);
        assert_eq!(c.cleanup_policy, CleanupPolicy::CompactDelete);
        assert!(c.cleanup_policy.compacts() && c.cleanup_policy.deletes());
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        assert!((c.min_cleanable_dirty_ratio - 0.1).abs() < 1e-9);
        assert!(c.preallocate);
    }

    #[test]
    fn bad_values_are_typed_errors() {
        for (k, v) in [
            ("segment.bytes", "abc"),
            ("segment.bytes", "3000000000"),
            ("segment.ms", "0"),
            ("cleanup.policy", "shred"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("message.timestamp.type", "Now"),
            ("flush.messages", "0"),
            ("preallocate", "yes"),
        ] {
            let err = LogConfig::default().with_overrides([(k, v)]).unwrap_err();
            assert_eq!(
                err.kafka_error_code(),
                kafka_core::ErrorCode::INVALID_CONFIG,
                "{k}={v}"
            );
        }
    }

    #[test]
    fn defaults_are_the_topic_config_tables() {
        for (name, value) in LogConfig::default().to_kafka_pairs() {
            let def = kafka_core::topic_config(name);
            assert_eq!(def.map(|d| d.default), Some(value.as_str()), "{name}");
        }
    }

    #[test]
    fn every_modelled_config_is_applied() {
        let c = LogConfig {
            segment_bytes: 1 << 20,
            segment_ms: 1,
            segment_jitter_ms: 2,
            segment_index_bytes: 1 << 16,
            index_interval_bytes: 3,
            retention_ms: -1,
            retention_bytes: 5,
            cleanup_policy: CleanupPolicy::CompactDelete,
            delete_retention_ms: 6,
            min_compaction_lag_ms: 7,
            max_compaction_lag_ms: 8,
            min_cleanable_dirty_ratio: 0.25,
            flush_messages: 9,
            flush_ms: 10,
            max_message_bytes: 11,
            message_timestamp_type: TimestampType::LogAppendTime,
            message_timestamp_before_max_ms: 12,
            message_timestamp_after_max_ms: 13,
            file_delete_delay_ms: 14,
            preallocate: true,
            ..LogConfig::default()
        };
        let pairs = c.to_kafka_pairs();
        let again = LogConfig::default()
            .with_overrides(pairs.iter().map(|(k, v)| (*k, v.as_str())))
            .unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn kafka_pairs_round_trip() {
        let c = LogConfig::default()
            .with_overrides([("cleanup.policy", "compact"), ("retention.ms", "-1")])
            .unwrap();
        let pairs = c.to_kafka_pairs();
        let again = LogConfig::default()
            .with_overrides(pairs.iter().map(|(k, v)| (*k, v.as_str())))
            .unwrap();
        assert_eq!(c, again);
    }
}

//! The coordinator's settings, taken from the broker's `group.*` and `offsets.*` properties.

use std::time::Duration;

use super::group::GroupSettings;
use crate::config::BrokerConfig;

/// Kafka's `offset.metadata.max.bytes` default: longer commit metadata is refused.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub node_id: i32,
    /// offsets.topic.num.partitions (used when creating the topic).
    pub offsets_topic_partitions: i32,
    /// offsets.topic.replication.factor (capped at the live brokers when creating the topic).
    pub offsets_topic_replication_factor: i16,
    /// offsets.topic.segment.bytes
    pub offsets_topic_segment_bytes: u64,
    /// offsets.retention.minutes, in milliseconds.
    pub offsets_retention_ms: i64,
    /// offsets.retention.check.interval.ms
    pub offsets_retention_check_interval: Duration,
    /// offsets.commit.timeout.ms: how long a commit (or group write) waits for replication.
    pub offsets_commit_timeout: Duration,
    pub offset_metadata_max_bytes: usize,
    /// group.min.session.timeout.ms / group.max.session.timeout.ms
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group: GroupSettings,
    /// Listener used to reach other brokers (ListOffsets for consumer lag).
    pub inter_broker_listener: String,
}

impl CoordinatorConfig {
    pub fn from_broker(config: &BrokerConfig) -> CoordinatorConfig {
        CoordinatorConfig {
            node_id: config.node_id,
            offsets_topic_partitions: config.offsets_topic_partitions,
            offsets_topic_replication_factor: config.offsets_topic_replication_factor,
            offsets_topic_segment_bytes: config.offsets_topic_segment_bytes,
            offsets_retention_ms: config.offsets_retention_ms,
            offsets_retention_check_interval: Duration::from_millis(
                config.offsets_retention_check_interval_ms.max(1000),
            ),
            offsets_commit_timeout: Duration::from_millis(config.offsets_commit_timeout_ms.max(1)),
            offset_metadata_max_bytes: OFFSET_METADATA_MAX_BYTES,
            group_min_session_timeout_ms: config.group_min_session_timeout_ms,
            group_max_session_timeout_ms: config.group_max_session_timeout_ms,
            group: GroupSettings {
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                max_size: usize::try_from(config.group_max_size).unwrap_or(usize::MAX),
            },
            inter_broker_listener: config.inter_broker_listener_name.clone(),
        }
    }
}

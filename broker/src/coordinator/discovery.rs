//! FindCoordinator for groups: the leader of the group's `__consumer_offsets` partition, as
//! clients reach it on the listener they asked on, and the specification of
//! `__consumer_offsets` for creating it on first use.

use std::collections::BTreeMap;

use raft_controller::{CreateTopicSpec, MetadataImage};

use super::config::CoordinatorConfig;
use super::partitioner::partition_for;
use super::OFFSETS_TOPIC;

/// Where a group's coordinator is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    Coordinator {
        node_id: i32,
        host: String,
        port: i32,
    },
    /// `__consumer_offsets` does not exist yet.
    NoOffsetsTopic,
    /// Not available right now (why).
    Unavailable(String),
}

/// The partition count of `__consumer_offsets`, if the topic exists.
pub fn offsets_partitions(image: &MetadataImage) -> Option<i32> {
    image
        .topic(OFFSETS_TOPIC)
        .map(|t| i32::try_from(t.partitions.len()).unwrap_or(i32::MAX))
}

pub fn locate(image: &MetadataImage, group_id: &str, listener: &str) -> Located {
    let Some(topic) = image.topic(OFFSETS_TOPIC) else {
        return Located::NoOffsetsTopic;
    };
    let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    let index = partition_for(group_id, partitions);
    let Some(state) = topic.partitions.iter().find(|p| p.partition == index) else {
        return Located::Unavailable(format!(
            "{OFFSETS_TOPIC}-{index} is not in the metadata yet"
        ));
    };
    if state.leader < 0 {
        return Located::Unavailable(format!("{OFFSETS_TOPIC}-{index} has no leader"));
    }
    let Some(broker) = image.brokers.get(&state.leader).filter(|b| !b.fenced) else {
        return Located::Unavailable(format!(
            "the leader of {OFFSETS_TOPIC}-{index} is not available"
        ));
    };
    match broker.endpoints.iter().find(|e| e.listener == listener) {
        Some(e) => Located::Coordinator {
            node_id: broker.id,
            host: e.host.clone(),
            port: i32::from(e.port),
        },
        None => Located::Unavailable(format!("broker {} has no {listener} endpoint", broker.id)),
    }
}

/// `__consumer_offsets` as Kafka creates it: compacted, `offsets.topic.*` sized, replication
/// capped at the live brokers.
pub fn offsets_topic_spec(config: &CoordinatorConfig, live_brokers: usize) -> CreateTopicSpec {
    let live = i16::try_from(live_brokers).unwrap_or(i16::MAX).max(1);
    let mut configs = BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert(
        "segment.bytes".to_string(),
        config.offsets_topic_segment_bytes.to_string(),
    );
    CreateTopicSpec {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: config.offsets_topic_partitions,
        replication_factor: config.offsets_topic_replication_factor.min(live),
        assignments: BTreeMap::new(),
        configs,
    }
}

//! Topics: planning a creation / partition increase / config change from a request
//! (validation and replica placement, done by the controller before proposing), and applying
//! the resulting commands to the image.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tracing::info;
use uuid::Uuid;

use crate::commands::{Applied, CommandResponse};
use crate::controller::election::elect_leaderless_unclean;
use crate::controller::placement::{self, PlacementBroker, PlacementStart};
use crate::controller::topic_config;
use crate::error::ControllerError;
use crate::image::{
    MetadataImage, PartitionState, TopicImage, NO_LEADER, UNCLEAN_LEADER_ELECTION_CONFIG,
};
use crate::requests::{ConfigOp, CreateTopicSpec, CreatedTopic};

/// Most partitions one request may create; guards the image against absurd requests.
pub const MAX_PARTITIONS_PER_REQUEST: usize = 100_000;

/// Checks a topic name the way Kafka does (INVALID_TOPIC_EXCEPTION).
fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    kafka_core::validate_topic_name(name).map_err(|e| ControllerError::InvalidTopic(e.to_string()))
}

/// '.' and '_' map to the same metric name, so Kafka refuses names differing only there.
fn collision(image: &MetadataImage, name: &str) -> Option<String> {
    if !name.contains(['.', '_']) {
        return None;
    }
    let key = name.replace('.', "_");
    image
        .topics
        .keys()
        .find(|other| other.as_str() != name && other.replace('.', "_") == key)
        .cloned()
}

/// A validated creation: the replica assignment to propose.
#[derive(Clone, Debug)]
pub(crate) struct TopicPlan {
    pub(crate) assignments: Vec<Vec<i32>>,
    pub(crate) replication_factor: i16,
}

/// Validates a create request against the image and places its replicas.
pub(crate) fn plan_create(
    image: &MetadataImage,
    spec: &CreateTopicSpec,
    default_partitions: i32,
    default_replication_factor: i16,
) -> Result<TopicPlan, ControllerError> {
    check_new_name(image, &spec.name)?;
    topic_config::validate_all(&spec.configs)?;
    if !spec.assignments.is_empty() {
        if spec.num_partitions != -1 || spec.replication_factor != -1 {
            return Err(ControllerError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the \
                 same time."
                    .into(),
            ));
        }
        let consecutive = spec
            .assignments
            .keys()
            .enumerate()
            .all(|(i, p)| usize::try_from(*p).ok() == Some(i));
        if !consecutive {
            return Err(ControllerError::InvalidReplicaAssignment(
                "partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        let assignments: Vec<Vec<i32>> = spec.assignments.values().cloned().collect();
        check_partition_count(assignments.len())?;
        let rf = validate_assignment(image, &assignments, None)?;
        return Ok(TopicPlan {
            assignments,
            replication_factor: rf,
        });
    }
    let partitions = match spec.num_partitions {
        -1 => default_partitions,
        n if n <= 0 => {
            return Err(ControllerError::InvalidPartitions(
                "Number of partitions was set to an invalid non-positive value.".into(),
            ))
        }
        n => n,
    };
    let partitions = usize::try_from(partitions)
        .map_err(|_| ControllerError::InvalidPartitions("bad count".into()))?;
    check_partition_count(partitions)?;
    let rf = match spec.replication_factor {
        -1 => default_replication_factor,
        n if n <= 0 => {
            return Err(ControllerError::InvalidReplicationFactor(
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ))
        }
        n => n,
    };
    let brokers = placement_brokers(image);
    let rf_usize = usize::try_from(rf)
        .map_err(|_| ControllerError::InvalidReplicationFactor("bad factor".into()))?;
    let assignments = placement::assign(
        &brokers,
        partitions,
        rf_usize,
        PlacementStart::random(brokers.len()),
    )?;
    Ok(TopicPlan {
        assignments,
        replication_factor: rf,
    })
}

/// Validates a partition increase and places the new partitions. Returns the topic id and the
/// assignments of the new partitions.
pub(crate) fn plan_create_partitions(
    image: &MetadataImage,
    topic: &str,
    new_total: i32,
    assignments: Option<&[Vec<i32>]>,
) -> Result<(Uuid, Vec<Vec<i32>>), ControllerError> {
    let t = image.topic(topic).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!("Topic '{topic}' does not exist."))
    })?;
    let current = t.partitions.len();
    let wanted = usize::try_from(new_total).unwrap_or(0);
    if wanted < current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic currently has {current} partitions, which is higher than the requested {new_total}."
        )));
    }
    if wanted == current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic already has {current} partitions."
        )));
    }
    let add = wanted - current;
    check_partition_count(add)?;
    let rf = t.partitions.first().map_or(1, |p| p.replicas.len());
    if let Some(manual) = assignments {
        if manual.len() != add {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Attempted to add {add} additional partition(s), but only {} assignment(s) were specified.",
                manual.len()
            )));
        }
        validate_assignment(image, manual, Some(rf))?;
        return Ok((t.id, manual.to_vec()));
    }
    let brokers = placement_brokers(image);
    let mut start = PlacementStart::random(brokers.len());
    if let Some(pos) = t
        .partitions
        .first()
        .and_then(|p| p.replicas.first())
        .and_then(|leader| placement::arranged_position(&brokers, *leader))
    {
        start.start_index = pos;
        start.replica_shift = pos;
    }
    start.first_partition = current;
    Ok((t.id, placement::assign(&brokers, add, rf, start)?))
}

/// Validates a config change of an existing topic; returns the topic id.
pub(crate) fn check_alter_configs(
    image: &MetadataImage,
    topic: &str,
    ops: &[ConfigOp],
) -> Result<Uuid, ControllerError> {
    let t = image.topic(topic).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!("Topic '{topic}' does not exist."))
    })?;
    check_config_ops(ops)?;
    Ok(t.id)
}

fn check_config_ops(ops: &[ConfigOp]) -> Result<(), ControllerError> {
    for op in ops {
        match op {
            ConfigOp::Set(k, v) => topic_config::validate(k, v)?,
            // Deleting an unset config is fine; the name must still be a topic config.
            ConfigOp::Delete(k) => topic_config::validate_name(k)?,
        }
    }
    Ok(())
}

fn check_new_name(image: &MetadataImage, name: &str) -> Result<(), ControllerError> {
    validate_topic_name(name)?;
    if image.topics.contains_key(name) {
        return Err(ControllerError::TopicAlreadyExists(format!(
            "Topic '{name}' already exists."
        )));
    }
    if let Some(other) = collision(image, name) {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic '{name}' collides with existing topic: {other}"
        )));
    }
    Ok(())
}

fn check_partition_count(n: usize) -> Result<(), ControllerError> {
    if n == 0 {
        return Err(ControllerError::InvalidPartitions(
            "at least one partition is required".into(),
        ));
    }
    if n > MAX_PARTITIONS_PER_REQUEST {
        return Err(ControllerError::InvalidPartitions(format!(
            "{n} partitions exceed the limit of {MAX_PARTITIONS_PER_REQUEST} per request"
        )));
    }
    Ok(())
}

/// Checks a manual assignment; returns its replication factor.
fn validate_assignment(
    image: &MetadataImage,
    assignments: &[Vec<i32>],
    expected_rf: Option<usize>,
) -> Result<i16, ControllerError> {
    let bad = |msg: String| Err(ControllerError::InvalidReplicaAssignment(msg));
    let mut rf = expected_rf;
    for replicas in assignments {
        if replicas.is_empty() {
            return bad("The manual partition assignment includes an empty replica list.".into());
        }
        let mut seen = BTreeSet::new();
        for r in replicas {
            if !seen.insert(*r) {
                return bad(format!(
                    "The manual partition assignment includes the broker {r} more than once."
                ));
            }
            if image.broker(*r).is_none() {
                return bad(format!(
                    "The manual partition assignment includes broker {r}, but no such broker is registered."
                ));
            }
        }
        match rf {
            Some(expected) if expected != replicas.len() => {
                return bad(format!(
                    "The manual partition assignment includes a partition with {} replica(s), but this is not \
                     consistent with previous partitions, which have {expected} replica(s).",
                    replicas.len()
                ))
            }
            _ => rf = Some(replicas.len()),
        }
    }
    rf.and_then(|n| i16::try_from(n).ok())
        .ok_or_else(|| ControllerError::InvalidReplicaAssignment("no replicas".into()))
}

fn placement_brokers(image: &MetadataImage) -> Vec<PlacementBroker> {
    image
        .brokers
        .values()
        .filter(|b| b.is_eligible())
        .map(|b| PlacementBroker {
            id: b.id,
            rack: b.rack.clone(),
        })
        .collect()
}

/// New partitions for `assignments` starting at partition id `first`: the ISR is the eligible
/// replicas, the leader the first of them.
fn new_partitions(
    image: &MetadataImage,
    first: usize,
    assignments: &[Vec<i32>],
) -> Result<Vec<PartitionState>, ControllerError> {
    let eligible = image.eligible_brokers();
    assignments
        .iter()
        .enumerate()
        .map(|(i, replicas)| {
            let partition = i32::try_from(first + i).map_err(|_| ControllerError::InvalidPartitions("too many".into()))?;
            let isr: Vec<i32> = replicas.iter().copied().filter(|r| eligible.contains(r)).collect();
            let leader = *isr.first().ok_or_else(|| {
                ControllerError::InvalidReplicaAssignment(format!(
                    "All brokers specified in the partition assignment for partition {partition} are fenced or in \
                     controlled shutdown."
                ))
            })?;
            Ok(PartitionState {
                partition,
                replicas: replicas.clone(),
                isr,
                leader,
                leader_epoch: 0,
                partition_epoch: 0,
            })
        })
        .collect()
}

/// Applies a topic creation.
pub(crate) fn apply_create(
    image: &mut MetadataImage,
    name: &str,
    topic_id: Uuid,
    configs: &BTreeMap<String, String>,
    assignments: &[Vec<i32>],
) -> CommandResponse {
    check_new_name(image, name)?;
    topic_config::validate_all(configs)?;
    if image.topic_ids.contains_key(&topic_id) {
        return Err(ControllerError::InvalidRequest(format!(
            "topic id {topic_id} is already in use"
        )));
    }
    check_partition_count(assignments.len())?;
    let replication_factor = validate_assignment(image, assignments, None)?;
    let partitions = new_partitions(image, 0, assignments)?;
    let num_partitions = i32::try_from(partitions.len())
        .map_err(|_| ControllerError::InvalidPartitions("too many".into()))?;
    image.topics.insert(
        name.to_string(),
        Arc::new(TopicImage {
            name: name.to_string(),
            id: topic_id,
            configs: configs.clone(),
            partitions,
        }),
    );
    image.topic_ids.insert(topic_id, name.to_string());
    info!(topic = name, %topic_id, num_partitions, replication_factor, "topic created");
    Ok(Applied::Topic(CreatedTopic {
        name: name.to_string(),
        id: topic_id,
        num_partitions,
        replication_factor,
    }))
}

/// Applies a topic deletion.
pub(crate) fn apply_delete(
    image: &mut MetadataImage,
    name: &str,
    topic_id: Uuid,
) -> CommandResponse {
    match image.topics.get(name) {
        Some(t) if t.id == topic_id => {}
        _ => {
            return Err(ControllerError::UnknownTopicOrPartition(format!(
                "Topic '{name}' does not exist."
            )))
        }
    }
    image.topics.remove(name);
    image.topic_ids.remove(&topic_id);
    info!(topic = name, %topic_id, "topic deleted");
    Ok(Applied::TopicDeleted(topic_id))
}

/// Applies a partition increase.
pub(crate) fn apply_create_partitions(
    image: &mut MetadataImage,
    topic_id: Uuid,
    assignments: &[Vec<i32>],
) -> CommandResponse {
    let name = image.topic_ids.get(&topic_id).cloned().ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!("Topic id {topic_id} does not exist."))
    })?;
    let (current, rf) = image
        .topic(&name)
        .map(|t| {
            (
                t.partitions.len(),
                t.partitions.first().map(|p| p.replicas.len()),
            )
        })
        .ok_or_else(|| {
            ControllerError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist."))
        })?;
    check_partition_count(assignments.len())?;
    validate_assignment(image, assignments, rf)?;
    let added = new_partitions(image, current, assignments)?;
    let topic = image.topic_mut(&name).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist."))
    })?;
    topic.partitions.extend(added);
    info!(topic = %name, %topic_id, partitions = topic.partitions.len(), "partitions added");
    Ok(Applied::Nothing)
}

/// Applies a topic config change.
pub(crate) fn apply_alter_configs(
    image: &mut MetadataImage,
    topic_id: Uuid,
    ops: &[ConfigOp],
) -> CommandResponse {
    let name = image.topic_ids.get(&topic_id).cloned().ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!("Topic id {topic_id} does not exist."))
    })?;
    check_config_ops(ops)?;
    let topic = image.topic_mut(&name).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist."))
    })?;
    for op in ops {
        match op {
            ConfigOp::Set(k, v) => topic.configs.insert(k.clone(), v.clone()),
            ConfigOp::Delete(k) => topic.configs.remove(k),
        };
    }
    info!(topic = %name, %topic_id, configs = ?topic.configs, "topic configs altered");
    let unclean_changed = ops.iter().any(|op| match op {
        ConfigOp::Set(k, _) | ConfigOp::Delete(k) => k == UNCLEAN_LEADER_ELECTION_CONFIG,
    });
    let leaderless = topic.partitions.iter().any(|p| p.leader == NO_LEADER);
    if unclean_changed && leaderless {
        elect_leaderless_unclean(image, Some(&name));
    }
    Ok(Applied::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in [
            "a",
            "my-topic",
            "__consumer_offsets",
            "A.b_c-9",
            &"x".repeat(249),
        ] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "has space", "ü", "a/b", &"x".repeat(250)] {
            assert!(
                matches!(
                    validate_topic_name(bad),
                    Err(ControllerError::InvalidTopic(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn dot_and_underscore_names_collide() {
        let mut image = MetadataImage::default();
        image.topics.insert(
            "a.b".into(),
            Arc::new(TopicImage {
                name: "a.b".into(),
                id: Uuid::new_v4(),
                configs: BTreeMap::new(),
                partitions: vec![],
            }),
        );
        assert!(matches!(
            check_new_name(&image, "a_b"),
            Err(ControllerError::InvalidTopic(_))
        ));
        assert!(matches!(
            check_new_name(&image, "a.b"),
            Err(ControllerError::TopicAlreadyExists(_))
        ));
        assert!(check_new_name(&image, "a-b").is_ok());
    }
}

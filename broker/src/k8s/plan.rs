//! What one reconciliation of a KafkaTopic must do, decided from the resource and the cluster's
//! metadata image alone: create the topic, change it, leave it, or refuse the spec. Nothing here
//! talks to Kubernetes or the quorum, so every rule is tested directly.
//!
//! A spec is applied whole or not at all: if any part of it cannot be applied (a lower partition
//! count, another replication factor, a renamed topic, a bad config), nothing is changed and the
//! refusal says why.

use std::collections::BTreeMap;

use raft_controller::{ConfigOp, MetadataImage};
use uuid::Uuid;

use super::condition::{reason, Verdict};
use super::kafka_topic::KafkaTopicSpec;
use super::topic_id;
use crate::coordinator::OFFSETS_TOPIC;
use crate::topic_config;

/// The reconciler's next step for one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The topic does not exist: create it as specified.
    Create,
    /// The topic exists; apply these changes (none: it already matches).
    Change(Change),
    /// The spec cannot be applied; nothing is changed.
    Refuse(Verdict),
}

/// Changes to an existing topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub topic_id: Uuid,
    /// The resource did not manage this topic before (`status.topicId` named no topic, or
    /// another one).
    pub adopted: bool,
    /// Turns the topic's overrides into exactly `spec.config`.
    pub config_ops: Vec<ConfigOp>,
    /// The new partition count, when it grows.
    pub grow_to: Option<i32>,
}

impl Change {
    /// Whether the topic already matches the spec.
    pub fn is_noop(&self) -> bool {
        self.config_ops.is_empty() && self.grow_to.is_none()
    }
}

/// Checks that do not depend on the topic: a legal, non-internal name, a replication factor
/// Kafka can represent, and configs the broker accepts.
pub fn check_spec(name: &str, spec: &KafkaTopicSpec) -> Result<(), Verdict> {
    kafka_core::validate_topic_name(name)
        .map_err(|e| Verdict::not_ready(reason::INVALID_TOPIC_NAME, e.to_string()))?;
    if name == OFFSETS_TOPIC {
        return Err(Verdict::not_ready(
            reason::INVALID_TOPIC_NAME,
            format!("{OFFSETS_TOPIC} is an internal topic managed by the broker"),
        ));
    }
    if spec.partitions < 1 || i16::try_from(spec.replicas).map_or(true, |r| r < 1) {
        return Err(Verdict::not_ready(
            reason::INVALID_SPEC,
            format!(
                "partitions ({}) must be >= 1 and replicas ({}) in 1..=32767",
                spec.partitions, spec.replicas
            ),
        ));
    }
    topic_config::validate(&spec.config)
        .map_err(|e| Verdict::not_ready(reason::INVALID_CONFIG, e.0))
}

/// Decides what to do for the topic `name` declared by `spec`, given the id recorded in
/// `status.topicId` (if any) and the current metadata image.
pub fn plan(
    name: &str,
    spec: &KafkaTopicSpec,
    managed: Option<&str>,
    image: &MetadataImage,
) -> Plan {
    let managed_id = managed.and_then(topic_id::decode);
    if let Some(previous) = managed_id.and_then(|id| image.topic_ids.get(&id)) {
        if previous != name {
            return Plan::Refuse(Verdict::not_ready(
                reason::TOPIC_NAME_CHANGE_NOT_SUPPORTED,
                format!("the resource manages topic {previous}; Kafka topics cannot be renamed (wanted {name})"),
            ));
        }
    }
    let Some(topic) = image.topic(name) else {
        return Plan::Create;
    };
    let current_partitions = topic.partitions.len();
    let replication_factor = topic.partitions.first().map_or(0, |p| p.replicas.len());
    if usize::try_from(spec.replicas).ok() != Some(replication_factor) {
        return Plan::Refuse(Verdict::not_ready(
            reason::REPLICATION_FACTOR_CHANGE_NOT_SUPPORTED,
            format!(
                "topic {name} has replication factor {replication_factor}; changing it to {} is not supported",
                spec.replicas
            ),
        ));
    }
    let wanted_partitions = usize::try_from(spec.partitions).unwrap_or(0);
    if wanted_partitions < current_partitions {
        return Plan::Refuse(Verdict::not_ready(
            reason::PARTITION_DECREASE_NOT_ALLOWED,
            format!(
                "topic {name} has {current_partitions} partitions; Kafka cannot lower that to {}",
                spec.partitions
            ),
        ));
    }
    Plan::Change(Change {
        topic_id: topic.id,
        adopted: managed_id != Some(topic.id),
        config_ops: config_ops(&topic.configs, &spec.config),
        grow_to: (wanted_partitions > current_partitions).then_some(spec.partitions),
    })
}

/// The operations that turn `current` overrides into exactly `desired`.
pub fn config_ops(
    current: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Vec<ConfigOp> {
    let sets = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| ConfigOp::Set(k.clone(), v.clone()));
    let deletes = current
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .map(|k| ConfigOp::Delete(k.clone()));
    sets.chain(deletes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_controller::{PartitionState, TopicImage};
    use std::sync::Arc;

    fn spec(partitions: i32, replicas: i32, config: &[(&str, &str)]) -> KafkaTopicSpec {
        KafkaTopicSpec {
            topic_name: None,
            partitions,
            replicas,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn image_with(
        name: &str,
        id: Uuid,
        partitions: usize,
        rf: usize,
        configs: &[(&str, &str)],
    ) -> MetadataImage {
        let mut image = MetadataImage::default();
        let topic = TopicImage {
            name: name.to_string(),
            id,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            partitions: (0..partitions)
                .map(|p| PartitionState {
                    partition: p as i32,
                    replicas: (0..rf as i32).collect(),
                    isr: (0..rf as i32).collect(),
                    leader: 0,
                    leader_epoch: 0,
                    partition_epoch: 0,
                })
                .collect(),
        };
        image.topics.insert(name.to_string(), Arc::new(topic));
        image.topic_ids.insert(id, name.to_string());
        image
    }

    fn refusal(plan: Plan) -> String {
        match plan {
            Plan::Refuse(v) => {
                assert!(!v.ready);
                v.reason
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn change(plan: Plan) -> Change {
        match plan {
            Plan::Change(c) => c,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn missing_topic_is_created() {
        let image = MetadataImage::default();
        assert_eq!(plan("orders", &spec(3, 1, &[]), None, &image), Plan::Create);
    }

    #[test]
    fn topic_deleted_behind_the_resource_is_created_again() {
        let gone = topic_id::encode(&Uuid::new_v4());
        let image = image_with("other", Uuid::new_v4(), 1, 1, &[]);
        assert_eq!(
            plan("orders", &spec(3, 1, &[]), Some(&gone), &image),
            Plan::Create
        );
    }

    #[test]
    fn matching_topic_needs_nothing() {
        let id = Uuid::new_v4();
        let image = image_with("orders", id, 3, 2, &[("retention.ms", "1000")]);
        let c = change(plan(
            "orders",
            &spec(3, 2, &[("retention.ms", "1000")]),
            Some(&topic_id::encode(&id)),
            &image,
        ));
        assert!(c.is_noop());
        assert!(!c.adopted);
        assert_eq!(c.topic_id, id);
    }

    #[test]
    fn existing_topic_not_created_by_the_resource_is_adopted() {
        let id = Uuid::new_v4();
        let image = image_with("orders", id, 3, 2, &[]);
        let c = change(plan("orders", &spec(3, 2, &[]), None, &image));
        assert!(c.adopted && c.is_noop());
        let other = topic_id::encode(&Uuid::new_v4());
        assert!(change(plan("orders", &spec(3, 2, &[]), Some(&other), &image)).adopted);
    }

    #[test]
    fn partitions_grow_and_configs_are_replaced() {
        let id = Uuid::new_v4();
        let image = image_with(
            "orders",
            id,
            3,
            2,
            &[
                ("retention.ms", "1000"),
                ("segment.ms", "5000"),
                ("flush.ms", "7"),
            ],
        );
        let c = change(plan(
            "orders",
            &spec(
                5,
                2,
                &[
                    ("retention.ms", "2000"),
                    ("flush.ms", "7"),
                    ("cleanup.policy", "compact"),
                ],
            ),
            Some(&topic_id::encode(&id)),
            &image,
        ));
        assert_eq!(c.grow_to, Some(5));
        assert_eq!(
            c.config_ops,
            vec![
                ConfigOp::Set("cleanup.policy".into(), "compact".into()),
                ConfigOp::Set("retention.ms".into(), "2000".into()),
                ConfigOp::Delete("segment.ms".into()),
            ]
        );
    }

    #[test]
    fn lower_partition_count_is_refused() {
        let id = Uuid::new_v4();
        let image = image_with("orders", id, 4, 1, &[]);
        let managed = topic_id::encode(&id);
        assert_eq!(
            refusal(plan(
                "orders",
                &spec(2, 1, &[("retention.ms", "1")]),
                Some(&managed),
                &image
            )),
            "PartitionDecreaseNotAllowed"
        );
    }

    #[test]
    fn replication_factor_change_is_refused() {
        let id = Uuid::new_v4();
        let image = image_with("orders", id, 4, 3, &[]);
        assert_eq!(
            refusal(plan("orders", &spec(6, 1, &[]), None, &image)),
            "ReplicationFactorChangeNotSupported"
        );
    }

    #[test]
    fn renaming_the_managed_topic_is_refused() {
        let id = Uuid::new_v4();
        let image = image_with("orders", id, 1, 1, &[]);
        let managed = topic_id::encode(&id);
        assert_eq!(
            refusal(plan("orders.v2", &spec(1, 1, &[]), Some(&managed), &image)),
            "TopicNameChangeNotSupported"
        );
    }

    #[test]
    fn spec_checks() {
        assert!(check_spec("orders", &spec(1, 1, &[("retention.ms", "1000")])).is_ok());
        let reason_of = |name: &str, s: KafkaTopicSpec| check_spec(name, &s).unwrap_err().reason;
        assert_eq!(reason_of("a/b", spec(1, 1, &[])), "InvalidTopicName");
        assert_eq!(reason_of("..", spec(1, 1, &[])), "InvalidTopicName");
        assert_eq!(
            reason_of(&"x".repeat(250), spec(1, 1, &[])),
            "InvalidTopicName"
        );
        assert_eq!(
            reason_of("__consumer_offsets", spec(1, 1, &[])),
            "InvalidTopicName"
        );
        assert_eq!(
            reason_of("orders", spec(1, 1, &[("no.such.config", "1")])),
            "InvalidConfig"
        );
        assert_eq!(
            reason_of("orders", spec(1, 1, &[("retention.ms", "soon")])),
            "InvalidConfig"
        );
        assert_eq!(reason_of("orders", spec(1, 40000, &[])), "InvalidSpec");
        assert_eq!(reason_of("orders", spec(0, 1, &[])), "InvalidSpec");
        let message = check_spec("orders", &spec(1, 1, &[("no.such.config", "1")]))
            .unwrap_err()
            .message;
        assert!(message.contains("no.such.config"), "{message}");
    }
}

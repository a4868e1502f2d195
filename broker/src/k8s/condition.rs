//! The KafkaTopic `Ready` condition: what the reconciler concluded, as a Kubernetes condition
//! whose `lastTransitionTime` moves only when its status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::kafka_topic::{Condition, ConditionStatus, READY};

/// Reasons the reconciler reports, CamelCase as Kubernetes conventions ask.
pub mod reason {
    /// The topic was created for the resource.
    pub const CREATED: &str = "Created";
    /// An existing topic was taken over by the resource.
    pub const ADOPTED: &str = "Adopted";
    /// Partitions were added or configs changed.
    pub const UPDATED: &str = "Updated";
    /// The topic already matched the resource.
    pub const UP_TO_DATE: &str = "UpToDate";
    /// Partitions or replicas outside what Kafka can represent.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The resource names a topic Kafka does not allow or the broker manages itself.
    pub const INVALID_TOPIC_NAME: &str = "InvalidTopicName";
    /// Another KafkaTopic declared the same topic first.
    pub const TOPIC_CLAIMED: &str = "TopicClaimed";
    /// `rivulet.io/delete-policy` is neither `retain` nor `delete`.
    pub const INVALID_DELETE_POLICY: &str = "InvalidDeletePolicy";
    /// `spec.config` names an unknown config or a bad value.
    pub const INVALID_CONFIG: &str = "InvalidConfig";
    /// `spec.topicName` changed after the topic was created.
    pub const TOPIC_NAME_CHANGE_NOT_SUPPORTED: &str = "TopicNameChangeNotSupported";
    /// `spec.partitions` is below the topic's partition count.
    pub const PARTITION_DECREASE_NOT_ALLOWED: &str = "PartitionDecreaseNotAllowed";
    /// `spec.replicas` differs from the topic's replication factor.
    pub const REPLICATION_FACTOR_CHANGE_NOT_SUPPORTED: &str = "ReplicationFactorChangeNotSupported";
    /// The resource is being deleted with policy `delete`, but `delete.topic.enable=false`.
    pub const TOPIC_DELETION_DISABLED: &str = "TopicDeletionDisabled";
}

/// What a reconciliation concluded about the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ready: bool,
    pub reason: String,
    pub message: String,
}

impl Verdict {
    pub fn ready(reason: &str, message: impl Into<String>) -> Verdict {
        Verdict {
            ready: true,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    pub fn not_ready(reason: &str, message: impl Into<String>) -> Verdict {
        Verdict {
            ready: false,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// `previous` with its Ready condition replaced by `verdict`. The transition time is kept while
/// the status stays the same, and set to `now` when it changes (or is first set); other condition
/// types are left as they are.
pub fn with_ready(
    previous: &[Condition],
    verdict: &Verdict,
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    let status = if verdict.ready {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let old = previous.iter().find(|c| c.type_ == READY);
    let last_transition_time = match old {
        Some(c) if c.status == status && c.last_transition_time.is_some() => {
            c.last_transition_time.clone()
        }
        _ => Some(now),
    };
    let ready = Condition {
        type_: READY.to_string(),
        status,
        reason: Some(verdict.reason.clone()),
        message: Some(verdict.message.clone()),
        last_transition_time,
        observed_generation: generation,
    };
    let mut conditions: Vec<Condition> = previous
        .iter()
        .filter(|c| c.type_ != READY)
        .cloned()
        .collect();
    conditions.push(ready);
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn ready_of(conditions: &[Condition]) -> &Condition {
        conditions.iter().find(|c| c.type_ == READY).unwrap()
    }

    #[test]
    fn first_verdict_sets_the_transition_time() {
        let conditions = with_ready(
            &[],
            &Verdict::ready(reason::CREATED, "3 partitions"),
            Some(1),
            at(100),
        );
        assert_eq!(conditions.len(), 1);
        let c = ready_of(&conditions);
        assert_eq!(c.status, ConditionStatus::True);
        assert_eq!(c.reason.as_deref(), Some("Created"));
        assert_eq!(c.message.as_deref(), Some("3 partitions"));
        assert_eq!(c.observed_generation, Some(1));
        assert_eq!(c.last_transition_time, Some(at(100)));
    }

    #[test]
    fn same_status_keeps_the_transition_time_even_when_the_reason_changes() {
        let first = with_ready(&[], &Verdict::ready(reason::CREATED, "a"), Some(1), at(100));
        let second = with_ready(
            &first,
            &Verdict::ready(reason::UPDATED, "b"),
            Some(2),
            at(200),
        );
        let c = ready_of(&second);
        assert_eq!(c.last_transition_time, Some(at(100)));
        assert_eq!(c.reason.as_deref(), Some("Updated"));
        assert_eq!(c.observed_generation, Some(2));
    }

    #[test]
    fn a_status_flip_moves_the_transition_time() {
        let first = with_ready(&[], &Verdict::ready(reason::CREATED, "a"), Some(1), at(100));
        let refused = with_ready(
            &first,
            &Verdict::not_ready(reason::PARTITION_DECREASE_NOT_ALLOWED, "b"),
            Some(2),
            at(200),
        );
        assert_eq!(ready_of(&refused).status, ConditionStatus::False);
        assert_eq!(ready_of(&refused).last_transition_time, Some(at(200)));
        let still = with_ready(
            &refused,
            &Verdict::not_ready(reason::INVALID_CONFIG, "c"),
            Some(3),
            at(300),
        );
        assert_eq!(ready_of(&still).last_transition_time, Some(at(200)));
        let back = with_ready(
            &still,
            &Verdict::ready(reason::UPDATED, "d"),
            Some(4),
            at(400),
        );
        assert_eq!(ready_of(&back).last_transition_time, Some(at(400)));
    }

    #[test]
    fn other_conditions_are_kept() {
        let other = Condition {
            type_: "Synced".to_string(),
            status: ConditionStatus::Unknown,
            reason: None,
            message: None,
            last_transition_time: Some(at(5)),
            observed_generation: None,
        };
        let conditions = with_ready(
            std::slice::from_ref(&other),
            &Verdict::ready(reason::CREATED, "a"),
            Some(1),
            at(100),
        );
        assert_eq!(conditions.len(), 2);
        assert!(conditions.contains(&other));
    }
}

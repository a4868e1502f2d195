//! Error types: `ControllerError` is the controller's answer to a request (each maps to the
//! Kafka error code a real controller returns); `QuorumError` is a failure to get an answer.

use kafka_core::ErrorCode;
use serde::{Deserialize, Serialize};

/// A controller's refusal of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ControllerError {
    /// TOPIC_ALREADY_EXISTS (36).
    #[error("topic already exists: {0}")]
    TopicAlreadyExists(String),
    /// UNKNOWN_TOPIC_OR_PARTITION (3).
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),
    /// INVALID_TOPIC_EXCEPTION (17).
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    /// INVALID_PARTITIONS (37).
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    /// INVALID_REPLICATION_FACTOR (38).
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    /// INVALID_REPLICA_ASSIGNMENT (39).
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// INVALID_CONFIG (40).
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// FENCED_LEADER_EPOCH (74): the proposer's leader epoch is not the current one.
    #[error("the leader epoch in the request is not current")]
    FencedLeaderEpoch,
    /// INVALID_UPDATE_VERSION (95): the proposer's partition epoch is not the current one.
    #[error("the partition epoch in the request is not current")]
    InvalidUpdateVersion,
    /// STALE_BROKER_EPOCH (77).
    #[error("the broker epoch in the request is not current")]
    StaleBrokerEpoch,
    /// INELIGIBLE_REPLICA (107).
    #[error("ineligible replica: {0}")]
    IneligibleReplica(String),
    /// NOT_LEADER_OR_FOLLOWER (6): the proposer does not lead the partition.
    #[error("the requesting broker is not the leader of the partition")]
    NotLeaderOrFollower,
    /// BROKER_ID_NOT_REGISTERED (102).
    #[error("broker {0} is not registered")]
    BrokerIdNotRegistered(i32),
    /// DUPLICATE_BROKER_REGISTRATION (101).
    #[error("broker {0} is already registered by another live process")]
    DuplicateBrokerRegistration(i32),
    /// PREFERRED_LEADER_NOT_AVAILABLE (80).
    #[error("the preferred leader is not available")]
    PreferredLeaderNotAvailable,
    /// ELECTION_NOT_NEEDED (84).
    #[error("leader election not needed")]
    ElectionNotNeeded,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE (83).
    #[error("no eligible leader is available")]
    EligibleLeadersNotAvailable,
    /// INVALID_REQUEST (42).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ControllerError {
    /// The Kafka protocol error code for this answer.
    pub fn kafka_error_code(&self) -> ErrorCode {
        match self {
            ControllerError::TopicAlreadyExists(_) => ErrorCode::TOPIC_ALREADY_EXISTS,
            ControllerError::UnknownTopicOrPartition(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            ControllerError::InvalidTopic(_) => ErrorCode::INVALID_TOPIC_EXCEPTION,
            ControllerError::InvalidPartitions(_) => ErrorCode::INVALID_PARTITIONS,
            ControllerError::InvalidReplicationFactor(_) => ErrorCode::INVALID_REPLICATION_FACTOR,
            ControllerError::InvalidReplicaAssignment(_) => ErrorCode::INVALID_REPLICA_ASSIGNMENT,
            ControllerError::InvalidConfig(_) => ErrorCode::INVALID_CONFIG,
            ControllerError::FencedLeaderEpoch => ErrorCode::FENCED_LEADER_EPOCH,
            ControllerError::InvalidUpdateVersion => ErrorCode::INVALID_UPDATE_VERSION,
            ControllerError::StaleBrokerEpoch => ErrorCode::STALE_BROKER_EPOCH,
            ControllerError::IneligibleReplica(_) => ErrorCode::INELIGIBLE_REPLICA,
            ControllerError::NotLeaderOrFollower => ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ControllerError::BrokerIdNotRegistered(_) => ErrorCode::BROKER_ID_NOT_REGISTERED,
            ControllerError::DuplicateBrokerRegistration(_) => {
                ErrorCode::DUPLICATE_BROKER_REGISTRATION
            }
            ControllerError::PreferredLeaderNotAvailable => {
                ErrorCode::PREFERRED_LEADER_NOT_AVAILABLE
            }
            ControllerError::ElectionNotNeeded => ErrorCode::ELECTION_NOT_NEEDED,
            ControllerError::EligibleLeadersNotAvailable => {
                ErrorCode::ELIGIBLE_LEADERS_NOT_AVAILABLE
            }
            ControllerError::InvalidRequest(_) => ErrorCode::INVALID_REQUEST,
        }
    }
}

/// A failure of the quorum itself: no answer could be obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum QuorumError {
    /// The node asked is not the controller; `leader` is the one it knows of, if any.
    #[error("not the controller (known leader: {leader:?})")]
    NotLeader {
        /// The current leader as far as the answering node knows.
        leader: Option<i32>,
    },
    /// No answer within the request timeout (no leader, or no commit).
    #[error("timed out")]
    Timeout,
    /// Network failure talking to a peer.
    #[error("io error: {0}")]
    Io(String),
    /// Local storage (sled) failure.
    #[error("storage error: {0}")]
    Storage(String),
    /// Raft reported a failure.
    #[error("raft error: {0}")]
    Raft(String),
    /// The quorum is shut down.
    #[error("quorum is shut down")]
    Shutdown,
    /// The configuration is unusable.
    #[error("invalid quorum configuration: {0}")]
    InvalidConfig(String),
}

impl From<sled::Error> for QuorumError {
    fn from(e: sled::Error) -> Self {
        QuorumError::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_codes() {
        assert_eq!(ErrorCode::INVALID_UPDATE_VERSION.code(), 95);
        assert_eq!(
            ControllerError::InvalidUpdateVersion.kafka_error_code(),
            ErrorCode::INVALID_UPDATE_VERSION
        );
        assert_eq!(
            ControllerError::FencedLeaderEpoch.kafka_error_code(),
            ErrorCode::FENCED_LEADER_EPOCH
        );
        assert_eq!(
            ControllerError::TopicAlreadyExists("t".into()).kafka_error_code(),
            ErrorCode::TOPIC_ALREADY_EXISTS
        );
        assert_eq!(
            ControllerError::InvalidTopic("t".into()).kafka_error_code(),
            ErrorCode::INVALID_TOPIC_EXCEPTION
        );
    }
}

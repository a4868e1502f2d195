//! Kafka protocol error codes as a type. The numbers, retriability and names all come from
//! `kafka_protocol`'s [`ResponseError`]; this file only names the codes Rivulet answers with.

use std::fmt;

use kafka_protocol::error::ResponseError;

/// A Kafka protocol error code (`0` is [`ErrorCode::NONE`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(i16);

macro_rules! codes {
    ($($name:ident = $variant:ident,)*) => {
        impl ErrorCode {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub const $name: ErrorCode = ErrorCode::of(ResponseError::$variant);
            )*
        }
    };
}

impl ErrorCode {
    /// No error.
    pub const NONE: ErrorCode = ErrorCode(0);

    /// The code of a protocol error.
    pub const fn of(error: ResponseError) -> ErrorCode {
        ErrorCode(error.code())
    }

    /// Any code as received on the wire; codes this build does not know keep their number.
    pub const fn from_code(code: i16) -> ErrorCode {
        ErrorCode(code)
    }

    /// The number sent on the wire.
    pub const fn code(self) -> i16 {
        self.0
    }

    /// Whether a client may retry the request (Kafka's `RetriableException`s).
    pub const fn is_retriable(self) -> bool {
        match ResponseError::try_from_code(self.0) {
            Some(error) => error.is_retriable(),
            None => false,
        }
    }

    /// Kafka's name for the code (`NOT_LEADER_OR_FOLLOWER`), as in `Errors.java` and the
    /// protocol guide; `UNKNOWN_ERROR_CODE_<n>` for a number Kafka does not define.
    pub fn name(self) -> String {
        match ResponseError::try_from_code(self.0) {
            None => "NONE".to_string(),
            Some(ResponseError::Unknown(code)) => format!("UNKNOWN_ERROR_CODE_{code}"),
            Some(error) => upper_snake(&error.to_string()),
        }
    }
}

codes! {
    UNKNOWN_SERVER_ERROR = UnknownServerError,
    OFFSET_OUT_OF_RANGE = OffsetOutOfRange,
    CORRUPT_MESSAGE = CorruptMessage,
    UNKNOWN_TOPIC_OR_PARTITION = UnknownTopicOrPartition,
    INVALID_FETCH_SIZE = InvalidFetchSize,
    LEADER_NOT_AVAILABLE = LeaderNotAvailable,
    NOT_LEADER_OR_FOLLOWER = NotLeaderOrFollower,
    REQUEST_TIMED_OUT = RequestTimedOut,
    BROKER_NOT_AVAILABLE = BrokerNotAvailable,
    REPLICA_NOT_AVAILABLE = ReplicaNotAvailable,
    MESSAGE_TOO_LARGE = MessageTooLarge,
    OFFSET_METADATA_TOO_LARGE = OffsetMetadataTooLarge,
    NETWORK_EXCEPTION = NetworkException,
    COORDINATOR_LOAD_IN_PROGRESS = CoordinatorLoadInProgress,
    COORDINATOR_NOT_AVAILABLE = CoordinatorNotAvailable,
    NOT_COORDINATOR = NotCoordinator,
    INVALID_TOPIC_EXCEPTION = InvalidTopicException,
    RECORD_LIST_TOO_LARGE = RecordListTooLarge,
    NOT_ENOUGH_REPLICAS = NotEnoughReplicas,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = NotEnoughReplicasAfterAppend,
    INVALID_REQUIRED_ACKS = InvalidRequiredAcks,
    ILLEGAL_GENERATION = IllegalGeneration,
    INCONSISTENT_GROUP_PROTOCOL = InconsistentGroupProtocol,
    INVALID_GROUP_ID = InvalidGroupId,
    UNKNOWN_MEMBER_ID = UnknownMemberId,
    INVALID_SESSION_TIMEOUT = InvalidSessionTimeout,
    REBALANCE_IN_PROGRESS = RebalanceInProgress,
    INVALID_COMMIT_OFFSET_SIZE = InvalidCommitOffsetSize,
    TOPIC_AUTHORIZATION_FAILED = TopicAuthorizationFailed,
    CLUSTER_AUTHORIZATION_FAILED = ClusterAuthorizationFailed,
    GROUP_AUTHORIZATION_FAILED = GroupAuthorizationFailed,
    INVALID_TIMESTAMP = InvalidTimestamp,
    UNSUPPORTED_SASL_MECHANISM = UnsupportedSaslMechanism,
    ILLEGAL_SASL_STATE = IllegalSaslState,
    SASL_AUTHENTICATION_FAILED = SaslAuthenticationFailed,
    UNSUPPORTED_VERSION = UnsupportedVersion,
    TOPIC_ALREADY_EXISTS = TopicAlreadyExists,
    INVALID_PARTITIONS = InvalidPartitions,
    INVALID_REPLICATION_FACTOR = InvalidReplicationFactor,
    INVALID_REPLICA_ASSIGNMENT = InvalidReplicaAssignment,
    INVALID_CONFIG = InvalidConfig,
    NOT_CONTROLLER = NotController,
    INVALID_REQUEST = InvalidRequest,
    UNSUPPORTED_FOR_MESSAGE_FORMAT = UnsupportedForMessageFormat,
    POLICY_VIOLATION = PolicyViolation,
    OUT_OF_ORDER_SEQUENCE_NUMBER = OutOfOrderSequenceNumber,
    DUPLICATE_SEQUENCE_NUMBER = DuplicateSequenceNumber,
    INVALID_PRODUCER_EPOCH = InvalidProducerEpoch,
    INVALID_TXN_STATE = InvalidTxnState,
    INVALID_PRODUCER_ID_MAPPING = InvalidProducerIdMapping,
    INVALID_TRANSACTION_TIMEOUT = InvalidTransactionTimeout,
    CONCURRENT_TRANSACTIONS = ConcurrentTransactions,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = TransactionalIdAuthorizationFailed,
    SECURITY_DISABLED = SecurityDisabled,
    KAFKA_STORAGE_ERROR = KafkaStorageError,
    LOG_DIR_NOT_FOUND = LogDirNotFound,
    UNKNOWN_PRODUCER_ID = UnknownProducerId,
    REASSIGNMENT_IN_PROGRESS = ReassignmentInProgress,
    NON_EMPTY_GROUP = NonEmptyGroup,
    GROUP_ID_NOT_FOUND = GroupIdNotFound,
    FETCH_SESSION_ID_NOT_FOUND = FetchSessionIdNotFound,
    INVALID_FETCH_SESSION_EPOCH = InvalidFetchSessionEpoch,
    LISTENER_NOT_FOUND = ListenerNotFound,
    TOPIC_DELETION_DISABLED = TopicDeletionDisabled,
    FENCED_LEADER_EPOCH = FencedLeaderEpoch,
    UNKNOWN_LEADER_EPOCH = UnknownLeaderEpoch,
    UNSUPPORTED_COMPRESSION_TYPE = UnsupportedCompressionType,
    STALE_BROKER_EPOCH = StaleBrokerEpoch,
    OFFSET_NOT_AVAILABLE = OffsetNotAvailable,
    MEMBER_ID_REQUIRED = MemberIdRequired,
    PREFERRED_LEADER_NOT_AVAILABLE = PreferredLeaderNotAvailable,
    GROUP_MAX_SIZE_REACHED = GroupMaxSizeReached,
    FENCED_INSTANCE_ID = FencedInstanceId,
    ELIGIBLE_LEADERS_NOT_AVAILABLE = EligibleLeadersNotAvailable,
    ELECTION_NOT_NEEDED = ElectionNotNeeded,
    NO_REASSIGNMENT_IN_PROGRESS = NoReassignmentInProgress,
    GROUP_SUBSCRIBED_TO_TOPIC = GroupSubscribedToTopic,
    INVALID_RECORD = InvalidRecord,
    UNSTABLE_OFFSET_COMMIT = UnstableOffsetCommit,
    THROTTLING_QUOTA_EXCEEDED = ThrottlingQuotaExceeded,
    PRODUCER_FENCED = ProducerFenced,
    INVALID_UPDATE_VERSION = InvalidUpdateVersion,
    UNKNOWN_TOPIC_ID = UnknownTopicId,
    DUPLICATE_BROKER_REGISTRATION = DuplicateBrokerRegistration,
    BROKER_ID_NOT_REGISTERED = BrokerIdNotRegistered,
    INCONSISTENT_TOPIC_ID = InconsistentTopicId,
    INELIGIBLE_REPLICA = IneligibleReplica,
    FENCED_MEMBER_EPOCH = FencedMemberEpoch,
    UNRELEASED_INSTANCE_ID = UnreleasedInstanceId,
    UNSUPPORTED_ASSIGNOR = UnsupportedAssignor,
    RESOURCE_NOT_FOUND = ResourceNotFound,
    DUPLICATE_RESOURCE = DuplicateResource,
    UNACCEPTABLE_CREDENTIAL = UnacceptableCredential,
}

/// `NotLeaderOrFollower` -> `NOT_LEADER_OR_FOLLOWER`.
fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> i16 {
        code.0
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_kafkas() {
        assert_eq!(ErrorCode::NONE.code(), 0);
        assert_eq!(ErrorCode::UNKNOWN_SERVER_ERROR.code(), -1);
        assert_eq!(ErrorCode::NOT_LEADER_OR_FOLLOWER.code(), 6);
        assert_eq!(ErrorCode::INVALID_TOPIC_EXCEPTION.code(), 17);
        assert_eq!(ErrorCode::INVALID_UPDATE_VERSION.code(), 95);
        assert_eq!(ErrorCode::INELIGIBLE_REPLICA.code(), 107);
        assert_eq!(ErrorCode::UNSUPPORTED_ASSIGNOR.code(), 112);
        assert_eq!(i16::from(ErrorCode::INVALID_CONFIG), 40);
        assert_eq!(ErrorCode::from_code(40), ErrorCode::INVALID_CONFIG);
    }

    #[test]
    fn names_are_kafkas() {
        assert_eq!(ErrorCode::NONE.name(), "NONE");
        assert_eq!(
            ErrorCode::UNKNOWN_SERVER_ERROR.name(),
            "UNKNOWN_SERVER_ERROR"
        );
        assert_eq!(
            ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND.to_string(),
            "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
        );
        assert_eq!(ErrorCode::KAFKA_STORAGE_ERROR.name(), "KAFKA_STORAGE_ERROR");
        assert_eq!(
            ErrorCode::from_code(58).name(),
            "SASL_AUTHENTICATION_FAILED"
        );
        assert_eq!(ErrorCode::from_code(9999).name(), "UNKNOWN_ERROR_CODE_9999");
        assert_eq!(
            format!("{:?}", ErrorCode::NOT_COORDINATOR),
            "NOT_COORDINATOR(16)"
        );
    }

    #[test]
    fn retriability_is_kafkas() {
        assert!(ErrorCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
        assert!(ErrorCode::REQUEST_TIMED_OUT.is_retriable());
        assert!(!ErrorCode::INVALID_CONFIG.is_retriable());
        assert!(!ErrorCode::NONE.is_retriable());
        assert!(!ErrorCode::from_code(9999).is_retriable());
    }
}

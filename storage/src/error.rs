//! Storage error type: one variant per failure a caller must tell apart, each mapped to the
//! Kafka error code a real broker answers with.

use std::io;

use kafka_core::ErrorCode;

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Bad CRC, impossible length or a truncated batch (`CORRUPT_MESSAGE`, 2).
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    /// Structurally valid bytes that break a record rule: magic != 2, bad record framing,
    /// record count mismatch, not exactly one batch where one is required (`INVALID_RECORD`, 87).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A batch larger than `max.message.bytes` (`MESSAGE_TOO_LARGE`, 10).
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: u32 },
    /// A batch larger than `segment.bytes` (`RECORD_LIST_TOO_LARGE`, 18).
    #[error("record batch of {size} bytes exceeds segment.bytes {max}")]
    RecordListTooLarge { size: usize, max: u64 },
    /// An offset outside `[log start, log end]` (`OFFSET_OUT_OF_RANGE`, 1).
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    /// An idempotent producer skipped or repeated a sequence number
    /// (`OUT_OF_ORDER_SEQUENCE_NUMBER`, 45).
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    /// A producer epoch older than the one already seen (`INVALID_PRODUCER_EPOCH`, 47).
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        got: i16,
    },
    /// A record timestamp the topic's timestamp rules reject (`INVALID_TIMESTAMP`, 32).
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// A follower append that does not start at the log end offset (`UNKNOWN_SERVER_ERROR`, -1).
    #[error("unexpected append offset: log end offset is {expected}, batch starts at {got}")]
    UnexpectedAppendOffset { expected: i64, got: i64 },
    /// A topic config value that cannot be used (`INVALID_CONFIG`, 40).
    #[error("invalid value {value:?} for config {key}: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },
    /// The log was closed or deleted; it takes no more writes (`KAFKA_STORAGE_ERROR`, 56).
    #[error("log {0} is closed")]
    LogClosed(String),
    /// The log's directory went offline after an I/O error; nothing more is written there
    /// (`KAFKA_STORAGE_ERROR`, 56).
    #[error("log dir {dir} is offline: {reason}")]
    LogDirOffline { dir: String, reason: String },
    /// Stored bytes that fail verification on read: a bad CRC, header or offset in a batch
    /// on disk (`KAFKA_STORAGE_ERROR`, 56). Nothing from `position` on is served; `offset` is
    /// the first offset the bad batch should hold (everything before it is intact).
    #[error(
        "corrupt batch in segment {segment} at position {position} (offset {offset}): {reason}"
    )]
    Corrupt {
        segment: i64,
        position: u64,
        offset: i64,
        reason: String,
    },
    /// A file system operation failed (`KAFKA_STORAGE_ERROR`, 56).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    /// The Kafka protocol error code for this error.
    pub fn kafka_error_code(&self) -> ErrorCode {
        match self {
            StorageError::CorruptMessage(_) => ErrorCode::CORRUPT_MESSAGE,
            StorageError::InvalidRecord(_) => ErrorCode::INVALID_RECORD,
            StorageError::MessageTooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
            StorageError::RecordListTooLarge { .. } => ErrorCode::RECORD_LIST_TOO_LARGE,
            StorageError::OffsetOutOfRange { .. } => ErrorCode::OFFSET_OUT_OF_RANGE,
            StorageError::OutOfOrderSequence { .. } => ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            StorageError::InvalidProducerEpoch { .. } => ErrorCode::INVALID_PRODUCER_EPOCH,
            StorageError::InvalidTimestamp(_) => ErrorCode::INVALID_TIMESTAMP,
            StorageError::UnexpectedAppendOffset { .. } => ErrorCode::UNKNOWN_SERVER_ERROR,
            StorageError::InvalidConfig { .. } => ErrorCode::INVALID_CONFIG,
            StorageError::LogClosed(_)
            | StorageError::LogDirOffline { .. }
            | StorageError::Corrupt { .. }
            | StorageError::Io { .. } => ErrorCode::KAFKA_STORAGE_ERROR,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> StorageError {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Attaches a context string to I/O results.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| StorageError::io(context(), source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        assert_eq!(
            StorageError::CorruptMessage("x".into()).kafka_error_code(),
            ErrorCode::CORRUPT_MESSAGE
        );
        assert_eq!(
            StorageError::InvalidRecord("x".into()).kafka_error_code(),
            ErrorCode::INVALID_RECORD
        );
        assert_eq!(
            StorageError::MessageTooLarge { size: 2, max: 1 }.kafka_error_code(),
            ErrorCode::MESSAGE_TOO_LARGE
        );
        assert_eq!(
            StorageError::RecordListTooLarge { size: 2, max: 1 }.kafka_error_code(),
            ErrorCode::RECORD_LIST_TOO_LARGE
        );
        assert_eq!(
            StorageError::OffsetOutOfRange {
                offset: 9,
                log_start: 0,
                log_end: 1
            }
            .kafka_error_code(),
            ErrorCode::OFFSET_OUT_OF_RANGE
        );
        assert_eq!(
            StorageError::OutOfOrderSequence {
                producer_id: 1,
                expected: 1,
                got: 3
            }
            .kafka_error_code(),
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        assert_eq!(
            StorageError::InvalidProducerEpoch {
                producer_id: 1,
                current: 2,
                got: 1
            }
            .kafka_error_code(),
            ErrorCode::INVALID_PRODUCER_EPOCH
        );
        assert_eq!(
            StorageError::InvalidTimestamp("t".into()).kafka_error_code(),
            ErrorCode::INVALID_TIMESTAMP
        );
        assert_eq!(
            StorageError::UnexpectedAppendOffset {
                expected: 1,
                got: 0
            }
            .kafka_error_code(),
            ErrorCode::UNKNOWN_SERVER_ERROR
        );
        assert_eq!(
            StorageError::InvalidConfig {
                key: "k".into(),
                value: "v".into(),
                reason: "r".into()
            }
            .kafka_error_code(),
            ErrorCode::INVALID_CONFIG
        );
        let io = StorageError::io("write", io::Error::other("disk"));
        assert_eq!(io.kafka_error_code(), ErrorCode::KAFKA_STORAGE_ERROR);
        assert_eq!(io.to_string(), "write: disk");
        assert_eq!(
            StorageError::LogClosed("t-0".into()).kafka_error_code(),
            ErrorCode::KAFKA_STORAGE_ERROR
        );
        assert_eq!(
            StorageError::Corrupt {
                segment: 0,
                position: 0,
                offset: 0,
                reason: "crc".into()
            }
            .kafka_error_code(),
            ErrorCode::KAFKA_STORAGE_ERROR
        );
    }
}

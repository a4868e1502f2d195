//! Writing coordinator records to a `__consumer_offsets` partition this broker leads: one
//! uncompressed batch appended as leader with acks=all, then a wait until the high watermark
//! covers it. Also Kafka's translation of write errors into what group clients expect.

use std::sync::Arc;
use std::time::Duration;

use kafka_core::ErrorCode;
use tracing::warn;

use super::offsets_topic::{build_batch, CoordinatorRecord};
use crate::replica::{now_ms, Partition};

/// Records appended to the leader's log, not necessarily replicated yet.
#[derive(Debug)]
pub struct Appended {
    partition: Arc<Partition>,
    /// Offset of the first record (the others follow in order).
    pub first_offset: i64,
    next_offset: i64,
}

/// Appends `records` as one batch. Err: the Kafka error code of the failed append.
pub fn append(
    partition: &Arc<Partition>,
    records: &[CoordinatorRecord],
) -> Result<Appended, ErrorCode> {
    let now = now_ms();
    let batch = build_batch(records, now).map_err(|e| {
        warn!(partition = %partition.tp, error = %e, "cannot encode coordinator records");
        ErrorCode::UNKNOWN_SERVER_ERROR
    })?;
    let info = partition.append_as_leader(batch, -1, now).map_err(|e| {
        warn!(partition = %partition.tp, error = %e.code, reason = %e.message, "appending coordinator records failed");
        e.code
    })?;
    Ok(Appended {
        partition: partition.clone(),
        first_offset: info.first_offset,
        next_offset: info.last_offset + 1,
    })
}

impl Appended {
    /// Waits until the records are replicated to the ISR (acks=all). Returns the error code.
    pub async fn replicated(&self, timeout: Duration) -> ErrorCode {
        self.partition
            .wait_for_high_watermark(self.next_offset, timeout)
            .await
    }
}

/// Kafka's `maybeConvertOffsetCommitError`.
pub fn offset_commit_error(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        | ErrorCode::NOT_ENOUGH_REPLICAS
        | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND
        | ErrorCode::REQUEST_TIMED_OUT => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::KAFKA_STORAGE_ERROR => {
            ErrorCode::NOT_COORDINATOR
        }
        ErrorCode::MESSAGE_TOO_LARGE
        | ErrorCode::RECORD_LIST_TOO_LARGE
        | ErrorCode::INVALID_FETCH_SIZE => ErrorCode::INVALID_COMMIT_OFFSET_SIZE,
        other => other,
    }
}

/// Kafka's error translation for group metadata writes (`storeGroup`).
pub fn group_store_error(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        | ErrorCode::NOT_ENOUGH_REPLICAS
        | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::KAFKA_STORAGE_ERROR => {
            ErrorCode::NOT_COORDINATOR
        }
        ErrorCode::REQUEST_TIMED_OUT => ErrorCode::REBALANCE_IN_PROGRESS,
        ErrorCode::MESSAGE_TOO_LARGE
        | ErrorCode::RECORD_LIST_TOO_LARGE
        | ErrorCode::INVALID_FETCH_SIZE => ErrorCode::UNKNOWN_SERVER_ERROR,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_translate_like_kafka() {
        assert_eq!(
            offset_commit_error(ErrorCode::REQUEST_TIMED_OUT),
            ErrorCode::COORDINATOR_NOT_AVAILABLE
        );
        assert_eq!(
            offset_commit_error(ErrorCode::NOT_LEADER_OR_FOLLOWER),
            ErrorCode::NOT_COORDINATOR
        );
        assert_eq!(
            offset_commit_error(ErrorCode::MESSAGE_TOO_LARGE),
            ErrorCode::INVALID_COMMIT_OFFSET_SIZE
        );
        assert_eq!(offset_commit_error(ErrorCode::NONE), ErrorCode::NONE);
        assert_eq!(
            group_store_error(ErrorCode::REQUEST_TIMED_OUT),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
        assert_eq!(
            group_store_error(ErrorCode::NOT_ENOUGH_REPLICAS),
            ErrorCode::COORDINATOR_NOT_AVAILABLE
        );
        assert_eq!(
            group_store_error(ErrorCode::KAFKA_STORAGE_ERROR),
            ErrorCode::NOT_COORDINATOR
        );
    }
}

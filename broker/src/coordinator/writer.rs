//! Writing coordinator records to a `__consumer_offsets` partition this broker leads: one
//! uncompressed batch appended as leader with acks=all, then a wait until the high watermark
//! covers it. Also Kafka's translation of write errors into what group clients expect.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::offsets_topic::{build_batch, CoordinatorRecord};
use crate::error_codes::*;
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
pub fn append(partition: &Arc<Partition>, records: &[CoordinatorRecord]) -> Result<Appended, i16> {
    let now = now_ms();
    let batch = build_batch(records, now).map_err(|e| {
        warn!(partition = %partition.tp, error = %e, "cannot encode coordinator records");
        UNKNOWN_SERVER_ERROR
    })?;
    let info = partition.append_as_leader(batch, -1, now).map_err(|e| {
        warn!(partition = %partition.tp, error = crate::error_codes::name(e.code), reason = %e.message, "appending coordinator records failed");
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
    pub async fn replicated(&self, timeout: Duration) -> i16 {
        self.partition
            .wait_for_high_watermark(self.next_offset, timeout)
            .await
    }
}

/// Kafka's `maybeConvertOffsetCommitError`.
pub fn offset_commit_error(code: i16) -> i16 {
    match code {
        UNKNOWN_TOPIC_OR_PARTITION
        | NOT_ENOUGH_REPLICAS
        | NOT_ENOUGH_REPLICAS_AFTER_APPEND
        | REQUEST_TIMED_OUT => COORDINATOR_NOT_AVAILABLE,
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE | INVALID_FETCH_SIZE => {
            INVALID_COMMIT_OFFSET_SIZE
        }
        other => other,
    }
}

/// Kafka's error translation for group metadata writes (`storeGroup`).
pub fn group_store_error(code: i16) -> i16 {
    match code {
        UNKNOWN_TOPIC_OR_PARTITION | NOT_ENOUGH_REPLICAS | NOT_ENOUGH_REPLICAS_AFTER_APPEND => {
            COORDINATOR_NOT_AVAILABLE
        }
        NOT_LEADER_OR_FOLLOWER | KAFKA_STORAGE_ERROR => NOT_COORDINATOR,
        REQUEST_TIMED_OUT => REBALANCE_IN_PROGRESS,
        MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE | INVALID_FETCH_SIZE => UNKNOWN_SERVER_ERROR,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_translate_like_kafka() {
        assert_eq!(
            offset_commit_error(REQUEST_TIMED_OUT),
            COORDINATOR_NOT_AVAILABLE
        );
        assert_eq!(offset_commit_error(NOT_LEADER_OR_FOLLOWER), NOT_COORDINATOR);
        assert_eq!(
            offset_commit_error(MESSAGE_TOO_LARGE),
            INVALID_COMMIT_OFFSET_SIZE
        );
        assert_eq!(offset_commit_error(NONE), NONE);
        assert_eq!(group_store_error(REQUEST_TIMED_OUT), REBALANCE_IN_PROGRESS);
        assert_eq!(
            group_store_error(NOT_ENOUGH_REPLICAS),
            COORDINATOR_NOT_AVAILABLE
        );
        assert_eq!(group_store_error(KAFKA_STORAGE_ERROR), NOT_COORDINATOR);
    }
}

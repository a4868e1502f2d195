//! ListOffsets: earliest, latest, max-timestamp and by-timestamp lookups on partition leaders.

use std::sync::Arc;

use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use storage::TopicPartition;
use tracing::debug;

use super::authorization::{authorized, Check};
use super::{ready, Pending, RequestContext};
use crate::context::{Context, PartitionLookup};
use crate::replica::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub fn handle(ctx: &Arc<Context>, rc: RequestContext, request: ListOffsetsRequest) -> Pending {
    let consumer = request.replica_id.0 == -1;
    let read_committed = request.isolation_level == 1;
    let mut first_error = ErrorCode::NONE;
    let mut topics = Vec::with_capacity(request.topics.len());
    let check = Check::new(ctx, &rc);
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let allowed = authorized(check.topic(AclOperation::Describe, &name));
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition_index,
            };
            let mut out = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let result = allowed
                .and_then(|()| ctx.led_partition(&tp))
                .and_then(|partition| {
                    lookup(
                        &partition,
                        p.current_leader_epoch,
                        p.timestamp,
                        consumer,
                        read_committed,
                        rc.version,
                    )
                });
            match result {
                Ok((timestamp, offset, epoch)) => {
                    out.timestamp = timestamp;
                    out.offset = offset;
                    // The leader epoch exists from v4 on.
                    if rc.version >= 4 {
                        out.leader_epoch = epoch;
                    }
                }
                Err(code) => {
                    debug!(partition = %tp, error = %code, "list offsets error");
                    if first_error == ErrorCode::NONE {
                        first_error = code;
                    }
                    out.error_code = code.code();
                }
            }
            partitions.push(out);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    let response = ListOffsetsResponse::default().with_topics(topics);
    ready(rc.respond(&response, first_error))
}

fn lookup(
    partition: &Partition,
    current_leader_epoch: i32,
    timestamp: i64,
    consumer: bool,
    read_committed: bool,
    version: i16,
) -> Result<(i64, i64, i32), ErrorCode> {
    partition
        .check_leader_epoch(current_leader_epoch)
        .map_err(|e| e.code)?;
    let log = partition.log();
    let latest_epoch = log.latest_epoch().unwrap_or(-1);
    // Consumers never see past the high watermark (read_committed: the last stable offset,
    // which equals the high watermark without transactions).
    let fetchable = if consumer || read_committed {
        partition.high_watermark()
    } else {
        log.log_end_offset()
    };
    match timestamp {
        LATEST => Ok((-1, fetchable, latest_epoch)),
        EARLIEST => Ok((
            -1,
            log.log_start_offset(),
            epoch_at(log, log.log_start_offset()),
        )),
        EARLIEST_LOCAL if version >= 8 => Ok((
            -1,
            log.log_start_offset(),
            epoch_at(log, log.log_start_offset()),
        )),
        MAX_TIMESTAMP if version >= 7 => match log.max_timestamp_offset() {
            Ok(Some(t)) if t.offset < fetchable => {
                Ok((t.timestamp, t.offset, t.leader_epoch.unwrap_or(-1)))
            }
            Ok(_) => Ok((-1, -1, -1)),
            Err(e) => Err(e.kafka_error_code()),
        },
        ts if ts < 0 => Err(ErrorCode::INVALID_REQUEST),
        ts => match log.offset_for_timestamp(ts) {
            Ok(Some(t)) if t.offset < fetchable => {
                Ok((t.timestamp, t.offset, t.leader_epoch.unwrap_or(-1)))
            }
            Ok(_) => Ok((-1, -1, -1)),
            Err(e) => Err(e.kafka_error_code()),
        },
    }
}

/// The leader epoch of the batch holding `offset`, from the epoch cache.
fn epoch_at(log: &storage::Log, offset: i64) -> i32 {
    log.epoch_entries()
        .iter()
        .rev()
        .find(|(_, start)| *start <= offset)
        .map(|(e, _)| *e)
        .unwrap_or(-1)
}

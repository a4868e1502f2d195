//! DeleteRecords: advance a partition's log start offset on its leader (followers follow the
//! leader's log start offset through their fetches).

use std::sync::Arc;

use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use storage::TopicPartition;
use tracing::info;

use super::authorization::{authorized, Check};
use super::{ready, Pending, RequestContext};
use crate::context::{Context, PartitionLookup};

/// `offset = -1` means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub fn handle(ctx: &Arc<Context>, rc: RequestContext, request: DeleteRecordsRequest) -> Pending {
    let mut first_error = ErrorCode::NONE;
    let mut topics = Vec::with_capacity(request.topics.len());
    let check = Check::new(ctx, &rc);
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let allowed = authorized(check.topic(AclOperation::Delete, &name));
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition_index,
            };
            let mut out = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let result = allowed
                .and_then(|()| ctx.led_partition(&tp))
                .and_then(|partition| {
                    let hw = partition.high_watermark();
                    let target = if p.offset == HIGH_WATERMARK {
                        hw
                    } else {
                        p.offset
                    };
                    if target < 0 || target > hw {
                        Err(ErrorCode::OFFSET_OUT_OF_RANGE)
                    } else {
                        partition
                            .log()
                            .delete_records_before(target)
                            .map_err(|e| e.kafka_error_code())
                    }
                });
            match result {
                Ok(low) => {
                    info!(partition = %tp, log_start = low, "deleted records");
                    out.low_watermark = low;
                }
                Err(code) => {
                    if first_error == ErrorCode::NONE {
                        first_error = code;
                    }
                    out.error_code = code.code();
                }
            }
            partitions.push(out);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ready(rc.respond(
        &DeleteRecordsResponse::default().with_topics(topics),
        first_error,
    ))
}

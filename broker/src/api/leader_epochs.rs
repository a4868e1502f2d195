//! OffsetForLeaderEpoch: where a leader epoch ends in this replica's log (KIP-101/KIP-320), so
//! followers and consumers can detect and cut divergent tails.

use std::sync::Arc;

use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use storage::TopicPartition;

use super::authorization::{authorized, Check};
use super::{ready, Pending, RequestContext};
use crate::context::{Context, PartitionLookup};

pub fn handle(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> Pending {
    let mut first_error = ErrorCode::NONE;
    let mut topics = Vec::with_capacity(request.topics.len());
    // Followers need CLUSTER_ACTION, consumers DESCRIBE on the topic.
    let check = Check::new(ctx, &rc);
    let follower = request.replica_id.0 >= 0;
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let allowed = authorized(if follower {
            check.cluster(AclOperation::ClusterAction)
        } else {
            check.topic(AclOperation::Describe, &name)
        });
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition,
            };
            let current = p.current_leader_epoch;
            let mut out = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let code = match allowed.and_then(|()| ctx.led_partition(&tp)).and_then(|p| {
                p.check_leader_epoch(current)
                    .map(|()| p)
                    .map_err(|e| e.code)
            }) {
                Err(code) => code,
                Ok(partition) => {
                    if let Some((e, offset)) = partition.log().end_offset_for_epoch(p.leader_epoch)
                    {
                        out.leader_epoch = e;
                        out.end_offset = offset;
                    }
                    ErrorCode::NONE
                }
            };
            if code != ErrorCode::NONE && first_error == ErrorCode::NONE {
                first_error = code;
            }
            out.error_code = code.code();
            partitions.push(out);
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    ready(rc.respond(
        &OffsetForLeaderEpochResponse::default().with_topics(topics),
        first_error,
    ))
}

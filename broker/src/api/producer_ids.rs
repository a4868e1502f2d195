//! InitProducerId for idempotent producers (ids handed out in blocks by the controller) and
//! DescribeProducers.

use std::sync::Arc;

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use storage::TopicPartition;
use tracing::warn;

use super::authorization::Check;
use super::{ready, Pending, RequestContext};
use crate::context::{Context, PartitionLookup};

pub fn init_producer_id(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: InitProducerIdRequest,
) -> Pending {
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|t| t.0.is_empty())
    {
        // Kafka: an empty transactional id is an invalid request (null means idempotent only).
        let response = InitProducerIdResponse::default()
            .with_error_code(ErrorCode::INVALID_REQUEST.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        return ready(rc.respond(&response, ErrorCode::INVALID_REQUEST));
    }
    if request.transactional_id.is_some() {
        warn!(peer = %rc.connection.peer, client = %rc.client_id, "transactional producer refused: transactions are not supported");
        let response = InitProducerIdResponse::default()
            .with_error_code(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        return ready(rc.respond(&response, ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
    }
    // Kafka: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
    if !Check::new(ctx, &rc).idempotent_write() {
        let code = ErrorCode::CLUSTER_AUTHORIZATION_FAILED;
        let response = InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        return ready(rc.respond(&response, code));
    }
    let ctx = ctx.clone();
    async move {
        // An idempotent producer always gets a fresh id at epoch 0, as Kafka does.
        let response = match ctx.producer_ids().next().await {
            Ok(id) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
            Err(code) => InitProducerIdResponse::default()
                .with_error_code(code.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        };
        let code = ErrorCode::from_code(response.error_code);
        rc.respond(&response, code)
    }
    .boxed()
}

pub fn describe_producers(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DescribeProducersRequest,
) -> Pending {
    let mut topics = Vec::with_capacity(request.topics.len());
    let check = Check::new(ctx, &rc);
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let readable = check.topic(AclOperation::Read, &name);
        let partitions = topic
            .partition_indexes
            .into_iter()
            .map(|index| {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: index,
                };
                let mut out = PartitionResponse::default().with_partition_index(index);
                match ctx.partition(&tp) {
                    _ if !readable => {
                        out.error_code = ErrorCode::TOPIC_AUTHORIZATION_FAILED.code();
                    }
                    None => out.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                    Some(p) if !p.is_leader() => {
                        out.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER.code();
                        out.error_message = Some(StrBytes::from_static_str("not the leader"));
                    }
                    Some(p) => {
                        out.active_producers = p
                            .log()
                            .producers()
                            .into_iter()
                            .map(|e| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(e.producer_id))
                                    .with_producer_epoch(i32::from(e.producer_epoch))
                                    .with_last_sequence(e.last_sequence())
                                    .with_last_timestamp(e.last_timestamp)
                                    .with_coordinator_epoch(-1)
                                    .with_current_txn_start_offset(
                                        e.current_txn_first_offset.unwrap_or(-1),
                                    )
                            })
                            .collect();
                    }
                }
                out
            })
            .collect();
        topics.push(
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ready(rc.respond(
        &DescribeProducersResponse::default().with_topics(topics),
        ErrorCode::NONE,
    ))
}

//! Produce: append each partition's batch on the leader (in arrival order, before anything is
//! awaited), run the `flush.messages` fsync where it is due (on a blocking thread, no partition
//! lock held), then answer at once for acks=0/1 or once the high watermark covers the batch for
//! acks=all. A batch whose fsync failed is never acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::quota::QuotaKey;
use kafka_core::ErrorCode;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use storage::TopicPartition;
use tracing::{debug, warn};

use super::authorization::Check;
use super::{ready, Outcome, Pending, RequestContext};
use crate::context::{Context, PartitionLookup};
use crate::coordinator::OFFSETS_TOPIC;
use crate::replica::{now_ms, Partition};

/// One partition's append, waiting (for acks=all) on replication.
struct Appended {
    topic_index: usize,
    response: PartitionProduceResponse,
    wait: Option<(Arc<Partition>, i64)>,
    /// `flush.messages` wants the partition fsynced before the answer.
    flush: Option<Arc<Partition>>,
}

pub fn handle(ctx: &Arc<Context>, rc: RequestContext, request: ProduceRequest) -> Pending {
    let started = Instant::now();
    let throttle = rc.record_quota(ctx, QuotaKey::ProducerByteRate, rc.request_bytes as f64);
    let acks = request.acks;
    if request.transactional_id.is_some() {
        // Transactions are not implemented; a transactional producer cannot have obtained a
        // transactional producer id from this broker, so this is a misbehaving client.
        warn!(peer = %rc.connection.peer, "transactional produce refused: transactions are not supported");
    }
    let mut topics: Vec<TopicProduceResponse> = Vec::with_capacity(request.topic_data.len());
    let mut appended: Vec<Appended> = Vec::new();
    let mut any_error = false;
    let now = now_ms();
    let check = Check::new(ctx, &rc);

    for (topic_index, topic) in request.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let writable = check.topic(AclOperation::Write, &name);
        topics.push(TopicProduceResponse::default().with_name(topic.name.clone()));
        for data in topic.partition_data {
            let mut response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let tp = TopicPartition {
                topic: name.clone(),
                partition: data.index,
            };
            let mut wait = None;
            let mut flush = None;
            let result = if request.transactional_id.is_some() {
                Err((
                    ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                    "transactions are not supported".to_string(),
                ))
            } else if !writable {
                Err((
                    ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                    format!("{} may not write to {name}", rc.connection.principal),
                ))
            } else if acks != 0 && acks != 1 && acks != -1 {
                Err((
                    ErrorCode::INVALID_REQUIRED_ACKS,
                    format!("acks={acks} is not 0, 1 or -1"),
                ))
            } else if name == OFFSETS_TOPIC {
                Err((
                    ErrorCode::INVALID_TOPIC_EXCEPTION,
                    "cannot produce to an internal topic".to_string(),
                ))
            } else {
                append(ctx, &tp, data.records, acks, now)
            };
            match result {
                Ok((partition, info)) => {
                    response.base_offset = info.first_offset;
                    response.log_append_time_ms = info.log_append_time;
                    response.log_start_offset = info.log_start_offset;
                    if !info.duplicate {
                        ctx.metrics()
                            .bytes_in
                            .with_label_values(&[&name])
                            .inc_by(u64::from(info.size_bytes));
                        ctx.metrics()
                            .messages_in
                            .with_label_values(&[&name])
                            .inc_by(u64::from(info.record_count));
                    }
                    if partition.log().flush_due() {
                        flush = Some(partition.clone());
                    }
                    if acks == -1 {
                        wait = Some((partition, info.last_offset + 1));
                    }
                }
                Err((code, message)) => {
                    any_error = true;
                    response.error_code = code.code();
                    if matches!(
                        code,
                        ErrorCode::CORRUPT_MESSAGE
                            | ErrorCode::INVALID_RECORD
                            | ErrorCode::MESSAGE_TOO_LARGE
                            | ErrorCode::RECORD_LIST_TOO_LARGE
                            | ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
                            | ErrorCode::INVALID_PRODUCER_EPOCH
                    ) {
                        warn!(peer = %rc.connection.peer, client = %rc.client_id, partition = %tp, error = %code, reason = %message, "produce rejected");
                    } else {
                        debug!(peer = %rc.connection.peer, partition = %tp, error = %code, reason = %message, "produce rejected");
                    }
                    if rc.version >= 8 {
                        response.error_message = Some(StrBytes::from_string(message));
                    }
                }
            }
            appended.push(Appended {
                topic_index,
                response,
                wait,
                flush,
            });
        }
    }

    if acks == 0 {
        for partition in appended.iter().filter_map(|a| a.flush.clone()) {
            tokio::spawn(async move {
                if let Err(e) = partition.flush_if_due().await {
                    warn!(partition = %partition.tp, error = %e.message, "flush after acks=0 produce failed");
                }
            });
        }
        // No response is sent; an error can only be signalled by closing the connection.
        return ready(if any_error {
            Outcome::Close("acks=0 produce failed".to_string())
        } else {
            Outcome::Silent(throttle)
        });
    }

    let needs_wait = appended
        .iter()
        .any(|a| a.wait.is_some() || a.flush.is_some());
    if !needs_wait {
        let error = first_error(&appended);
        return ready(respond(&rc, topics, appended, error, throttle));
    }

    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    let ctx = ctx.clone();
    async move {
        for a in appended.iter_mut() {
            let Some(partition) = a.flush.take() else {
                continue;
            };
            if let Err(e) = partition.flush_if_due().await {
                warn!(partition = %partition.tp, error = %e.message, "flush before acknowledging failed");
                a.response.error_code = e.code.code();
                a.response.base_offset = -1;
                a.wait = None;
            }
        }
        ctx.metrics().produce_purgatory.inc();
        let waits = appended.iter().map(|a| async {
            match &a.wait {
                Some((partition, required)) => {
                    partition.wait_for_high_watermark(*required, timeout).await
                }
                None => ErrorCode::from_code(a.response.error_code),
            }
        });
        let codes = futures::future::join_all(waits).await;
        ctx.metrics().produce_purgatory.dec();
        for (a, code) in appended.iter_mut().zip(codes) {
            if a.wait.is_some() && code != ErrorCode::NONE {
                a.response.error_code = code.code();
                a.response.base_offset = -1;
            }
        }
        ctx.metrics()
            .produce_latency
            .observe(started.elapsed().as_secs_f64() * 1000.0);
        let error = first_error(&appended);
        respond(&rc, topics, appended, error, throttle)
    }
    .boxed()
}

fn append(
    ctx: &Context,
    tp: &TopicPartition,
    records: Option<bytes::Bytes>,
    acks: i16,
    now: i64,
) -> Result<(Arc<Partition>, storage::AppendInfo), (ErrorCode, String)> {
    let partition = ctx.hosted_partition(tp).map_err(|code| {
        let reason = if code == ErrorCode::NOT_LEADER_OR_FOLLOWER {
            format!("broker {} does not host {tp}", ctx.config().node_id)
        } else {
            format!("unknown partition {tp}")
        };
        (code, reason)
    })?;
    let Some(records) = records else {
        return Err((
            ErrorCode::INVALID_RECORD,
            "produce request has no records".to_string(),
        ));
    };
    partition
        .append_as_leader(records, acks, now)
        .map(|info| (partition, info))
        .map_err(|e| (e.code, e.message))
}

fn first_error(appended: &[Appended]) -> ErrorCode {
    appended
        .iter()
        .map(|a| ErrorCode::from_code(a.response.error_code))
        .find(|c| *c != ErrorCode::NONE)
        .unwrap_or(ErrorCode::NONE)
}

fn respond(
    rc: &RequestContext,
    mut topics: Vec<TopicProduceResponse>,
    appended: Vec<Appended>,
    error: ErrorCode,
    throttle: Duration,
) -> Outcome {
    for a in appended {
        if let Some(t) = topics.get_mut(a.topic_index) {
            t.partition_responses.push(a.response);
        }
    }
    let mut response = ProduceResponse::default().with_responses(topics);
    if rc.version >= 1 {
        response.throttle_time_ms = RequestContext::throttle_ms(throttle);
    }
    let mut outcome = rc.respond(&response, error);
    if let Outcome::Respond(r) = &mut outcome {
        r.throttle = throttle;
    }
    outcome
}

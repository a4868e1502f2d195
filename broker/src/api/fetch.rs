//! Fetch for consumers and followers: reads file regions per partition, long-polls until
//! `min_bytes` are available or `max_wait_ms` passes, and sends the records zero-copy.
//!
//! Fetch sessions (KIP-227) are answered as full fetches: the response carries session id 0,
//! which tells the client no session was created.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use kafka_core::acl::AclOperation;
use kafka_core::quota::QuotaKey;
use kafka_core::ErrorCode;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use raft_controller::MetadataImage;
use storage::TopicPartition;
use tracing::debug;
use uuid::Uuid;

use super::authorization::Check;
use super::fetch_response::{encode_fetch_response, FetchPartitionRecords};
use super::{Outcome, Pending, RequestContext};
use crate::context::{Context, MetadataView, PartitionLookup};
use crate::replica::{now_ms, Partition, ReadParams};
use crate::replica_selector::preferred_read_replica;

/// One requested partition, resolved.
struct Wanted {
    topic_index: usize,
    partition_index: i32,
    tp: Option<TopicPartition>,
    fetch_offset: i64,
    partition_max_bytes: i32,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    /// Error found while resolving (unknown topic id...).
    error: ErrorCode,
}

struct TopicOut {
    name: Option<String>,
    topic_id: Uuid,
}

pub fn handle(ctx: &Arc<Context>, rc: RequestContext, request: FetchRequest) -> Pending {
    let ctx = ctx.clone();
    async move { fetch(ctx, rc, request).await }.boxed()
}

async fn fetch(ctx: Arc<Context>, rc: RequestContext, request: FetchRequest) -> Outcome {
    let version = rc.version;
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let follower = (replica_id >= 0).then_some(replica_id);

    // Sessions are never created (we always answer with session id 0), so a client may only
    // send a full, sessionless fetch or open a new session.
    if request.session_id != 0 || request.session_epoch > 0 {
        let code = if request.session_id != 0 {
            ErrorCode::FETCH_SESSION_ID_NOT_FOUND
        } else {
            ErrorCode::INVALID_FETCH_SESSION_EPOCH
        };
        let response = FetchResponse::default()
            .with_error_code(code.code())
            .with_session_id(0);
        return encode(&rc, &response, &[]);
    }

    let image = ctx.latest_image();
    // A consumer over its consumer_byte_rate gets an empty response, throttled (Kafka's way);
    // within its quota, one response brings at most what the quota window holds.
    let mut quota_bytes = None;
    if let (None, Some(client)) = (follower, rc.quota_client(&ctx)) {
        let quotas = &image.client_quotas;
        let key = QuotaKey::ConsumerByteRate;
        let throttle = ctx
            .quotas()
            .throttle_time(quotas, key, client, Instant::now());
        if !throttle.is_zero() {
            ctx.metrics().quota_throttled(key, throttle);
            return throttled(&rc, throttle);
        }
        quota_bytes = ctx.quotas().max_in_window(quotas, key, client);
    }
    let check = Check::new(&ctx, &rc);
    // Followers need CLUSTER_ACTION on the cluster, consumers READ on each topic.
    let follower_allowed = follower.is_none() || check.cluster(AclOperation::ClusterAction);
    let mut topics_out: Vec<TopicOut> = Vec::with_capacity(request.topics.len());
    let mut wanted: Vec<Wanted> = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let (name, error) = if version >= 13 {
            match image.topic_by_id(&topic.topic_id) {
                Some(t) => (Some(t.name.clone()), ErrorCode::NONE),
                None => (None, ErrorCode::UNKNOWN_TOPIC_ID),
            }
        } else {
            (Some(topic.topic.0.to_string()), ErrorCode::NONE)
        };
        let allowed = match (&name, follower) {
            (_, Some(_)) => follower_allowed,
            (Some(name), None) => check.topic(AclOperation::Read, name),
            (None, None) => true,
        };
        let error = if allowed {
            error
        } else {
            ErrorCode::TOPIC_AUTHORIZATION_FAILED
        };
        topics_out.push(TopicOut {
            name: name.clone(),
            topic_id: topic.topic_id,
        });
        for p in &topic.partitions {
            wanted.push(Wanted {
                topic_index,
                partition_index: p.partition,
                tp: name.clone().map(|n| TopicPartition {
                    topic: n,
                    partition: p.partition,
                }),
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: if version >= 12 {
                    p.last_fetched_epoch
                } else {
                    -1
                },
                error,
            });
        }
    }

    let read_committed = request.isolation_level == 1;
    let client_rack = (version >= 11 && follower.is_none() && !request.rack_id.is_empty())
        .then(|| request.rack_id.to_string());
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if request.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        request.max_bytes as usize
    };
    let max_bytes = quota_bytes.map_or(max_bytes, |q| max_bytes.min(q.max(1.0) as usize));
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut waiting = false;

    loop {
        // Subscribe before reading, so a change that lands between the read and the wait is
        // not missed (it would otherwise cost a whole max_wait_ms).
        let mut changes = FuturesUnordered::new();
        if !max_wait.is_zero() {
            for w in &wanted {
                let Some(partition) = w.tp.as_ref().and_then(|tp| ctx.partition(tp)) else {
                    continue;
                };
                // Followers wait for new records (or a role change); a high watermark move alone
                // cannot complete their fetch. Consumers wait for the high watermark (or a role
                // change).
                if follower.is_some() {
                    let mut log_end = partition.subscribe_log_end();
                    changes.push(
                        async move {
                            let _ = log_end.changed().await;
                        }
                        .boxed(),
                    );
                } else {
                    let mut progress = partition.subscribe_progress();
                    changes.push(
                        async move {
                            let _ = progress.changed().await;
                        }
                        .boxed(),
                    );
                }
            }
        }
        let round = read_all(
            &ctx,
            &image,
            &wanted,
            follower,
            read_committed,
            client_rack.as_deref(),
            max_bytes,
        );
        let done = round.bytes >= min_bytes.max(1)
            || round.has_error
            || max_wait.is_zero()
            || tokio::time::Instant::now() >= deadline
            || wanted.is_empty();
        if done {
            if waiting {
                ctx.metrics().fetch_purgatory.dec();
            }
            return respond(&ctx, &rc, &topics_out, round, follower);
        }
        if !waiting {
            ctx.metrics().fetch_purgatory.inc();
            waiting = true;
        }
        // Wait for any requested partition to change, or the deadline.
        if changes.is_empty() {
            tokio::time::sleep_until(deadline).await;
        } else {
            let _ = tokio::time::timeout_at(deadline, changes.next()).await;
        }
    }
}

struct PartitionOut {
    data: PartitionData,
    records: FetchPartitionRecords,
}

struct Round {
    partitions: Vec<(usize, PartitionOut)>,
    bytes: usize,
    has_error: bool,
}

fn read_all(
    ctx: &Context,
    image: &MetadataImage,
    wanted: &[Wanted],
    follower: Option<i32>,
    read_committed: bool,
    client_rack: Option<&str>,
    max_bytes: usize,
) -> Round {
    let now = now_ms();
    let mut total = 0usize;
    let mut has_error = false;
    let mut partitions = Vec::with_capacity(wanted.len());
    for w in wanted {
        let mut data = PartitionData::default()
            .with_partition_index(w.partition_index)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1);
        if read_committed {
            data.aborted_transactions = Some(Vec::new());
        }
        let mut records = FetchPartitionRecords::default();
        let code = match (&w.tp, w.error) {
            (_, e) if e != ErrorCode::NONE => e,
            (None, _) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            (Some(tp), _) => match ctx.hosted_partition(tp) {
                Err(code) => code,
                Ok(partition) => read_one(
                    ctx,
                    image,
                    &partition,
                    w,
                    follower,
                    client_rack,
                    max_bytes,
                    total,
                    now,
                    &mut data,
                    &mut records,
                ),
            },
        };
        if code != ErrorCode::NONE {
            has_error = true;
            data.error_code = code.code();
            if matches!(
                code,
                ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::FENCED_LEADER_EPOCH
            ) {
                if let Some(tp) = &w.tp {
                    if let Some(state) = image.partition(&tp.topic, tp.partition) {
                        data.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(state.leader))
                            .with_leader_epoch(state.leader_epoch);
                    }
                }
            }
        }
        total += records.len();
        partitions.push((w.topic_index, PartitionOut { data, records }));
    }
    Round {
        partitions,
        bytes: total,
        has_error,
    }
}

#[allow(clippy::too_many_arguments)]
fn read_one(
    ctx: &Context,
    image: &MetadataImage,
    partition: &Arc<Partition>,
    w: &Wanted,
    follower: Option<i32>,
    client_rack: Option<&str>,
    max_bytes: usize,
    already: usize,
    now: i64,
    data: &mut PartitionData,
    records: &mut FetchPartitionRecords,
) -> ErrorCode {
    // KIP-392: point a rack-aware consumer at a replica in its rack.
    if follower.is_none() && partition.is_leader() && ctx.config().rack_aware_replica_selector {
        if let Some(rack) = client_rack {
            let preferred =
                preferred_read_replica(image, &partition.tp, rack, ctx.config().node_id);
            if let Some(replica) = preferred {
                data.preferred_read_replica = BrokerId(replica);
                data.high_watermark = partition.high_watermark();
                data.last_stable_offset = data.high_watermark;
                data.log_start_offset = partition.log().log_start_offset();
                return ErrorCode::NONE;
            }
        }
    }
    // Consumers read from the leader unless KIP-392 sent them to this replica.
    if follower.is_none() && !partition.is_leader() && client_rack.is_none() {
        return ErrorCode::NOT_LEADER_OR_FOLLOWER;
    }
    let remaining = max_bytes.saturating_sub(already);
    let partition_max = (w.partition_max_bytes.max(0) as usize).min(remaining);
    let params = ReadParams {
        fetch_offset: w.fetch_offset,
        max_bytes: partition_max.min(u32::MAX as usize) as u32,
        current_leader_epoch: w.current_leader_epoch,
        last_fetched_epoch: w.last_fetched_epoch,
        replica_id: follower,
        now_ms: now,
    };
    match partition.read(&params) {
        Ok(read) => {
            data.high_watermark = read.high_watermark;
            data.last_stable_offset = read.last_stable_offset;
            data.log_start_offset = read.log_start_offset;
            if let Some((epoch, end_offset)) = read.diverging_epoch {
                data.diverging_epoch = EpochEndOffset::default()
                    .with_epoch(epoch)
                    .with_end_offset(end_offset);
            }
            let size = read.records.size_bytes as usize;
            // Past the response limit only the first non-empty partition may exceed it (KIP-74).
            if size > partition_max && already > 0 {
                return ErrorCode::NONE;
            }
            records.regions = read.records.regions;
            ErrorCode::NONE
        }
        Err(e) => {
            if let Some(corruption) = e.corruption {
                ctx.report_corruption(partition, corruption);
            }
            if e.code == ErrorCode::OFFSET_OUT_OF_RANGE {
                let log = partition.log();
                data.high_watermark = log.high_watermark();
                data.last_stable_offset = data.high_watermark;
                data.log_start_offset = log.log_start_offset();
            }
            debug!(partition = %partition.tp, error = %e.code, reason = %e.message, "fetch partition error");
            e.code
        }
    }
}

fn respond(
    ctx: &Context,
    rc: &RequestContext,
    topics_out: &[TopicOut],
    round: Round,
    follower: Option<i32>,
) -> Outcome {
    let mut responses: Vec<FetchableTopicResponse> = topics_out
        .iter()
        .map(|t| {
            let mut r = FetchableTopicResponse::default().with_topic_id(t.topic_id);
            if let Some(name) = &t.name {
                r.topic = TopicName(StrBytes::from_string(name.clone()));
            }
            r
        })
        .collect();
    let mut records: Vec<Vec<Option<FetchPartitionRecords>>> = vec![Vec::new(); topics_out.len()];
    let mut first_error = ErrorCode::NONE;
    for (topic_index, out) in round.partitions {
        let code = ErrorCode::from_code(out.data.error_code);
        if first_error == ErrorCode::NONE && code != ErrorCode::NONE {
            first_error = code;
        }
        if follower.is_none() && !out.records.is_empty() {
            if let Some(name) = &topics_out[topic_index].name {
                ctx.metrics()
                    .bytes_out
                    .with_label_values(&[name])
                    .inc_by(out.records.len() as u64);
            }
        }
        if let (Some(t), Some(r)) = (responses.get_mut(topic_index), records.get_mut(topic_index)) {
            t.partitions.push(out.data);
            r.push(Some(out.records));
        }
    }
    let throttle = if follower.is_none() {
        rc.record_quota(ctx, QuotaKey::ConsumerByteRate, round.bytes as f64)
    } else {
        Duration::ZERO
    };
    let mut response = FetchResponse::default()
        .with_session_id(0)
        .with_responses(responses);
    if rc.version >= 1 {
        response.throttle_time_ms = RequestContext::throttle_ms(throttle);
    }
    match encode_fetch_response(rc.version, rc.correlation_id, &response, &records) {
        Ok(mut r) => {
            r.error_code = first_error;
            r.throttle = throttle;
            Outcome::Respond(r)
        }
        Err(e) => {
            tracing::error!(version = rc.version, error = %e, "fetch response encoding failed");
            Outcome::Close(format!("fetch response encoding failed: {e}"))
        }
    }
}

/// The empty answer to a consumer over its quota.
fn throttled(rc: &RequestContext, throttle: Duration) -> Outcome {
    let mut response = FetchResponse::default().with_session_id(0);
    if rc.version >= 1 {
        response.throttle_time_ms = RequestContext::throttle_ms(throttle);
    }
    let mut outcome = encode(rc, &response, &[]);
    if let Outcome::Respond(r) = &mut outcome {
        r.throttle = throttle;
    }
    outcome
}

fn encode(
    rc: &RequestContext,
    response: &FetchResponse,
    records: &[Vec<Option<FetchPartitionRecords>>],
) -> Outcome {
    match encode_fetch_response(rc.version, rc.correlation_id, response, records) {
        Ok(r) => Outcome::Respond(r),
        Err(e) => Outcome::Close(format!("fetch response encoding failed: {e}")),
    }
}

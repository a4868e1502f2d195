//! Cluster-level APIs: DescribeCluster, ElectLeaders (through the controller) and
//! DescribeLogDirs.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, ElectLeadersRequest, ElectLeadersResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use raft_controller::ElectionType;

use super::authorization::Check;
use super::metadata::{controller_id, live_brokers};
use super::{ready, Pending, RequestContext};
use crate::context::{Context, MetadataView, PartitionLookup};

pub fn describe_cluster(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DescribeClusterRequest,
) -> Pending {
    let image = ctx.image();
    if !Check::new(ctx, &rc).cluster(AclOperation::Describe) {
        let code = ErrorCode::CLUSTER_AUTHORIZATION_FAILED;
        let response = DescribeClusterResponse::default().with_error_code(code.code());
        return ready(rc.respond(&response, code));
    }
    if request.endpoint_type != 1 {
        // Only broker endpoints (type 1) exist: the controllers are the brokers.
        let response = DescribeClusterResponse::default()
            .with_error_code(UNSUPPORTED_ENDPOINT_TYPE.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Only broker endpoints (type 1) are served",
            )))
            .with_endpoint_type(request.endpoint_type);
        return ready(rc.respond(&response, UNSUPPORTED_ENDPOINT_TYPE));
    }
    let brokers = live_brokers(&image, &rc.connection.listener)
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(1)
        .with_cluster_id(StrBytes::from_string(
            image.cluster_id.clone().unwrap_or_default(),
        ))
        .with_controller_id(BrokerId(controller_id(ctx)))
        .with_brokers(brokers);
    ready(rc.respond(&response, ErrorCode::NONE))
}

/// Kafka's code for an endpoint type the broker does not serve.
const UNSUPPORTED_ENDPOINT_TYPE: ErrorCode =
    ErrorCode::of(kafka_protocol::error::ResponseError::UnsupportedEndpointType);

pub fn elect_leaders(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: ElectLeadersRequest,
) -> Pending {
    if !Check::new(ctx, &rc).cluster(AclOperation::Alter) {
        let code = ErrorCode::CLUSTER_AUTHORIZATION_FAILED;
        let response = ElectLeadersResponse::default().with_error_code(code.code());
        return ready(rc.respond(&response, code));
    }
    let ctx = ctx.clone();
    async move {
        let kind = match request.election_type {
            0 => ElectionType::Preferred,
            1 => ElectionType::Unclean,
            other => {
                let response = ElectLeadersResponse::default()
                    .with_error_code(ErrorCode::INVALID_REQUEST.code());
                tracing::warn!(election_type = other, "unknown election type");
                return rc.respond(&response, ErrorCode::INVALID_REQUEST);
            }
        };
        let partitions = request.topic_partitions.map(|topics| {
            topics
                .into_iter()
                .flat_map(|t| {
                    let name = t.topic.0.to_string();
                    t.partitions.into_iter().map(move |p| (name.clone(), p))
                })
                .collect::<Vec<_>>()
        });
        match ctx.controller().elect_leaders(kind, partitions).await {
            Ok(results) => {
                let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
                for r in results {
                    let mut pr = PartitionResult::default().with_partition_id(r.partition);
                    if let Err(e) = r.result {
                        pr.error_code = e.kafka_error_code().code();
                        pr.error_message = Some(StrBytes::from_string(e.to_string()));
                    }
                    by_topic.entry(r.topic).or_default().push(pr);
                }
                let results = by_topic
                    .into_iter()
                    .map(|(topic, partition_result)| {
                        ReplicaElectionResult::default()
                            .with_topic(TopicName(StrBytes::from_string(topic)))
                            .with_partition_result(partition_result)
                    })
                    .collect();
                rc.respond(
                    &ElectLeadersResponse::default().with_replica_election_results(results),
                    ErrorCode::NONE,
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "leader election: quorum unavailable");
                rc.respond(
                    &ElectLeadersResponse::default()
                        .with_error_code(ErrorCode::REQUEST_TIMED_OUT.code()),
                    ErrorCode::REQUEST_TIMED_OUT,
                )
            }
        }
    }
    .boxed()
}

pub fn describe_log_dirs(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DescribeLogDirsRequest,
) -> Pending {
    if !Check::new(ctx, &rc).cluster(AclOperation::Describe) {
        let code = ErrorCode::CLUSTER_AUTHORIZATION_FAILED;
        let response = DescribeLogDirsResponse::default().with_error_code(code.code());
        return ready(rc.respond(&response, code));
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|t| {
        t.into_iter()
            .map(|x| (x.topic.0.to_string(), x.partitions))
            .collect()
    });
    let usage = ctx.log_dir_usage();
    let mut results: Vec<DescribeLogDirsResult> = usage
        .iter()
        .map(|u| {
            DescribeLogDirsResult::default()
                .with_log_dir(StrBytes::from_string(u.path.display().to_string()))
                .with_total_bytes(u.total_bytes as i64)
                .with_usable_bytes(u.free_bytes as i64)
        })
        .collect();
    let mut per_dir: Vec<BTreeMap<String, Vec<DescribeLogDirsPartition>>> =
        vec![BTreeMap::new(); results.len()];
    for partition in ctx.partitions() {
        let tp = &partition.tp;
        let included = match &wanted {
            None => true,
            Some(list) => list
                .iter()
                .any(|(t, ps)| *t == tp.topic && ps.contains(&tp.partition)),
        };
        if !included {
            continue;
        }
        let log = partition.log();
        let Some(dir_index) = usage.iter().position(|u| log.dir().starts_with(&u.path)) else {
            continue;
        };
        let lag = if partition.is_leader() {
            0
        } else {
            (partition.high_watermark() - log.log_end_offset()).max(0)
        };
        per_dir[dir_index]
            .entry(tp.topic.clone())
            .or_default()
            .push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_partition_size(log.size_bytes() as i64)
                    .with_offset_lag(lag),
            );
    }
    for (result, topics) in results.iter_mut().zip(per_dir) {
        result.topics = topics
            .into_iter()
            .map(|(name, partitions)| {
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect();
    }
    ready(rc.respond(
        &DescribeLogDirsResponse::default().with_results(results),
        ErrorCode::NONE,
    ))
}

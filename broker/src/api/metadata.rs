//! Metadata: brokers, cluster id, controller, and topic/partition leadership from the Raft
//! metadata image, with Kafka's auto topic creation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use raft_controller::{CreateTopicSpec, MetadataImage, TopicImage};
use tracing::{info, warn};
use uuid::Uuid;

use super::authorization::Check;
use super::{Outcome, Pending, RequestContext};
use crate::context::{Context, MetadataView};
use crate::coordinator::OFFSETS_TOPIC;

/// A broker as clients reach it on one listener.
#[derive(Debug, Clone)]
pub struct BrokerAddress {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// Live (unfenced) brokers' addresses on `listener`.
pub fn live_brokers(image: &MetadataImage, listener: &str) -> Vec<BrokerAddress> {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            b.endpoints
                .iter()
                .find(|e| e.listener == listener)
                .map(|e| BrokerAddress {
                    id: b.id,
                    host: e.host.clone(),
                    port: i32::from(e.port),
                    rack: b.rack.clone(),
                })
        })
        .collect()
}

/// The id clients see as the controller: the Raft leader (every voter is a broker).
pub fn controller_id(ctx: &Context) -> i32 {
    ctx.controller().status().leader.unwrap_or(-1)
}

pub fn handle(ctx: &Arc<Context>, rc: RequestContext, request: MetadataRequest) -> Pending {
    let ctx = ctx.clone();
    async move { metadata(ctx, rc, request).await }.boxed()
}

async fn metadata(ctx: Arc<Context>, rc: RequestContext, request: MetadataRequest) -> Outcome {
    let version = rc.version;
    let allow_auto_create =
        (version < 4 || request.allow_auto_topic_creation) && ctx.config().auto_create_topics;
    let mut image = ctx.image();

    // v0: an empty list means all topics; v1+: null means all topics.
    let all_topics = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let mut requested: Vec<(Option<String>, Uuid)> = Vec::new();
    if !all_topics {
        for t in request.topics.iter().flatten() {
            requested.push((t.name.as_ref().map(|n| n.0.to_string()), t.topic_id));
        }
    }

    // As Kafka does: topics a principal may not DESCRIBE are left out of an all-topics
    // answer and refused by name; auto-creation needs CREATE on the cluster or the topic.
    let check = Check::new(&ctx, &rc);
    let may_create_any = check.cluster(AclOperation::Create);
    if allow_auto_create {
        let missing: Vec<String> = requested
            .iter()
            .filter_map(|(name, _)| name.clone())
            .filter(|n| {
                image.topic(n).is_none()
                    && n != OFFSETS_TOPIC
                    && kafka_core::validate_topic_name(n).is_ok()
                    && (may_create_any || check.topic(AclOperation::Create, n))
            })
            .collect();
        if !missing.is_empty() {
            auto_create(&ctx, missing).await;
            image = ctx.image();
        }
    }

    let mut topics = Vec::new();
    if all_topics {
        for topic in image.topics.values() {
            if check.topic(AclOperation::Describe, &topic.name) {
                topics.push(describe_topic(&image, topic, version));
            }
        }
    } else {
        for (name, id) in requested {
            let found = match &name {
                Some(n) => image.topic(n),
                None => image.topic_by_id(&id),
            };
            let described = name
                .as_deref()
                .or(found.map(|t| t.name.as_str()))
                .is_none_or(|n| check.topic(AclOperation::Describe, n));
            if !described {
                topics.push(
                    MetadataResponseTopic::default()
                        .with_error_code(ErrorCode::TOPIC_AUTHORIZATION_FAILED.code())
                        .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                        .with_topic_id(id),
                );
                continue;
            }
            match found {
                Some(topic) => topics.push(describe_topic(&image, topic, version)),
                None => {
                    let code = match &name {
                        Some(n) if kafka_core::validate_topic_name(n).is_err() => {
                            ErrorCode::INVALID_TOPIC_EXCEPTION
                        }
                        Some(_) if allow_auto_create => ErrorCode::LEADER_NOT_AVAILABLE,
                        Some(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        None => ErrorCode::UNKNOWN_TOPIC_ID,
                    };
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_error_code(code.code())
                            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                            .with_topic_id(id),
                    );
                }
            }
        }
    }

    let brokers = live_brokers(&image, &rc.connection.listener)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port)
                .with_rack(if version >= 1 {
                    b.rack.map(StrBytes::from_string)
                } else {
                    None
                })
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if version >= 2 {
        response.cluster_id = image.cluster_id.clone().map(StrBytes::from_string);
    }
    if version >= 1 {
        response.controller_id = BrokerId(controller_id(&ctx));
    }
    rc.respond(&response, ErrorCode::NONE)
}

async fn auto_create(ctx: &Context, names: Vec<String>) {
    let specs: Vec<CreateTopicSpec> = names
        .iter()
        .map(|name| CreateTopicSpec {
            name: name.clone(),
            num_partitions: ctx.config().num_partitions,
            replication_factor: ctx.config().default_replication_factor,
            assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        })
        .collect();
    match ctx.controller().create_topics(specs, false).await {
        Ok(results) => {
            for (name, result) in names.iter().zip(results) {
                match result {
                    Ok(created) => {
                        info!(topic = %name, partitions = created.num_partitions, replication_factor = created.replication_factor, "auto-created topic")
                    }
                    Err(e) => warn!(topic = %name, error = %e, "auto-creating topic failed"),
                }
            }
        }
        Err(e) => warn!(error = %e, "auto-creating topics failed: quorum unavailable"),
    }
    // The local image may trail the controller briefly; give it a moment to catch up.
    let mut rx = ctx.subscribe_image();
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        rx.wait_for(|image| names.iter().all(|n| image.topic(n).is_some())),
    )
    .await;
}

fn describe_topic(
    image: &MetadataImage,
    topic: &TopicImage,
    version: i16,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let offline: Vec<BrokerId> = p
                .replicas
                .iter()
                .filter(|r| image.brokers.get(r).is_none_or(|b| b.fenced))
                .map(|r| BrokerId(*r))
                .collect();
            let error = if p.leader < 0 {
                ErrorCode::LEADER_NOT_AVAILABLE
            } else {
                ErrorCode::NONE
            };
            let mut m = MetadataResponsePartition::default()
                .with_error_code(error.code())
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(*r)).collect())
                .with_isr_nodes(p.isr.iter().map(|r| BrokerId(*r)).collect());
            if version >= 7 {
                m.leader_epoch = p.leader_epoch;
            }
            if version >= 5 {
                m.offline_replicas = offline;
            }
            m
        })
        .collect();
    let mut t = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_partitions(partitions);
    if version >= 1 {
        t.is_internal = topic.name == OFFSETS_TOPIC;
    }
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t
}

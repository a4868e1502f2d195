//! CreateTopics, DeleteTopics and CreatePartitions, validated here and carried out by the
//! controller through the Raft quorum.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use raft_controller::{CreateTopicSpec, QuorumError};
use tracing::{info, warn};

use super::authorization::Check;
use super::configs::topic_entries;
use super::{Pending, RequestContext};
use crate::context::{Context, MetadataView};
use crate::coordinator::OFFSETS_TOPIC;
use crate::topic_config;

pub(super) fn quorum_error_code(e: &QuorumError) -> ErrorCode {
    match e {
        QuorumError::Timeout => ErrorCode::REQUEST_TIMED_OUT,
        _ => ErrorCode::NOT_CONTROLLER,
    }
}

fn message(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

/// Waits (bounded) until the local image reflects a change the controller committed, so a
/// client's next Metadata request on this broker sees it.
async fn await_local(
    ctx: &Context,
    done: impl Fn(&raft_controller::MetadataImage) -> bool,
    timeout: Duration,
) {
    let mut rx = ctx.subscribe_image();
    let _ = tokio::time::timeout(timeout, rx.wait_for(|image| done(image))).await;
}

pub fn create_topics(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: CreateTopicsRequest,
) -> Pending {
    let ctx = ctx.clone();
    async move {
        let version = rc.version;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for t in &request.topics {
            *counts.entry(t.name.0.to_string()).or_insert(0) += 1;
        }
        let mut results: Vec<CreatableTopicResult> = Vec::new();
        let mut specs: Vec<(usize, CreateTopicSpec)> = Vec::new();
        let check = Check::new(&ctx, &rc);
        let may_create_any = check.cluster(AclOperation::Create);
        for t in &request.topics {
            let name = t.name.0.to_string();
            let mut result = CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            let configs: BTreeMap<String, String> = t
                .configs
                .iter()
                .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                .collect();
            let problem = if !may_create_any && !check.topic(AclOperation::Create, &name) {
                Some((ErrorCode::TOPIC_AUTHORIZATION_FAILED, format!("{} may not create topic {name}", rc.connection.principal)))
            } else if counts.get(&name).copied().unwrap_or(0) > 1 {
                Some((ErrorCode::INVALID_REQUEST, format!("Create topics request from client `{}` contains multiple entries for the following topics: {name}", rc.client_id)))
            } else if let Err(e) = kafka_core::validate_topic_name(&name) {
                Some((ErrorCode::INVALID_TOPIC_EXCEPTION, e.to_string()))
            } else if name == OFFSETS_TOPIC {
                Some((ErrorCode::INVALID_REQUEST, "The internal topic __consumer_offsets is created by the broker".to_string()))
            } else if !t.assignments.is_empty() && (t.num_partitions != -1 || t.replication_factor != -1) {
                Some((ErrorCode::INVALID_REQUEST, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".to_string()))
            } else if t.num_partitions == 0 || t.num_partitions < -1 {
                Some((ErrorCode::INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value.".to_string()))
            } else if t.replication_factor == 0 || t.replication_factor < -1 {
                Some((ErrorCode::INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0, or -1 to use the default value.".to_string()))
            } else if let Err(e) = topic_config::validate(&configs) {
                Some((ErrorCode::INVALID_CONFIG, e.0))
            } else {
                None
            };
            if let Some((code, text)) = problem {
                result.error_code = code.code();
                result.error_message = message(text);
                results.push(result);
                continue;
            }
            let assignments: BTreeMap<i32, Vec<i32>> = t
                .assignments
                .iter()
                .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect()))
                .collect();
            let spec = CreateTopicSpec {
                name,
                num_partitions: if t.num_partitions == -1 && assignments.is_empty() { ctx.config().num_partitions } else { t.num_partitions },
                replication_factor: if t.replication_factor == -1 && assignments.is_empty() { ctx.config().default_replication_factor } else { t.replication_factor },
                assignments,
                configs,
            };
            specs.push((results.len(), spec));
            results.push(result);
        }

        if !specs.is_empty() {
            let indexes: Vec<usize> = specs.iter().map(|(i, _)| *i).collect();
            let names: Vec<String> = specs.iter().map(|(_, s)| s.name.clone()).collect();
            let overrides: Vec<BTreeMap<String, String>> = specs.iter().map(|(_, s)| s.configs.clone()).collect();
            match ctx.controller().create_topics(specs.into_iter().map(|(_, s)| s).collect(), request.validate_only).await {
                Ok(outcomes) => {
                    for ((index, outcome), configs) in indexes.iter().zip(outcomes).zip(overrides) {
                        let Some(result) = results.get_mut(*index) else { continue };
                        match outcome {
                            Ok(created) => {
                                if !request.validate_only {
                                    info!(topic = %created.name, partitions = created.num_partitions, replication_factor = created.replication_factor, "created topic");
                                }
                                if version >= 7 {
                                    result.topic_id = created.id;
                                }
                                if version >= 5 {
                                    result.num_partitions = created.num_partitions;
                                    result.replication_factor = created.replication_factor;
                                    result.configs = Some(
                                        topic_entries(ctx.config(), &configs)
                                            .into_iter()
                                            .map(|e| {
                                                CreatableTopicConfigs::default()
                                                    .with_name(StrBytes::from_string(e.name))
                                                    .with_value(e.value.map(StrBytes::from_string))
                                                    .with_read_only(e.read_only)
                                                    .with_config_source(e.source)
                                                    .with_is_sensitive(false)
                                            })
                                            .collect(),
                                    );
                                }
                            }
                            Err(e) => {
                                result.error_code = e.kafka_error_code().code();
                                result.error_message = message(e.to_string());
                            }
                        }
                    }
                    if !request.validate_only {
                        await_local(&ctx, |image| names.iter().all(|n| image.topic(n).is_some()), Duration::from_millis(request.timeout_ms.clamp(0, 5000) as u64)).await;
                    }
                }
                Err(e) => {
                    warn!(error = %e, "create topics: quorum unavailable");
                    for index in indexes {
                        if let Some(result) = results.get_mut(index) {
                            result.error_code = quorum_error_code(&e).code();
                            result.error_message = message(e.to_string());
                        }
                    }
                }
            }
        }
        let first_error = super::first_error(results.iter().map(|r| r.error_code));
        let response = CreateTopicsResponse::default().with_topics(results);
        rc.respond(&response, first_error)
    }
    .boxed()
}

pub fn delete_topics(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DeleteTopicsRequest,
) -> Pending {
    let ctx = ctx.clone();
    async move {
        let image = ctx.latest_image();
        // (name if known, topic id if given)
        let wanted: Vec<(Option<String>, uuid::Uuid)> = if rc.version >= 6 {
            request
                .topics
                .iter()
                .map(|t| match &t.name {
                    Some(n) => (Some(n.0.to_string()), t.topic_id),
                    None => (
                        image.topic_by_id(&t.topic_id).map(|t| t.name.clone()),
                        t.topic_id,
                    ),
                })
                .collect()
        } else {
            request
                .topic_names
                .iter()
                .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
                .collect()
        };
        let mut results: Vec<DeletableTopicResult> = Vec::with_capacity(wanted.len());
        let mut to_delete: Vec<(usize, String)> = Vec::new();
        let check = Check::new(&ctx, &rc);
        for (name, id) in wanted {
            let mut r = DeletableTopicResult::default()
                .with_name(name.clone().map(|n| TopicName(StrBytes::from_string(n))))
                .with_topic_id(id);
            match name {
                _ if !ctx.config().delete_topic_enable => {
                    r.error_code = ErrorCode::TOPIC_DELETION_DISABLED.code();
                    r.error_message =
                        message("Topic deletion is disabled (delete.topic.enable=false)");
                }
                None => r.error_code = ErrorCode::UNKNOWN_TOPIC_ID.code(),
                Some(n) if !check.topic(AclOperation::Delete, &n) => {
                    r.error_code = ErrorCode::TOPIC_AUTHORIZATION_FAILED.code();
                }
                Some(n) if n == OFFSETS_TOPIC => {
                    r.error_code = ErrorCode::INVALID_REQUEST.code();
                    r.error_message =
                        message("The internal topic __consumer_offsets cannot be deleted");
                }
                Some(n) => match image.topic(&n) {
                    None => r.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                    Some(t) => {
                        if rc.version >= 6 {
                            r.topic_id = t.id;
                        }
                        to_delete.push((results.len(), n));
                    }
                },
            }
            results.push(r);
        }
        if !to_delete.is_empty() {
            let names: Vec<String> = to_delete.iter().map(|(_, n)| n.clone()).collect();
            match ctx.controller().delete_topics(names.clone()).await {
                Ok(outcomes) => {
                    for ((index, name), outcome) in to_delete.iter().zip(outcomes) {
                        if let Err(e) = outcome {
                            if let Some(r) = results.get_mut(*index) {
                                r.error_code = e.kafka_error_code().code();
                                r.error_message = message(e.to_string());
                            }
                        } else {
                            info!(topic = %name, "deleted topic");
                        }
                    }
                    await_local(
                        &ctx,
                        |image| names.iter().all(|n| image.topic(n).is_none()),
                        Duration::from_millis(request.timeout_ms.clamp(0, 5000) as u64),
                    )
                    .await;
                }
                Err(e) => {
                    for (index, _) in &to_delete {
                        if let Some(r) = results.get_mut(*index) {
                            r.error_code = quorum_error_code(&e).code();
                            r.error_message = message(e.to_string());
                        }
                    }
                }
            }
        }
        if rc.version < 5 {
            for r in &mut results {
                r.error_message = None;
            }
        }
        let first_error = super::first_error(results.iter().map(|r| r.error_code));
        rc.respond(
            &DeleteTopicsResponse::default().with_responses(results),
            first_error,
        )
    }
    .boxed()
}

pub fn create_partitions(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: CreatePartitionsRequest,
) -> Pending {
    let ctx = ctx.clone();
    async move {
        let mut results = Vec::with_capacity(request.topics.len());
        let check = Check::new(&ctx, &rc);
        for t in request.topics {
            let name = t.name.0.to_string();
            let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let alterable = check.topic(AclOperation::Alter, &name);
            let assignments = t.assignments.map(|list| {
                list.into_iter()
                    .map(|a| a.broker_ids.into_iter().map(|b| b.0).collect())
                    .collect()
            });
            let outcome = if !alterable {
                Err((
                    ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                    format!("{} may not alter topic {name}", rc.connection.principal),
                ))
            } else if name == OFFSETS_TOPIC {
                Err((
                    ErrorCode::INVALID_REQUEST,
                    "The internal topic __consumer_offsets cannot be changed".to_string(),
                ))
            } else {
                match ctx
                    .controller()
                    .create_partitions(name.clone(), t.count, assignments, request.validate_only)
                    .await
                {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err((e.kafka_error_code(), e.to_string())),
                    Err(e) => Err((quorum_error_code(&e), e.to_string())),
                }
            };
            match outcome {
                Ok(()) => {
                    if !request.validate_only {
                        info!(topic = %name, partitions = t.count, "increased partition count");
                        let count = t.count as usize;
                        await_local(
                            &ctx,
                            |image| {
                                image
                                    .topic(&name)
                                    .is_some_and(|x| x.partitions.len() >= count)
                            },
                            Duration::from_secs(5),
                        )
                        .await;
                    }
                }
                Err((code, text)) => {
                    r.error_code = code.code();
                    r.error_message = message(text);
                }
            }
            results.push(r);
        }
        let first_error = super::first_error(results.iter().map(|r| r.error_code));
        rc.respond(
            &CreatePartitionsResponse::default().with_results(results),
            first_error,
        )
    }
    .boxed()
}

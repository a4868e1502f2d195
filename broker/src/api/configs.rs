//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (stored in the metadata
//! quorum) and brokers (static, from this broker's configuration).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use raft_controller::{ConfigOp, QuorumError};
use tracing::info;

use super::authorization::Check;
use super::{Pending, RequestContext};
use crate::config::{BrokerConfig, ConfigType, Origin, BROKER_PROPERTIES};
use crate::context::{Context, MetadataView};
use crate::coordinator::OFFSETS_TOPIC;
use crate::topic_config;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;

const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// One described config value.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
    pub read_only: bool,
    pub kind: ConfigType,
    pub doc: &'static str,
    /// (name, value, source), most specific first.
    pub synonyms: Vec<(String, Option<String>, i8)>,
}

fn broker_source(broker: &BrokerConfig, property: &str) -> i8 {
    match broker.properties.origin(property) {
        Some(Origin::File | Origin::Environment | Origin::CommandLine) => SOURCE_STATIC_BROKER,
        None => SOURCE_DEFAULT,
    }
}

/// Every topic config with its effective value, given the topic's overrides.
pub fn topic_entries(
    broker: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    topic_config::topic_configs()
        .map(|d| {
            let default = topic_config::default_value(broker, d.name);
            let broker_src = d
                .synonym
                .map_or(SOURCE_DEFAULT, |synonym| broker_source(broker, synonym));
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(d.name) {
                synonyms.push((d.name.to_string(), Some(v.clone()), SOURCE_TOPIC));
            }
            if let Some(synonym) = d.synonym {
                synonyms.push((synonym.to_string(), default.clone(), broker_src));
            }
            let (value, source) = match overrides.get(d.name) {
                Some(v) => (Some(v.clone()), SOURCE_TOPIC),
                None => (default, broker_src),
            };
            ConfigEntry {
                name: d.name.to_string(),
                value,
                source,
                read_only: false,
                kind: d.kind,
                doc: d.doc,
                synonyms,
            }
        })
        .collect()
}

fn broker_entries(broker: &BrokerConfig) -> Vec<ConfigEntry> {
    BROKER_PROPERTIES
        .iter()
        .map(|d| {
            // As Kafka does, a password's value is never sent (only that it is set).
            let value = broker
                .effective_value(d.name)
                .filter(|_| d.kind != ConfigType::Password);
            let source = broker_source(broker, d.name);
            ConfigEntry {
                name: d.name.to_string(),
                value: value.clone(),
                source,
                read_only: true,
                kind: d.kind,
                doc: d.doc,
                synonyms: vec![(d.name.to_string(), value, source)],
            }
        })
        .collect()
}

pub fn describe(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DescribeConfigsRequest,
) -> Pending {
    let image = ctx.latest_image();
    let check = Check::new(ctx, &rc);
    let mut results = Vec::with_capacity(request.resources.len());
    let mut first_error = ErrorCode::NONE;
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let entries = match resource.resource_type {
            RESOURCE_TOPIC if !check.topic(AclOperation::DescribeConfigs, &name) => Err((
                ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                format!("Not authorized to describe the configs of topic {name}"),
            )),
            RESOURCE_BROKER if !check.cluster(AclOperation::DescribeConfigs) => Err((
                ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
                "Not authorized to describe broker configs".to_string(),
            )),
            RESOURCE_TOPIC => match image.topic(&name) {
                Some(topic) => Ok(topic_entries(ctx.config(), &topic.configs)),
                None if kafka_core::validate_topic_name(&name).is_err() => Err((
                    ErrorCode::INVALID_TOPIC_EXCEPTION,
                    format!("Invalid topic name {name}"),
                )),
                None => Err((
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("Topic {name} does not exist"),
                )),
            },
            RESOURCE_BROKER => {
                if name.is_empty() || name == ctx.config().node_id.to_string() {
                    Ok(broker_entries(ctx.config()))
                } else {
                    Err((ErrorCode::INVALID_REQUEST, format!("Unexpected broker id, expected {} or empty string, but received {name}", ctx.config().node_id)))
                }
            }
            RESOURCE_BROKER_LOGGER => Err((
                ErrorCode::INVALID_REQUEST,
                "Broker logger configs are not supported".to_string(),
            )),
            other => Err((
                ErrorCode::INVALID_REQUEST,
                format!("Unsupported resource type {other}"),
            )),
        };
        match entries {
            Ok(entries) => {
                let keys: Option<Vec<String>> = resource
                    .configuration_keys
                    .map(|k| k.iter().map(|s| s.to_string()).collect());
                result.configs = entries
                    .into_iter()
                    .filter(|e| keys.as_ref().is_none_or(|k| k.contains(&e.name)))
                    .map(|e| {
                        let mut r = DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_string(e.name))
                            .with_value(e.value.map(StrBytes::from_string))
                            .with_read_only(e.read_only)
                            .with_config_source(e.source)
                            .with_is_sensitive(e.kind == ConfigType::Password);
                        if request.include_synonyms {
                            r.synonyms = e
                                .synonyms
                                .into_iter()
                                .map(|(n, v, s)| {
                                    DescribeConfigsSynonym::default()
                                        .with_name(StrBytes::from_string(n))
                                        .with_value(v.map(StrBytes::from_string))
                                        .with_source(s)
                                })
                                .collect();
                        }
                        if rc.version >= 3 {
                            r.config_type = e.kind.code();
                            if request.include_documentation {
                                r.documentation = Some(StrBytes::from_static_str(e.doc));
                            }
                        }
                        r
                    })
                    .collect();
            }
            Err((code, text)) => {
                if first_error == ErrorCode::NONE {
                    first_error = code;
                }
                result.error_code = code.code();
                result.error_message = Some(StrBytes::from_string(text));
            }
        }
        results.push(result);
    }
    super::ready(rc.respond(
        &DescribeConfigsResponse::default().with_results(results),
        first_error,
    ))
}

/// Applies `ops` to a topic's configs through the controller, after validating the result.
async fn alter_topic(
    ctx: &Context,
    topic: &str,
    ops: Vec<ConfigOp>,
    validate_only: bool,
) -> Result<(), (ErrorCode, String)> {
    if topic == OFFSETS_TOPIC {
        return Err((
            ErrorCode::INVALID_REQUEST,
            "The configs of __consumer_offsets are managed by the broker".to_string(),
        ));
    }
    let image = ctx.latest_image();
    let current = image
        .topic(topic)
        .ok_or_else(|| {
            (
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("Topic {topic} does not exist"),
            )
        })?
        .configs
        .clone();
    let mut next = current.clone();
    for op in &ops {
        match op {
            ConfigOp::Set(k, v) => {
                next.insert(k.clone(), v.clone());
            }
            ConfigOp::Delete(k) => {
                next.remove(k);
            }
        }
    }
    topic_config::validate(&next).map_err(|e| (ErrorCode::INVALID_CONFIG, e.0))?;
    match ctx
        .controller()
        .alter_topic_configs(topic.to_string(), ops, validate_only)
        .await
    {
        Ok(Ok(())) => {
            if !validate_only {
                info!(topic, configs = ?next, "altered topic configs");
                let mut rx = ctx.subscribe_latest_image();
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    rx.wait_for(|i| i.topic(topic).is_some_and(|t| t.configs == next)),
                )
                .await;
            }
            Ok(())
        }
        Ok(Err(e)) => Err((e.kafka_error_code(), e.to_string())),
        Err(QuorumError::Timeout) => Err((
            ErrorCode::REQUEST_TIMED_OUT,
            "controller request timed out".to_string(),
        )),
        Err(e) => Err((ErrorCode::NOT_CONTROLLER, e.to_string())),
    }
}

fn broker_alter_refused(ctx: &Context, name: &str) -> (ErrorCode, String) {
    if !name.is_empty() && name != ctx.config().node_id.to_string() {
        (
            ErrorCode::INVALID_REQUEST,
            format!("Unexpected broker id {name}"),
        )
    } else {
        (ErrorCode::INVALID_REQUEST, "Dynamic broker configs are not supported: set broker properties in the config file, environment or flags".to_string())
    }
}

/// Carries out an alteration of one resource: topic config changes computed by `topic_ops`
/// from the topic's current overrides; broker configs are static here.
async fn alter_resource(
    ctx: &Context,
    check: &Check<'_>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    topic_ops: impl FnOnce(&BTreeMap<String, String>) -> Result<Vec<ConfigOp>, (ErrorCode, String)>,
) -> Result<(), (ErrorCode, String)> {
    match resource_type {
        RESOURCE_TOPIC if !check.topic(AclOperation::AlterConfigs, name) => Err((
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            format!("Not authorized to alter the configs of topic {name}"),
        )),
        RESOURCE_BROKER if !check.cluster(AclOperation::AlterConfigs) => Err((
            ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            "Not authorized to alter broker configs".to_string(),
        )),
        RESOURCE_TOPIC => {
            let current = ctx
                .latest_image()
                .topic(name)
                .map(|t| t.configs.clone())
                .ok_or_else(|| {
                    (
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("Topic {name} does not exist"),
                    )
                })?;
            let ops = topic_ops(&current)?;
            alter_topic(ctx, name, ops, validate_only).await
        }
        RESOURCE_BROKER => Err(broker_alter_refused(ctx, name)),
        other => Err((
            ErrorCode::INVALID_REQUEST,
            format!("Unsupported resource type {other}"),
        )),
    }
}

/// (error code, error message) of an alteration's outcome.
fn outcome_fields(outcome: Result<(), (ErrorCode, String)>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (ErrorCode::NONE.code(), None),
        Err((code, text)) => (code.code(), Some(StrBytes::from_string(text))),
    }
}

pub fn alter(ctx: &Arc<Context>, rc: RequestContext, request: AlterConfigsRequest) -> Pending {
    let ctx = ctx.clone();
    async move {
        let mut responses = Vec::with_capacity(request.resources.len());
        let check = Check::new(&ctx, &rc);
        for resource in request.resources {
            let name = resource.resource_name.to_string();
            // Legacy AlterConfigs replaces the whole set of overrides.
            let wanted: BTreeMap<String, String> = resource
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            let outcome = alter_resource(
                &ctx,
                &check,
                resource.resource_type,
                &name,
                request.validate_only,
                |current| {
                    let mut ops: Vec<ConfigOp> = current
                        .keys()
                        .filter(|k| !wanted.contains_key(*k))
                        .map(|k| ConfigOp::Delete(k.clone()))
                        .collect();
                    ops.extend(wanted.clone().into_iter().map(|(k, v)| ConfigOp::Set(k, v)));
                    Ok(ops)
                },
            )
            .await;
            let (error_code, error_message) = outcome_fields(outcome);
            responses.push(
                alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name)
                    .with_error_code(error_code)
                    .with_error_message(error_message),
            );
        }
        let first_error = super::first_error(responses.iter().map(|r| r.error_code));
        rc.respond(
            &AlterConfigsResponse::default().with_responses(responses),
            first_error,
        )
    }
    .boxed()
}

fn incremental_ops(
    current: &BTreeMap<String, String>,
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<Vec<ConfigOp>, (ErrorCode, String)> {
    let mut ops = Vec::new();
    let mut working = current.clone();
    for c in configs {
        let name = c.name.to_string();
        let def = topic_config::topic_config_def(&name).ok_or_else(|| {
            (
                ErrorCode::INVALID_CONFIG,
                format!("Unknown topic config name: {name}"),
            )
        })?;
        let value = c.value.as_ref().map(|v| v.to_string());
        match c.config_operation {
            OP_SET => {
                let v = value.ok_or_else(|| {
                    (
                        ErrorCode::INVALID_REQUEST,
                        format!("Null value not supported for {name}"),
                    )
                })?;
                working.insert(name.clone(), v.clone());
                ops.push(ConfigOp::Set(name, v));
            }
            OP_DELETE => {
                working.remove(&name);
                ops.push(ConfigOp::Delete(name));
            }
            OP_APPEND | OP_SUBTRACT => {
                if def.kind != ConfigType::List {
                    return Err((ErrorCode::INVALID_CONFIG, format!("Config value append/subtract is not allowed for config key {name} of type {:?}", def.kind)));
                }
                let v = value.ok_or_else(|| {
                    (
                        ErrorCode::INVALID_REQUEST,
                        format!("Null value not supported for {name}"),
                    )
                })?;
                let mut items: Vec<String> = working
                    .get(&name)
                    .map(|s| {
                        s.split(',')
                            .map(|x| x.trim().to_string())
                            .filter(|x| !x.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                for item in v
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                {
                    if c.config_operation == OP_APPEND {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    } else {
                        items.retain(|x| *x != item);
                    }
                }
                let joined = items.join(",");
                working.insert(name.clone(), joined.clone());
                ops.push(ConfigOp::Set(name, joined));
            }
            other => {
                return Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Unknown config operation {other}"),
                ))
            }
        }
    }
    Ok(ops)
}

pub fn incremental_alter(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> Pending {
    let ctx = ctx.clone();
    async move {
        let mut responses = Vec::with_capacity(request.resources.len());
        let check = Check::new(&ctx, &rc);
        for resource in request.resources {
            let name = resource.resource_name.to_string();
            let outcome = alter_resource(
                &ctx,
                &check,
                resource.resource_type,
                &name,
                request.validate_only,
                |current| incremental_ops(current, &resource.configs),
            )
            .await;
            let (error_code, error_message) = outcome_fields(outcome);
            responses.push(
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name)
                    .with_error_code(error_code)
                    .with_error_message(error_message),
            );
        }
        let first_error = super::first_error(responses.iter().map(|r| r.error_code));
        rc.respond(
            &IncrementalAlterConfigsResponse::default().with_responses(responses),
            first_error,
        )
    }
    .boxed()
}

//! CreateAcls, DescribeAcls and DeleteAcls: ACL bindings live in the metadata log, written
//! through the controller. Creating and deleting need ALTER on the cluster, describing needs
//! DESCRIBE; without an authorizer every call answers SECURITY_DISABLED, as in Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use kafka_core::acl::{
    AclBinding, AclFilter, AclOperation, AclPermission, PatternType, ResourceType,
};
use kafka_core::ErrorCode;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::authorization::Check;
use super::{first_error, ready, Pending, RequestContext};
use crate::context::{Context, MetadataView};

fn text(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

/// Why a request may not touch ACLs at all, if it may not.
fn refusal(
    ctx: &Context,
    rc: &RequestContext,
    operation: AclOperation,
) -> Option<(ErrorCode, String)> {
    if !ctx.authorizer().is_enabled() {
        return Some((
            ErrorCode::SECURITY_DISABLED,
            "No Authorizer is configured on the broker (authorizer.class.name)".to_string(),
        ));
    }
    if !Check::new(ctx, rc).cluster(operation) {
        return Some((
            ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            format!(
                "{} may not {} the cluster's ACLs",
                rc.connection.principal,
                operation.name()
            ),
        ));
    }
    None
}

fn binding(c: &AclCreation) -> Result<AclBinding, String> {
    let unknown = |what: &str, code: i8| format!("unknown {what} code {code}");
    Ok(AclBinding {
        resource_type: ResourceType::from_code(c.resource_type)
            .ok_or_else(|| unknown("resource type", c.resource_type))?,
        resource_name: c.resource_name.to_string(),
        pattern_type: PatternType::from_code(c.resource_pattern_type)
            .ok_or_else(|| unknown("pattern type", c.resource_pattern_type))?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: AclOperation::from_code(c.operation)
            .ok_or_else(|| unknown("operation", c.operation))?,
        permission: AclPermission::from_code(c.permission_type)
            .ok_or_else(|| unknown("permission type", c.permission_type))?,
    })
}

/// A filter from its wire fields; codes Kafka does not define are an error.
#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    resource_name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    let unknown = |what: &str, code: i8| format!("unknown {what} code {code}");
    Ok(AclFilter {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| unknown("resource type", resource_type))?,
        resource_name: resource_name.map(|s| s.to_string()),
        pattern_type: PatternType::from_code(pattern_type)
            .ok_or_else(|| unknown("pattern type", pattern_type))?,
        principal: principal.map(|s| s.to_string()),
        host: host.map(|s| s.to_string()),
        operation: AclOperation::from_code(operation)
            .ok_or_else(|| unknown("operation", operation))?,
        permission: AclPermission::from_code(permission)
            .ok_or_else(|| unknown("permission type", permission))?,
    })
}

pub fn create_acls(ctx: &Arc<Context>, rc: RequestContext, request: CreateAclsRequest) -> Pending {
    let failed = |code: ErrorCode, message: &str| {
        AclCreationResult::default()
            .with_error_code(code.code())
            .with_error_message(text(message))
    };
    if let Some((code, message)) = refusal(ctx, &rc, AclOperation::Alter) {
        let results = request
            .creations
            .iter()
            .map(|_| failed(code, &message))
            .collect();
        let body = CreateAclsResponse::default().with_results(results);
        return ready(rc.respond(&body, code));
    }
    let ctx = ctx.clone();
    async move {
        let parsed: Vec<Result<AclBinding, String>> = request
            .creations
            .iter()
            .map(|c| binding(c).and_then(|b| b.validate().map(|()| b)))
            .collect();
        let valid: Vec<AclBinding> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        let mut outcomes = match ctx.controller().create_acls(valid.clone()).await {
            Ok(results) => results
                .into_iter()
                .map(|r| r.map_err(|e| (ErrorCode::INVALID_REQUEST, e.to_string())))
                .collect::<Vec<_>>(),
            Err(e) => valid
                .iter()
                .map(|_| Err((ErrorCode::REQUEST_TIMED_OUT, e.to_string())))
                .collect(),
        }
        .into_iter();
        let results: Vec<AclCreationResult> = parsed
            .iter()
            .map(|p| match p {
                Err(reason) => failed(ErrorCode::INVALID_REQUEST, reason),
                Ok(b) => match outcomes.next() {
                    Some(Ok(())) => {
                        info!(principal = %rc.connection.principal, acl = ?b, "ACL created");
                        AclCreationResult::default()
                    }
                    Some(Err((code, reason))) => failed(code, &reason),
                    None => failed(ErrorCode::UNKNOWN_SERVER_ERROR, "no result"),
                },
            })
            .collect();
        let code = first_error(results.iter().map(|r| r.error_code));
        let body = CreateAclsResponse::default().with_results(results);
        rc.respond(&body, code)
    }
    .boxed()
}

pub fn describe_acls(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DescribeAclsRequest,
) -> Pending {
    if let Some((code, message)) = refusal(ctx, &rc, AclOperation::Describe) {
        let body = DescribeAclsResponse::default()
            .with_error_code(code.code())
            .with_error_message(text(message));
        return ready(rc.respond(&body, code));
    }
    let wanted = match filter(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(f) => f,
        Err(reason) => {
            let code = ErrorCode::INVALID_REQUEST;
            let body = DescribeAclsResponse::default()
                .with_error_code(code.code())
                .with_error_message(text(reason));
            return ready(rc.respond(&body, code));
        }
    };
    let image = ctx.latest_image();
    let mut resources: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for b in image.acls.iter().filter(|b| wanted.matches(b)) {
        resources
            .entry((b.resource_type, b.resource_name.clone(), b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(b.principal.clone()))
                    .with_host(StrBytes::from_string(b.host.clone()))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    let resources = resources
        .into_iter()
        .map(|((kind, name, pattern), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(kind.code())
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pattern.code())
                .with_acls(acls)
        })
        .collect();
    let body = DescribeAclsResponse::default().with_resources(resources);
    ready(rc.respond(&body, ErrorCode::NONE))
}

pub fn delete_acls(ctx: &Arc<Context>, rc: RequestContext, request: DeleteAclsRequest) -> Pending {
    let failed = |code: ErrorCode, message: String| {
        DeleteAclsFilterResult::default()
            .with_error_code(code.code())
            .with_error_message(text(message))
    };
    if let Some((code, message)) = refusal(ctx, &rc, AclOperation::Alter) {
        let results = request
            .filters
            .iter()
            .map(|_| failed(code, message.clone()))
            .collect();
        let body = DeleteAclsResponse::default().with_filter_results(results);
        return ready(rc.respond(&body, code));
    }
    let parsed: Vec<Result<AclFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let ctx = ctx.clone();
    async move {
        let valid: Vec<AclFilter> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        let deleted = if valid.is_empty() {
            Ok(Vec::new())
        } else {
            ctx.controller().delete_acls(valid).await
        };
        let mut deleted = match deleted {
            Ok(deleted) => deleted.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => parsed.iter().map(|_| Err(e.to_string())).collect(),
        }
        .into_iter();
        let results: Vec<DeleteAclsFilterResult> = parsed
            .into_iter()
            .map(|p| match p {
                Err(reason) => failed(ErrorCode::INVALID_REQUEST, reason),
                Ok(_) => match deleted.next() {
                    Some(Ok(bindings)) => {
                        for b in &bindings {
                            info!(principal = %rc.connection.principal, acl = ?b, "ACL deleted");
                        }
                        DeleteAclsFilterResult::default().with_matching_acls(
                            bindings
                                .into_iter()
                                .map(|b| {
                                    DeleteAclsMatchingAcl::default()
                                        .with_resource_type(b.resource_type.code())
                                        .with_resource_name(StrBytes::from_string(b.resource_name))
                                        .with_pattern_type(b.pattern_type.code())
                                        .with_principal(StrBytes::from_string(b.principal))
                                        .with_host(StrBytes::from_string(b.host))
                                        .with_operation(b.operation.code())
                                        .with_permission_type(b.permission.code())
                                })
                                .collect(),
                        )
                    }
                    Some(Err(reason)) => failed(ErrorCode::REQUEST_TIMED_OUT, reason),
                    None => failed(ErrorCode::UNKNOWN_SERVER_ERROR, "no result".to_string()),
                },
            })
            .collect();
        let code = first_error(results.iter().map(|r| r.error_code));
        let body = DeleteAclsResponse::default().with_filter_results(results);
        rc.respond(&body, code)
    }
    .boxed()
}

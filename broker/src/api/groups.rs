//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! DescribeGroups, ListGroups and DeleteGroups — decoding each version's fields for the group
//! coordinator and encoding its answers the way each version expects.

use std::sync::Arc;

use futures::FutureExt;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::{ready, Pending, RequestContext};
use crate::context::Context;
use crate::coordinator::discovery::Located;
use crate::coordinator::group::{JoinRequest, LeavingMember, SyncRequest};
use crate::coordinator::replies::{JoinResult, SyncResult};
use crate::coordinator::state::GroupState;
use crate::coordinator::OFFSETS_TOPIC;
use crate::error_codes::*;

/// FindCoordinator key types.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Kafka's ACL operation codes for groups (READ, DELETE, DESCRIBE), as a bit field: with no
/// authorizer every operation is allowed.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// The group type every group of this coordinator has (ListGroups v5).
const CLASSIC_GROUP_TYPE: &str = "classic";

fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Kafka reports the client's address as `InetAddress.toString()` does: "/ip".
fn client_host(rc: &RequestContext) -> String {
    format!("/{}", rc.connection.peer.ip())
}

// ---- FindCoordinator ----------------------------------------------------------------------------

struct Found {
    key: String,
    node_id: i32,
    host: String,
    port: i32,
    error: i16,
    message: Option<String>,
}

fn find_one(ctx: &Context, rc: &RequestContext, key_type: i8, key: String) -> Found {
    let failed = |key: String, error: i16, message: String| Found {
        key,
        node_id: -1,
        host: String::new(),
        port: -1,
        error,
        message: Some(message),
    };
    match key_type {
        KEY_TYPE_GROUP => match ctx.groups.locate(&key, &rc.connection.listener) {
            Located::Coordinator {
                node_id,
                host,
                port,
            } => Found {
                key,
                node_id,
                host,
                port,
                error: NONE,
                message: None,
            },
            Located::NoOffsetsTopic => failed(
                key,
                COORDINATOR_NOT_AVAILABLE,
                format!("the {OFFSETS_TOPIC} topic is being created"),
            ),
            Located::Unavailable(why) => {
                debug!(group = %key, reason = %why, "coordinator not available");
                failed(key, COORDINATOR_NOT_AVAILABLE, why)
            }
        },
        KEY_TYPE_TRANSACTION => failed(
            key,
            INVALID_REQUEST,
            "transactions are not supported by this broker".to_string(),
        ),
        other => failed(
            key,
            INVALID_REQUEST,
            format!("unknown coordinator key type {other}"),
        ),
    }
}

pub fn find_coordinator(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: FindCoordinatorRequest,
) -> Pending {
    let version = rc.version;
    let key_type = if version >= 1 {
        request.key_type
    } else {
        KEY_TYPE_GROUP
    };
    if version >= 4 {
        let coordinators: Vec<Coordinator> = request
            .coordinator_keys
            .iter()
            .map(|k| find_one(ctx, &rc, key_type, k.to_string()))
            .map(|f| {
                Coordinator::default()
                    .with_key(str_bytes(f.key))
                    .with_node_id(BrokerId(f.node_id))
                    .with_host(str_bytes(f.host))
                    .with_port(f.port)
                    .with_error_code(f.error)
                    .with_error_message(f.message.map(str_bytes))
            })
            .collect();
        let error = coordinators
            .iter()
            .map(|c| c.error_code)
            .find(|c| *c != NONE)
            .unwrap_or(NONE);
        let response = FindCoordinatorResponse::default().with_coordinators(coordinators);
        return ready(rc.respond(&response, error));
    }
    let f = find_one(ctx, &rc, key_type, request.key.to_string());
    let mut response = FindCoordinatorResponse::default()
        .with_error_code(f.error)
        .with_node_id(BrokerId(f.node_id))
        .with_host(str_bytes(f.host))
        .with_port(f.port);
    if version >= 1 {
        response.error_message = f.message.map(str_bytes);
    }
    ready(rc.respond(&response, f.error))
}

// ---- JoinGroup / SyncGroup / Heartbeat / LeaveGroup ---------------------------------------------

fn join_response(version: i16, result: JoinResult) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(if version >= 5 {
                    m.group_instance_id.map(str_bytes)
                } else {
                    None
                })
                .with_metadata(m.metadata)
        })
        .collect();
    let mut response = JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation)
        .with_leader(str_bytes(result.leader))
        .with_member_id(str_bytes(result.member_id))
        .with_members(members);
    if version >= 7 {
        response.protocol_type = result.protocol_type.map(str_bytes);
        response.protocol_name = result.protocol_name.map(str_bytes);
    } else {
        // Not nullable before v7: an unknown protocol is "".
        response.protocol_name = Some(str_bytes(result.protocol_name.unwrap_or_default()));
    }
    if version >= 9 {
        response.skip_assignment = result.skip_assignment;
    }
    response
}

pub fn join_group(ctx: &Arc<Context>, rc: RequestContext, request: JoinGroupRequest) -> Pending {
    let version = rc.version;
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    let join = JoinRequest {
        member_id: member_id.clone(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
        client_id: rc.client_id.clone(),
        client_host: client_host(&rc),
        // v0 has no rebalance timeout: the session timeout serves as both.
        rebalance_timeout_ms: if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        session_timeout_ms: request.session_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        reason: request.reason.map(|s| s.to_string()),
    };
    let reply = ctx.groups.groups().join_group(&group_id, join);
    async move {
        let result = reply
            .wait(|| JoinResult::error(member_id, REBALANCE_IN_PROGRESS))
            .await;
        let error = result.error;
        rc.respond(&join_response(version, result), error)
    }
    .boxed()
}

pub fn sync_group(ctx: &Arc<Context>, rc: RequestContext, request: SyncGroupRequest) -> Pending {
    let version = rc.version;
    let group_id = request.group_id.0.to_string();
    let sync = SyncRequest {
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        protocol_type: request.protocol_type.map(|s| s.to_string()),
        protocol_name: request.protocol_name.map(|s| s.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let reply = ctx.groups.groups().sync_group(&group_id, sync);
    async move {
        let result: SyncResult = reply
            .wait(|| SyncResult::error(REBALANCE_IN_PROGRESS))
            .await;
        let mut response = SyncGroupResponse::default()
            .with_error_code(result.error)
            .with_assignment(result.assignment);
        if version >= 5 {
            response.protocol_type = result.protocol_type.map(str_bytes);
            response.protocol_name = result.protocol_name.map(str_bytes);
        }
        rc.respond(&response, result.error)
    }
    .boxed()
}

pub fn heartbeat(ctx: &Arc<Context>, rc: RequestContext, request: HeartbeatRequest) -> Pending {
    let group_id = request.group_id.0.to_string();
    let instance = request.group_instance_id.map(|s| s.to_string());
    let error = ctx.groups.groups().heartbeat(
        &group_id,
        request.member_id.as_str(),
        instance.as_deref(),
        request.generation_id,
    );
    let response = HeartbeatResponse::default().with_error_code(error);
    ready(rc.respond(&response, error))
}

pub fn leave_group(ctx: &Arc<Context>, rc: RequestContext, request: LeaveGroupRequest) -> Pending {
    let version = rc.version;
    let group_id = request.group_id.0.to_string();
    let leaving: Vec<LeavingMember> = if version >= 3 {
        request
            .members
            .into_iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                reason: m.reason.map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: request.member_id.to_string(),
            group_instance_id: None,
            reason: None,
        }]
    };
    let result = ctx.groups.groups().leave_group(&group_id, &leaving);
    let response = if version >= 3 {
        match result {
            Err(code) => LeaveGroupResponse::default().with_error_code(code),
            Ok(errors) => LeaveGroupResponse::default().with_members(
                leaving
                    .into_iter()
                    .zip(errors)
                    .map(|(l, error)| {
                        MemberResponse::default()
                            .with_member_id(str_bytes(l.member_id))
                            .with_group_instance_id(l.group_instance_id.map(str_bytes))
                            .with_error_code(error)
                    })
                    .collect(),
            ),
        }
    } else {
        let error = match result {
            Err(code) => code,
            Ok(errors) => errors.first().copied().unwrap_or(NONE),
        };
        LeaveGroupResponse::default().with_error_code(error)
    };
    let error = if response.error_code != NONE {
        response.error_code
    } else {
        response
            .members
            .iter()
            .map(|m| m.error_code)
            .find(|c| *c != NONE)
            .unwrap_or(NONE)
    };
    ready(rc.respond(&response, error))
}

// ---- DescribeGroups / ListGroups / DeleteGroups -------------------------------------------------

pub fn describe_groups(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DescribeGroupsRequest,
) -> Pending {
    let version = rc.version;
    let authorized_operations = if version >= 3 && request.include_authorized_operations {
        GROUP_AUTHORIZED_OPERATIONS
    } else {
        i32::MIN
    };
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let id = group_id.0.to_string();
            let described = DescribedGroup::default()
                .with_group_id(group_id)
                .with_authorized_operations(authorized_operations);
            match ctx.groups.groups().describe_group(&id) {
                Err(code) => described.with_error_code(code),
                Ok(None) if version >= 6 => described
                    .with_error_code(GROUP_ID_NOT_FOUND)
                    .with_error_message(Some(str_bytes(format!("Group {id} not found."))))
                    .with_group_state(str_bytes(GroupState::Dead.name())),
                Ok(None) => described.with_group_state(str_bytes(GroupState::Dead.name())),
                Ok(Some(d)) => described
                    .with_group_state(str_bytes(d.state.name()))
                    .with_protocol_type(str_bytes(d.protocol_type))
                    .with_protocol_data(str_bytes(d.protocol))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_group_instance_id(if version >= 4 {
                                        m.group_instance_id.map(str_bytes)
                                    } else {
                                        None
                                    })
                                    .with_client_id(str_bytes(m.client_id))
                                    .with_client_host(str_bytes(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect::<Vec<_>>();
    let error = groups
        .iter()
        .map(|g| g.error_code)
        .find(|c| *c != NONE)
        .unwrap_or(NONE);
    let response = DescribeGroupsResponse::default().with_groups(groups);
    ready(rc.respond(&response, error))
}

pub fn list_groups(ctx: &Arc<Context>, rc: RequestContext, request: ListGroupsRequest) -> Pending {
    let version = rc.version;
    let (error, groups) = ctx.groups.groups().list_groups();
    let states: Vec<String> = if version >= 4 {
        request
            .states_filter
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if version >= 5 {
        request.types_filter.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let classic_wanted = types.is_empty()
        || types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
    let listed: Vec<ListedGroup> = groups
        .into_iter()
        .filter(|_| classic_wanted)
        .filter(|g| states.is_empty() || states.iter().any(|s| g.state.matches_filter(s)))
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if version >= 4 {
                listed.group_state = str_bytes(g.state.name());
            }
            if version >= 5 {
                listed.group_type = str_bytes(CLASSIC_GROUP_TYPE);
            }
            listed
        })
        .collect();
    let response = ListGroupsResponse::default()
        .with_error_code(error)
        .with_groups(listed);
    ready(rc.respond(&response, error))
}

pub fn delete_groups(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DeleteGroupsRequest,
) -> Pending {
    let mut seen = std::collections::HashSet::new();
    let results: Vec<DeletableGroupResult> = request
        .groups_names
        .into_iter()
        .filter(|g| seen.insert(g.0.to_string()))
        .map(|group_id| {
            let error = ctx.groups.groups().delete_group(group_id.0.as_str());
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error)
        })
        .collect();
    let error = results
        .iter()
        .map(|r| r.error_code)
        .find(|c| *c != NONE)
        .unwrap_or(NONE);
    let response = DeleteGroupsResponse::default().with_results(results);
    ready(rc.respond(&response, error))
}

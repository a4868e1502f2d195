//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! DescribeGroups, ListGroups and DeleteGroups — decoding each version's fields for the group
//! coordinator and encoding its answers the way each version expects.

use std::collections::HashSet;
use std::sync::Arc;

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
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

use super::authorization::Check;
use super::{first_error, ready, Pending, RequestContext};
use crate::context::Context;
use crate::coordinator::discovery::Located;
use crate::coordinator::group::{GroupDescription, JoinRequest, LeavingMember, SyncRequest};
use crate::coordinator::manager::GroupOverview;
use crate::coordinator::replies::{JoinResult, Reply, SyncResult};
use crate::coordinator::state::GroupState;
use crate::coordinator::OFFSETS_TOPIC;

/// FindCoordinator key types.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Kafka's ACL operation codes for groups (READ, DELETE, DESCRIBE), as a bit field: with no
/// authorizer every operation is allowed.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// The type every group of this coordinator has (ListGroups v5).
const CLASSIC_GROUP_TYPE: &str = "classic";

fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Kafka reports the client's address as `InetAddress.toString()` does: "/ip".
fn client_host(rc: &RequestContext) -> String {
    format!("/{}", rc.connection.peer.ip())
}

// ---- FindCoordinator ----------------------------------------------------------------------------

/// The answer for one coordinator key.
#[derive(Debug, Clone)]
struct Found {
    key: String,
    node_id: i32,
    host: String,
    port: i32,
    error: ErrorCode,
    message: Option<String>,
}

impl Found {
    fn failed(key: String, error: ErrorCode, message: String) -> Found {
        Found {
            key,
            node_id: -1,
            host: String::new(),
            port: -1,
            error,
            message: Some(message),
        }
    }
}

fn find_one(ctx: &Context, rc: &RequestContext, key_type: i8, key: String) -> Found {
    match key_type {
        KEY_TYPE_GROUP if !Check::new(ctx, rc).group(AclOperation::Describe, &key) => {
            let message = format!("{} may not describe group {key}", rc.connection.principal);
            Found::failed(key, ErrorCode::GROUP_AUTHORIZATION_FAILED, message)
        }
        KEY_TYPE_GROUP => match ctx.locate_coordinator(&key, &rc.connection.listener) {
            Located::Coordinator {
                node_id,
                host,
                port,
            } => Found {
                key,
                node_id,
                host,
                port,
                error: ErrorCode::NONE,
                message: None,
            },
            Located::NoOffsetsTopic => Found::failed(
                key,
                ErrorCode::COORDINATOR_NOT_AVAILABLE,
                format!("the {OFFSETS_TOPIC} topic is being created"),
            ),
            Located::Unavailable(why) => {
                debug!(group = %key, reason = %why, "coordinator not available");
                Found::failed(key, ErrorCode::COORDINATOR_NOT_AVAILABLE, why)
            }
        },
        KEY_TYPE_TRANSACTION => Found::failed(
            key,
            ErrorCode::INVALID_REQUEST,
            "transactions are not supported by this broker".to_string(),
        ),
        other => Found::failed(
            key,
            ErrorCode::INVALID_REQUEST,
            format!("unknown coordinator key type {other}"),
        ),
    }
}

/// v4+ answer every key in `coordinators`; older versions answer their single key at the top.
fn find_response(version: i16, found: Vec<Found>) -> FindCoordinatorResponse {
    if version >= 4 {
        let coordinators = found
            .into_iter()
            .map(|f| {
                Coordinator::default()
                    .with_key(str_bytes(f.key))
                    .with_node_id(BrokerId(f.node_id))
                    .with_host(str_bytes(f.host))
                    .with_port(f.port)
                    .with_error_code(f.error.code())
                    .with_error_message(f.message.map(str_bytes))
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let Some(f) = found.into_iter().next() else {
        return FindCoordinatorResponse::default()
            .with_error_code(ErrorCode::INVALID_REQUEST.code());
    };
    let mut response = FindCoordinatorResponse::default()
        .with_error_code(f.error.code())
        .with_node_id(BrokerId(f.node_id))
        .with_host(str_bytes(f.host))
        .with_port(f.port);
    if version >= 1 {
        response.error_message = f.message.map(str_bytes);
    }
    response
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
    let keys: Vec<String> = if version >= 4 {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        vec![request.key.to_string()]
    };
    let found: Vec<Found> = keys
        .into_iter()
        .map(|k| find_one(ctx, &rc, key_type, k))
        .collect();
    let error = first_error(found.iter().map(|f| f.error.code()));
    ready(rc.respond(&find_response(version, found), error))
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
        .with_error_code(result.error.code())
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
    let reply = if Check::new(ctx, &rc).group(AclOperation::Read, &group_id) {
        ctx.groups().join_group(&group_id, join)
    } else {
        Reply::Ready(JoinResult::error(
            member_id.clone(),
            ErrorCode::GROUP_AUTHORIZATION_FAILED,
        ))
    };
    async move {
        let result = reply
            .wait(|| JoinResult::error(member_id, ErrorCode::REBALANCE_IN_PROGRESS))
            .await;
        let error = result.error;
        rc.respond(&join_response(version, result), error)
    }
    .boxed()
}

fn sync_response(version: i16, result: SyncResult) -> SyncGroupResponse {
    let mut response = SyncGroupResponse::default()
        .with_error_code(result.error.code())
        .with_assignment(result.assignment);
    if version >= 5 {
        response.protocol_type = result.protocol_type.map(str_bytes);
        response.protocol_name = result.protocol_name.map(str_bytes);
    }
    response
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
    // From v5 the protocol type and name are mandatory.
    let reply = if !Check::new(ctx, &rc).group(AclOperation::Read, &group_id) {
        Reply::Ready(SyncResult::error(ErrorCode::GROUP_AUTHORIZATION_FAILED))
    } else if version >= 5 && (sync.protocol_type.is_none() || sync.protocol_name.is_none()) {
        Reply::Ready(SyncResult::error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL))
    } else {
        ctx.groups().sync_group(&group_id, sync)
    };
    async move {
        let result = reply
            .wait(|| SyncResult::error(ErrorCode::REBALANCE_IN_PROGRESS))
            .await;
        let error = result.error;
        rc.respond(&sync_response(version, result), error)
    }
    .boxed()
}

pub fn heartbeat(ctx: &Arc<Context>, rc: RequestContext, request: HeartbeatRequest) -> Pending {
    let group_id = request.group_id.0.to_string();
    let instance = request.group_instance_id.map(|s| s.to_string());
    let error = if Check::new(ctx, &rc).group(AclOperation::Read, &group_id) {
        ctx.groups().heartbeat(
            &group_id,
            request.member_id.as_str(),
            instance.as_deref(),
            request.generation_id,
        )
    } else {
        ErrorCode::GROUP_AUTHORIZATION_FAILED
    };
    ready(rc.respond(
        &HeartbeatResponse::default().with_error_code(error.code()),
        error,
    ))
}

/// v3+ answer per member; older versions have one member and one error.
fn leave_response(
    version: i16,
    leaving: Vec<LeavingMember>,
    result: Result<Vec<ErrorCode>, ErrorCode>,
) -> LeaveGroupResponse {
    if version < 3 {
        let error = match result {
            Err(code) => code,
            Ok(errors) => errors.first().copied().unwrap_or(ErrorCode::NONE),
        };
        return LeaveGroupResponse::default().with_error_code(error.code());
    }
    match result {
        Err(code) => LeaveGroupResponse::default().with_error_code(code.code()),
        Ok(errors) => LeaveGroupResponse::default().with_members(
            leaving
                .into_iter()
                .zip(errors)
                .map(|(l, error)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(l.member_id))
                        .with_group_instance_id(l.group_instance_id.map(str_bytes))
                        .with_error_code(error.code())
                })
                .collect(),
        ),
    }
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
    let result = if Check::new(ctx, &rc).group(AclOperation::Read, &group_id) {
        ctx.groups().leave_group(&group_id, &leaving)
    } else {
        Err(ErrorCode::GROUP_AUTHORIZATION_FAILED)
    };
    let response = leave_response(version, leaving, result);
    let error = first_error(
        std::iter::once(response.error_code).chain(response.members.iter().map(|m| m.error_code)),
    );
    ready(rc.respond(&response, error))
}

// ---- DescribeGroups / ListGroups / DeleteGroups -------------------------------------------------

fn describe_one(
    version: i16,
    group_id: GroupId,
    result: Result<Option<GroupDescription>, ErrorCode>,
    authorized_operations: i32,
) -> DescribedGroup {
    let described = DescribedGroup::default()
        .with_group_id(group_id.clone())
        .with_authorized_operations(authorized_operations);
    match result {
        Err(code) => described.with_error_code(code.code()),
        Ok(None) if version >= 6 => described
            .with_error_code(ErrorCode::GROUP_ID_NOT_FOUND.code())
            .with_error_message(Some(str_bytes(format!("Group {} not found.", group_id.0))))
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
}

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
    let check = Check::new(ctx, &rc);
    let groups: Vec<DescribedGroup> = request
        .groups
        .into_iter()
        .map(|group_id| {
            let result = if check.group(AclOperation::Describe, group_id.0.as_str()) {
                ctx.groups().describe_group(group_id.0.as_str())
            } else {
                Err(ErrorCode::GROUP_AUTHORIZATION_FAILED)
            };
            describe_one(version, group_id, result, authorized_operations)
        })
        .collect();
    let error = first_error(groups.iter().map(|g| g.error_code));
    ready(rc.respond(
        &DescribeGroupsResponse::default().with_groups(groups),
        error,
    ))
}

/// ListGroups with the v4 state filter and the v5 type filter (groups here are all classic).
fn list_response(
    version: i16,
    error: ErrorCode,
    groups: Vec<GroupOverview>,
    states: &[String],
    types: &[String],
) -> ListGroupsResponse {
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
    ListGroupsResponse::default()
        .with_error_code(error.code())
        .with_groups(listed)
}

pub fn list_groups(ctx: &Arc<Context>, rc: RequestContext, request: ListGroupsRequest) -> Pending {
    let version = rc.version;
    // Without DESCRIBE on the cluster, only the groups the principal may describe are listed.
    let check = Check::new(ctx, &rc);
    let (error, mut groups) = ctx.groups().list_groups();
    if !check.cluster(AclOperation::Describe) {
        groups.retain(|g| check.group(AclOperation::Describe, &g.group_id));
    }
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
    ready(rc.respond(
        &list_response(version, error, groups, &states, &types),
        error,
    ))
}

pub fn delete_groups(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: DeleteGroupsRequest,
) -> Pending {
    let mut seen = HashSet::new();
    let check = Check::new(ctx, &rc);
    let results: Vec<DeletableGroupResult> = request
        .groups_names
        .into_iter()
        .filter(|g| seen.insert(g.0.to_string()))
        .map(|group_id| {
            let error = if check.group(AclOperation::Delete, group_id.0.as_str()) {
                ctx.groups().delete_group(group_id.0.as_str())
            } else {
                ErrorCode::GROUP_AUTHORIZATION_FAILED
            };
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error.code())
        })
        .collect();
    let error = first_error(results.iter().map(|r| r.error_code));
    ready(rc.respond(
        &DeleteGroupsResponse::default().with_results(results),
        error,
    ))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::api::test_support::{round_trip, versions};
    use crate::coordinator::group::MemberDescription;
    use crate::coordinator::replies::JoinedMember;
    use kafka_protocol::messages::ApiKey;

    #[test]
    fn find_coordinator_responses_encode_at_every_version() {
        let ok = Found {
            key: "g".into(),
            node_id: 2,
            host: "broker-2".into(),
            port: 9092,
            error: ErrorCode::NONE,
            message: None,
        };
        let failed = Found::failed(
            "t".into(),
            ErrorCode::INVALID_REQUEST,
            "transactions are not supported by this broker".into(),
        );
        for v in versions(ApiKey::FindCoordinator) {
            let r = round_trip(&find_response(v, vec![ok.clone(), failed.clone()]), v);
            if v >= 4 {
                assert_eq!(r.coordinators.len(), 2);
                assert_eq!(
                    (r.coordinators[0].node_id.0, r.coordinators[0].port),
                    (2, 9092)
                );
                assert_eq!(
                    r.coordinators[1].error_code,
                    ErrorCode::INVALID_REQUEST.code()
                );
            } else {
                assert_eq!(
                    (r.node_id.0, r.host.as_str(), r.port),
                    (2, "broker-2", 9092)
                );
            }
            let r = round_trip(&find_response(v, vec![failed.clone()]), v);
            if v < 4 {
                assert_eq!(
                    (r.error_code, r.node_id.0, r.port),
                    (ErrorCode::INVALID_REQUEST.code(), -1, -1)
                );
                if v >= 1 {
                    assert!(r.error_message.is_some_and(|m| m.contains("transactions")));
                }
            }
        }
    }

    #[test]
    fn join_responses_encode_at_every_version() {
        let result = JoinResult {
            error: ErrorCode::NONE,
            member_id: "m-1".into(),
            generation: 3,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: "m-1".into(),
            skip_assignment: true,
            members: vec![JoinedMember {
                member_id: "m-1".into(),
                group_instance_id: Some("i".into()),
                metadata: Bytes::from_static(b"meta"),
            }],
        };
        for v in versions(ApiKey::JoinGroup) {
            let r = round_trip(&join_response(v, result.clone()), v);
            assert_eq!(
                (r.generation_id, r.member_id.as_str(), r.leader.as_str()),
                (3, "m-1", "m-1")
            );
            assert_eq!(r.protocol_name.as_deref(), Some("range"));
            assert_eq!(r.members[0].group_instance_id.is_some(), v >= 5);
            assert_eq!(r.skip_assignment, v >= 9);
            assert_eq!(r.protocol_type.is_some(), v >= 7);
            // Errors before v7 still carry a non-null protocol name.
            let r = round_trip(
                &join_response(
                    v,
                    JoinResult::error("new-id", ErrorCode::MEMBER_ID_REQUIRED),
                ),
                v,
            );
            assert_eq!(
                (r.error_code, r.member_id.as_str(), r.generation_id),
                (ErrorCode::MEMBER_ID_REQUIRED.code(), "new-id", -1)
            );
            if v < 7 {
                assert_eq!(r.protocol_name.as_deref(), Some(""));
            } else {
                assert_eq!(r.protocol_name, None);
            }
        }
    }

    #[test]
    fn sync_and_leave_responses_encode_at_every_version() {
        for v in versions(ApiKey::SyncGroup) {
            let r = round_trip(
                &sync_response(
                    v,
                    SyncResult {
                        error: ErrorCode::NONE,
                        protocol_type: Some("consumer".into()),
                        protocol_name: Some("range".into()),
                        assignment: Bytes::from_static(b"a"),
                    },
                ),
                v,
            );
            assert_eq!(&r.assignment[..], b"a");
            assert_eq!(r.protocol_name.is_some(), v >= 5);
            round_trip(
                &sync_response(v, SyncResult::error(ErrorCode::REBALANCE_IN_PROGRESS)),
                v,
            );
        }
        let leaving = vec![
            LeavingMember {
                member_id: "m".into(),
                group_instance_id: None,
                reason: None,
            },
            LeavingMember {
                member_id: String::new(),
                group_instance_id: Some("i".into()),
                reason: Some("bye".into()),
            },
        ];
        for v in versions(ApiKey::LeaveGroup) {
            let r = round_trip(
                &leave_response(
                    v,
                    leaving.clone(),
                    Ok(vec![ErrorCode::NONE, ErrorCode::UNKNOWN_MEMBER_ID]),
                ),
                v,
            );
            if v >= 3 {
                assert_eq!(r.members.len(), 2);
                assert_eq!(r.members[1].error_code, ErrorCode::UNKNOWN_MEMBER_ID.code());
            } else {
                assert_eq!(r.error_code, ErrorCode::NONE.code());
            }
            let r = round_trip(
                &leave_response(v, leaving.clone(), Err(ErrorCode::NOT_COORDINATOR)),
                v,
            );
            assert_eq!(r.error_code, ErrorCode::NOT_COORDINATOR.code());
        }
    }

    #[test]
    fn describe_and_list_responses_encode_at_every_version() {
        let description = GroupDescription {
            state: GroupState::Stable,
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![MemberDescription {
                member_id: "m".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/10.0.0.1".into(),
                metadata: Bytes::from_static(b"x"),
                assignment: Bytes::from_static(b"y"),
            }],
        };
        for v in versions(ApiKey::DescribeGroups) {
            let ops = if v >= 3 {
                GROUP_AUTHORIZED_OPERATIONS
            } else {
                i32::MIN
            };
            let groups = vec![
                describe_one(
                    v,
                    GroupId(str_bytes("g")),
                    Ok(Some(description.clone())),
                    ops,
                ),
                describe_one(v, GroupId(str_bytes("gone")), Ok(None), ops),
                describe_one(
                    v,
                    GroupId(str_bytes("elsewhere")),
                    Err(ErrorCode::NOT_COORDINATOR),
                    ops,
                ),
            ];
            let r = round_trip(&DescribeGroupsResponse::default().with_groups(groups), v);
            assert_eq!(r.groups[0].group_state.as_str(), "Stable");
            assert_eq!(r.groups[0].members[0].client_host.as_str(), "/10.0.0.1");
            assert_eq!(r.groups[0].members[0].group_instance_id.is_some(), v >= 4);
            assert_eq!(r.groups[1].group_state.as_str(), "Dead");
            assert_eq!(r.groups[2].error_code, ErrorCode::NOT_COORDINATOR.code());
        }
        let groups = vec![
            GroupOverview {
                group_id: "a".into(),
                protocol_type: "consumer".into(),
                state: GroupState::Stable,
            },
            GroupOverview {
                group_id: "b".into(),
                protocol_type: String::new(),
                state: GroupState::Empty,
            },
        ];
        for v in versions(ApiKey::ListGroups) {
            let r = round_trip(
                &list_response(v, ErrorCode::NONE, groups.clone(), &[], &[]),
                v,
            );
            assert_eq!(r.groups.len(), 2);
            assert_eq!(
                r.groups[0].group_state.as_str(),
                if v >= 4 { "Stable" } else { "" }
            );
        }
        let only_empty = list_response(
            5,
            ErrorCode::NONE,
            groups.clone(),
            &["EMPTY".to_string()],
            &[],
        );
        assert_eq!(only_empty.groups.len(), 1);
        assert_eq!(only_empty.groups[0].group_id.0.as_str(), "b");
        assert!(list_response(
            5,
            ErrorCode::NONE,
            groups.clone(),
            &[],
            &["consumer".to_string()]
        )
        .groups
        .is_empty());
        assert_eq!(
            list_response(5, ErrorCode::NONE, groups, &[], &["Classic".to_string()])
                .groups
                .len(),
            2
        );
    }
}

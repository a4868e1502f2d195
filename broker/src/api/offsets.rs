//! Committed offset APIs: OffsetCommit (answered once the commit is replicated), OffsetFetch
//! (single group, or several from v8) and OffsetDelete.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use kafka_core::acl::AclOperation;
use kafka_core::ErrorCode;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use raft_controller::MetadataImage;
use storage::TopicPartition;

use super::authorization::Check;
use super::{first_error, ready, Pending, RequestContext};
use crate::context::{Context, MetadataView};
use crate::coordinator::manager::{self, OffsetCommitEntry};
use crate::coordinator::offsets::CommittedOffset;

/// A requested partition, in request order, with an error if it was refused before reaching the
/// coordinator (unknown topic or partition).
type Slot = (TopicName, i32, Option<ErrorCode>);
/// A partition's committed offset, if any.
type Fetched = (TopicPartition, Option<CommittedOffset>);
/// One topic's partitions with their committed offsets.
type TopicOffsets = (String, Vec<(i32, Option<CommittedOffset>)>);
/// The requested partitions, or None for "all of the group's".
type Requested = Option<Vec<TopicPartition>>;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn partition_exists(image: &MetadataImage, tp: &TopicPartition) -> bool {
    image.partition(&tp.topic, tp.partition).is_some()
}

/// Appends `(partition, error)` under its topic, keeping request order.
fn push_partition<T>(topics: &mut Vec<(TopicName, Vec<T>)>, name: TopicName, partition: T) {
    match topics.last_mut() {
        Some((last, partitions)) if *last == name => partitions.push(partition),
        _ => topics.push((name, vec![partition])),
    }
}

// ---- OffsetCommit -------------------------------------------------------------------------------

/// Pairs the coordinator's answers (for the slots it saw) back with every requested partition.
fn commit_response(slots: Vec<Slot>, results: Vec<ErrorCode>) -> OffsetCommitResponse {
    let mut results = results.into_iter();
    let mut topics = Vec::new();
    for (name, partition, refused) in slots {
        let error =
            refused.unwrap_or_else(|| results.next().unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR));
        push_partition(
            &mut topics,
            name,
            OffsetCommitResponsePartition::default()
                .with_partition_index(partition)
                .with_error_code(error.code()),
        );
    }
    OffsetCommitResponse::default().with_topics(
        topics
            .into_iter()
            .map(|(name, partitions)| {
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            })
            .collect(),
    )
}

pub fn offset_commit(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: OffsetCommitRequest,
) -> Pending {
    let version = rc.version;
    let image = ctx.latest_image();
    let check = Check::new(ctx, &rc);
    let group_allowed = check.group(AclOperation::Read, request.group_id.0.as_str());
    let mut slots: Vec<Slot> = Vec::new();
    let mut entries = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let topic_allowed = check.topic(AclOperation::Read, &name);
        for p in topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition_index,
            };
            let refused = if !group_allowed {
                Some(ErrorCode::GROUP_AUTHORIZATION_FAILED)
            } else if !topic_allowed {
                Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED)
            } else {
                None
            };
            if refused.is_some() {
                slots.push((topic.name.clone(), p.partition_index, refused));
                continue;
            }
            if !partition_exists(&image, &tp) {
                slots.push((
                    topic.name.clone(),
                    p.partition_index,
                    Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                ));
                continue;
            }
            slots.push((topic.name.clone(), p.partition_index, None));
            entries.push(OffsetCommitEntry {
                partition: tp,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.map(|m| m.to_string()),
            });
        }
    }
    // v2-v4 may carry a retention time; -1 means the broker's offsets.retention.minutes.
    let retention_ms =
        (version <= 4 && request.retention_time_ms >= 0).then_some(request.retention_time_ms);
    let commit = manager::OffsetCommitRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        generation: request.generation_id_or_member_epoch,
        retention_ms,
        entries,
    };
    let pending = ctx.groups().commit_offsets(commit);
    async move {
        let response = commit_response(slots, pending.await);
        let error = first_error(
            response
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        );
        rc.respond(&response, error)
    }
    .boxed()
}

// ---- OffsetFetch --------------------------------------------------------------------------------

/// (offset, leader epoch, metadata) as OffsetFetch reports a partition: -1 and "" for none.
fn reported(committed: Option<&CommittedOffset>) -> (i64, i32, String) {
    match committed {
        Some(c) => (c.offset, c.leader_epoch, c.metadata.clone()),
        None => (-1, -1, String::new()),
    }
}

/// Groups (partition, committed) pairs by topic, keeping the first-seen topic order.
fn by_topic(offsets: Vec<Fetched>) -> Vec<TopicOffsets> {
    let mut order: Vec<String> = Vec::new();
    let mut grouped: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> = BTreeMap::new();
    for (tp, c) in offsets {
        if !grouped.contains_key(&tp.topic) {
            order.push(tp.topic.clone());
        }
        grouped.entry(tp.topic).or_default().push((tp.partition, c));
    }
    order
        .into_iter()
        .map(|t| {
            let partitions = grouped.remove(&t).unwrap_or_default();
            (t, partitions)
        })
        .collect()
}

fn requested_partitions<I, P>(topics: I) -> Vec<TopicPartition>
where
    I: IntoIterator<Item = (TopicName, P)>,
    P: IntoIterator<Item = i32>,
{
    topics
        .into_iter()
        .flat_map(|(name, partitions)| {
            let topic = name.0.to_string();
            partitions.into_iter().map(move |p| TopicPartition {
                topic: topic.clone(),
                partition: p,
            })
        })
        .collect()
}

/// One group of an OffsetFetch v8+ response.
fn fetch_group_response(
    group_id: GroupId,
    result: Result<Vec<Fetched>, ErrorCode>,
) -> OffsetFetchResponseGroup {
    let group = OffsetFetchResponseGroup::default().with_group_id(group_id);
    match result {
        Err(code) => group.with_error_code(code.code()),
        Ok(offsets) => group.with_topics(
            by_topic(offsets)
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(topic_name(&topic))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(p, c)| {
                                    let (offset, epoch, metadata) = reported(c.as_ref());
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(StrBytes::from_string(metadata)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}

/// An OffsetFetch v1-v7 response. A group error is top-level from v2; v1 has no top-level
/// error, so every requested partition carries it.
fn fetch_response(
    version: i16,
    requested: &Requested,
    result: Result<Vec<Fetched>, ErrorCode>,
) -> OffsetFetchResponse {
    let partition = |p: i32, committed: Option<&CommittedOffset>, error: ErrorCode| {
        let (offset, epoch, metadata) = reported(committed);
        let mut r = OffsetFetchResponsePartition::default()
            .with_partition_index(p)
            .with_committed_offset(offset)
            .with_metadata(Some(StrBytes::from_string(metadata)))
            .with_error_code(error.code());
        if version >= 5 {
            r.committed_leader_epoch = epoch;
        }
        r
    };
    let topics = |offsets: Vec<Fetched>, error: ErrorCode| -> Vec<OffsetFetchResponseTopic> {
        by_topic(offsets)
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetFetchResponseTopic::default()
                    .with_name(topic_name(&topic))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|(p, c)| partition(*p, c.as_ref(), error))
                            .collect(),
                    )
            })
            .collect()
    };
    match result {
        Ok(offsets) => OffsetFetchResponse::default().with_topics(topics(offsets, ErrorCode::NONE)),
        Err(code) if version >= 2 => OffsetFetchResponse::default().with_error_code(code.code()),
        Err(code) => {
            let unanswered = requested
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|tp| (tp, None))
                .collect();
            OffsetFetchResponse::default().with_topics(topics(unanswered, code))
        }
    }
}

pub fn offset_fetch(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: OffsetFetchRequest,
) -> Pending {
    let version = rc.version;
    let manager = ctx.groups();
    let check = Check::new(ctx, &rc);
    // DESCRIBE on the group to read its offsets at all; offsets of topics the principal may
    // not DESCRIBE are left out.
    let fetch = |group: &str, requested: Option<&[TopicPartition]>| {
        if !check.group(AclOperation::Describe, group) {
            return Err(ErrorCode::GROUP_AUTHORIZATION_FAILED);
        }
        manager.fetch_offsets(group, requested).map(|mut offsets| {
            offsets.retain(|(tp, _)| check.topic(AclOperation::Describe, &tp.topic));
            offsets
        })
    };
    if version >= 8 {
        let groups: Vec<OffsetFetchResponseGroup> = request
            .groups
            .into_iter()
            .map(|g| {
                let requested: Requested = g.topics.map(|topics| {
                    requested_partitions(topics.into_iter().map(|t| (t.name, t.partition_indexes)))
                });
                let result = fetch(g.group_id.0.as_str(), requested.as_deref());
                fetch_group_response(g.group_id, result)
            })
            .collect();
        let error = first_error(groups.iter().map(|g| g.error_code));
        return ready(rc.respond(&OffsetFetchResponse::default().with_groups(groups), error));
    }
    let requested: Requested = match request.topics {
        // Only v2+ can ask for all topics; v1's list is never null.
        None if version < 2 => Some(Vec::new()),
        None => None,
        Some(topics) => Some(requested_partitions(
            topics.into_iter().map(|t| (t.name, t.partition_indexes)),
        )),
    };
    let result = fetch(request.group_id.0.as_str(), requested.as_deref());
    let error = result.as_ref().err().copied().unwrap_or(ErrorCode::NONE);
    ready(rc.respond(&fetch_response(version, &requested, result), error))
}

// ---- OffsetDelete -------------------------------------------------------------------------------

fn delete_response(
    slots: Vec<Slot>,
    result: Result<Vec<ErrorCode>, ErrorCode>,
) -> OffsetDeleteResponse {
    let errors = match result {
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code.code()),
        Ok(errors) => errors,
    };
    let mut errors = errors.into_iter();
    let mut topics = Vec::new();
    for (name, partition, refused) in slots {
        let error =
            refused.unwrap_or_else(|| errors.next().unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR));
        push_partition(
            &mut topics,
            name,
            OffsetDeleteResponsePartition::default()
                .with_partition_index(partition)
                .with_error_code(error.code()),
        );
    }
    OffsetDeleteResponse::default().with_topics(
        topics
            .into_iter()
            .map(|(name, partitions)| {
                OffsetDeleteResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            })
            .collect(),
    )
}

pub fn offset_delete(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: OffsetDeleteRequest,
) -> Pending {
    let image = ctx.latest_image();
    let check = Check::new(ctx, &rc);
    if !check.group(AclOperation::Delete, request.group_id.0.as_str()) {
        let code = ErrorCode::GROUP_AUTHORIZATION_FAILED;
        let response = OffsetDeleteResponse::default().with_error_code(code.code());
        return ready(rc.respond(&response, code));
    }
    let mut slots: Vec<Slot> = Vec::new();
    let mut partitions = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let topic_allowed = check.topic(AclOperation::Read, &name);
        for p in topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition_index,
            };
            if !topic_allowed {
                slots.push((
                    topic.name.clone(),
                    p.partition_index,
                    Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
                ));
            } else if partition_exists(&image, &tp) {
                slots.push((topic.name.clone(), p.partition_index, None));
                partitions.push(tp);
            } else {
                slots.push((
                    topic.name.clone(),
                    p.partition_index,
                    Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                ));
            }
        }
    }
    let result = ctx
        .groups()
        .delete_offsets(request.group_id.0.as_str(), &partitions);
    let response = delete_response(slots, result);
    let error = first_error(
        std::iter::once(response.error_code).chain(
            response
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
    );
    ready(rc.respond(&response, error))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ApiKey;

    use super::*;
    use crate::api::test_support::{round_trip, versions};

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: 4,
            metadata: "meta".into(),
            commit_timestamp_ms: 0,
            expire_timestamp_ms: None,
            record_offset: 0,
        }
    }

    #[test]
    fn commit_responses_keep_request_order_and_refusals() {
        let slots = vec![
            (topic_name("a"), 0, None),
            (
                topic_name("a"),
                1,
                Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            ),
            (topic_name("b"), 0, None),
        ];
        for v in versions(ApiKey::OffsetCommit) {
            let r = round_trip(
                &commit_response(
                    slots.clone(),
                    vec![ErrorCode::NONE, ErrorCode::ILLEGAL_GENERATION],
                ),
                v,
            );
            assert_eq!(r.topics.len(), 2);
            let codes: Vec<(i32, i16)> = r.topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
                .collect();
            assert_eq!(
                codes,
                vec![
                    (0, ErrorCode::NONE.code()),
                    (1, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code())
                ]
            );
            assert_eq!(
                r.topics[1].partitions[0].error_code,
                ErrorCode::ILLEGAL_GENERATION.code()
            );
        }
    }

    #[test]
    fn fetch_responses_encode_at_every_version() {
        let requested: Requested = Some(vec![tp("a", 0), tp("a", 1), tp("b", 0)]);
        let offsets = vec![
            (tp("a", 0), Some(committed(10))),
            (tp("a", 1), None),
            (tp("b", 0), Some(committed(3))),
        ];
        for v in versions(ApiKey::OffsetFetch) {
            if v >= 8 {
                let groups = vec![
                    fetch_group_response(
                        GroupId(StrBytes::from_string("g".into())),
                        Ok(offsets.clone()),
                    ),
                    fetch_group_response(
                        GroupId(StrBytes::from_string("h".into())),
                        Err(ErrorCode::NOT_COORDINATOR),
                    ),
                ];
                let r = round_trip(&OffsetFetchResponse::default().with_groups(groups), v);
                assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 10);
                assert_eq!(
                    r.groups[0].topics[0].partitions[0].committed_leader_epoch,
                    4
                );
                assert_eq!(r.groups[0].topics[0].partitions[1].committed_offset, -1);
                assert_eq!(r.groups[1].error_code, ErrorCode::NOT_COORDINATOR.code());
                continue;
            }
            let r = round_trip(&fetch_response(v, &requested, Ok(offsets.clone())), v);
            assert_eq!(r.topics.len(), 2);
            let a0 = &r.topics[0].partitions[0];
            assert_eq!(
                (a0.committed_offset, a0.metadata.as_deref()),
                (10, Some("meta"))
            );
            assert_eq!(a0.committed_leader_epoch, if v >= 5 { 4 } else { -1 });
            let a1 = &r.topics[0].partitions[1];
            assert_eq!(
                (a1.committed_offset, a1.metadata.as_deref(), a1.error_code),
                (-1, Some(""), ErrorCode::NONE.code())
            );
            let r = round_trip(
                &fetch_response(v, &requested, Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)),
                v,
            );
            if v >= 2 {
                assert_eq!(
                    (r.error_code, r.topics.len()),
                    (ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.code(), 0)
                );
            } else {
                let codes: Vec<i16> = r
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect();
                assert_eq!(
                    codes,
                    vec![ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.code(); 3]
                );
            }
        }
    }

    #[test]
    fn delete_responses_encode() {
        let slots = vec![
            (topic_name("a"), 0, None),
            (
                topic_name("z"),
                0,
                Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            ),
        ];
        for v in versions(ApiKey::OffsetDelete) {
            let r = round_trip(
                &delete_response(
                    slots.clone(),
                    Ok(vec![ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC]),
                ),
                v,
            );
            assert_eq!(
                r.topics[0].partitions[0].error_code,
                ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC.code()
            );
            assert_eq!(
                r.topics[1].partitions[0].error_code,
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
            );
            let r = round_trip(
                &delete_response(slots.clone(), Err(ErrorCode::NON_EMPTY_GROUP)),
                v,
            );
            assert_eq!(
                (r.error_code, r.topics.len()),
                (ErrorCode::NON_EMPTY_GROUP.code(), 0)
            );
        }
    }
}

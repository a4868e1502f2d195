//! Committed offset APIs: OffsetCommit (answered once the commit is replicated), OffsetFetch
//! (single group, or several from v8) and OffsetDelete.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
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

use super::{ready, Pending, RequestContext};
use crate::context::Context;
use crate::coordinator::manager::{self, OffsetCommitEntry};
use crate::coordinator::offsets::CommittedOffset;
use crate::error_codes::*;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn partition_exists(image: &MetadataImage, tp: &TopicPartition) -> bool {
    image.partition(&tp.topic, tp.partition).is_some()
}

fn first_error(codes: impl IntoIterator<Item = i16>) -> i16 {
    codes.into_iter().find(|c| *c != NONE).unwrap_or(NONE)
}

// ---- OffsetCommit -------------------------------------------------------------------------------

pub fn offset_commit(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: OffsetCommitRequest,
) -> Pending {
    let version = rc.version;
    let image = ctx.quorum.image();
    // (topic name, partition, error if refused before reaching the coordinator)
    let mut slots: Vec<(TopicName, i32, Option<i16>)> = Vec::new();
    let mut entries = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        for p in topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition_index,
            };
            if !partition_exists(&image, &tp) {
                slots.push((
                    topic.name.clone(),
                    p.partition_index,
                    Some(UNKNOWN_TOPIC_OR_PARTITION),
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
    let pending = ctx.groups.groups().commit_offsets(commit);
    async move {
        let mut results = pending.await.into_iter();
        let mut topics: Vec<OffsetCommitResponseTopic> = Vec::new();
        for (name, partition, refused) in slots {
            let error = refused.unwrap_or_else(|| results.next().unwrap_or(UNKNOWN_SERVER_ERROR));
            let response = OffsetCommitResponsePartition::default()
                .with_partition_index(partition)
                .with_error_code(error);
            match topics.last_mut() {
                Some(t) if t.name == name => t.partitions.push(response),
                _ => topics.push(
                    OffsetCommitResponseTopic::default()
                        .with_name(name)
                        .with_partitions(vec![response]),
                ),
            }
        }
        let error = first_error(
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        );
        rc.respond(&OffsetCommitResponse::default().with_topics(topics), error)
    }
    .boxed()
}

// ---- OffsetFetch --------------------------------------------------------------------------------

/// The requested partitions grouped by topic in request order, or None for "all".
type Requested = Option<Vec<TopicPartition>>;

/// (offset, leader epoch, metadata) as OffsetFetch reports a partition.
fn reported(committed: Option<&CommittedOffset>) -> (i64, i32, String) {
    match committed {
        Some(c) => (c.offset, c.leader_epoch, c.metadata.clone()),
        None => (-1, -1, String::new()),
    }
}

/// A partition's committed offset, if any.
type Fetched = (TopicPartition, Option<CommittedOffset>);
/// One topic's partitions with their committed offsets.
type TopicOffsets = (String, Vec<(i32, Option<CommittedOffset>)>);

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

fn fetch_group(ctx: &Context, group_id: &str, requested: &Requested) -> Result<Vec<Fetched>, i16> {
    ctx.groups
        .groups()
        .fetch_offsets(group_id, requested.as_deref())
}

pub fn offset_fetch(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: OffsetFetchRequest,
) -> Pending {
    let version = rc.version;
    if version >= 8 {
        let groups: Vec<OffsetFetchResponseGroup> = request
            .groups
            .into_iter()
            .map(|g| {
                let requested: Requested = g.topics.map(|topics| {
                    topics
                        .into_iter()
                        .flat_map(|t| {
                            let name = t.name.0.to_string();
                            t.partition_indexes
                                .into_iter()
                                .map(move |p| TopicPartition {
                                    topic: name.clone(),
                                    partition: p,
                                })
                        })
                        .collect()
                });
                let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match fetch_group(ctx, g.group_id.0.as_str(), &requested) {
                    Err(code) => group.with_error_code(code),
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
                                                let (offset, epoch, metadata) =
                                                    reported(c.as_ref());
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_committed_offset(offset)
                                                    .with_committed_leader_epoch(epoch)
                                                    .with_metadata(Some(StrBytes::from_string(
                                                        metadata,
                                                    )))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        let error = first_error(groups.iter().map(|g| g.error_code));
        return ready(rc.respond(&OffsetFetchResponse::default().with_groups(groups), error));
    }

    let requested: Requested = match request.topics {
        // v1 has no "all topics"; a null list there is treated as empty.
        None if version < 2 => Some(Vec::new()),
        None => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .flat_map(|t| {
                    let name = t.name.0.to_string();
                    t.partition_indexes
                        .into_iter()
                        .map(move |p| TopicPartition {
                            topic: name.clone(),
                            partition: p,
                        })
                })
                .collect(),
        ),
    };
    let partition = |p: i32, offset: i64, epoch: i32, metadata: String, error: i16| {
        let mut r = OffsetFetchResponsePartition::default()
            .with_partition_index(p)
            .with_committed_offset(offset)
            .with_metadata(Some(StrBytes::from_string(metadata)))
            .with_error_code(error);
        if version >= 5 {
            r.committed_leader_epoch = epoch;
        }
        r
    };
    let (error, offsets) = match fetch_group(ctx, request.group_id.0.as_str(), &requested) {
        Ok(offsets) => (NONE, offsets),
        // v2+ reports group errors at the top level; v1 only per partition.
        Err(code) if version >= 2 => (code, Vec::new()),
        Err(code) => {
            let topics = by_topic(
                requested
                    .unwrap_or_default()
                    .into_iter()
                    .map(|tp| (tp, None))
                    .collect(),
            )
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetFetchResponseTopic::default()
                    .with_name(topic_name(&topic))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(p, _)| partition(p, -1, -1, String::new(), code))
                            .collect(),
                    )
            })
            .collect();
            return ready(rc.respond(&OffsetFetchResponse::default().with_topics(topics), code));
        }
    };
    let topics = by_topic(offsets)
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&topic))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, c)| {
                            let (offset, epoch, metadata) = reported(c.as_ref());
                            partition(p, offset, epoch, metadata, NONE)
                        })
                        .collect(),
                )
        })
        .collect();
    let mut response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.error_code = error;
    }
    ready(rc.respond(&response, error))
}

// ---- OffsetDelete -------------------------------------------------------------------------------

pub fn offset_delete(
    ctx: &Arc<Context>,
    rc: RequestContext,
    request: OffsetDeleteRequest,
) -> Pending {
    let image = ctx.quorum.image();
    let group_id: GroupId = request.group_id;
    let mut slots: Vec<(TopicName, i32, Option<i16>)> = Vec::new();
    let mut partitions = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        for p in topic.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition_index,
            };
            if partition_exists(&image, &tp) {
                slots.push((topic.name.clone(), p.partition_index, None));
                partitions.push(tp);
            } else {
                slots.push((
                    topic.name.clone(),
                    p.partition_index,
                    Some(UNKNOWN_TOPIC_OR_PARTITION),
                ));
            }
        }
    }
    let response = match ctx
        .groups
        .groups()
        .delete_offsets(group_id.0.as_str(), &partitions)
    {
        Err(code) => OffsetDeleteResponse::default().with_error_code(code),
        Ok(errors) => {
            let mut errors = errors.into_iter();
            let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
            for (name, partition, refused) in slots {
                let error =
                    refused.unwrap_or_else(|| errors.next().unwrap_or(UNKNOWN_SERVER_ERROR));
                let p = OffsetDeleteResponsePartition::default()
                    .with_partition_index(partition)
                    .with_error_code(error);
                match topics.last_mut() {
                    Some(t) if t.name == name => t.partitions.push(p),
                    _ => topics.push(
                        OffsetDeleteResponseTopic::default()
                            .with_name(name)
                            .with_partitions(vec![p]),
                    ),
                }
            }
            OffsetDeleteResponse::default().with_topics(topics)
        }
    };
    let error = if response.error_code != NONE {
        response.error_code
    } else {
        first_error(
            response
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        )
    };
    ready(rc.respond(&response, error))
}

//! The groups and committed offsets of every `__consumer_offsets` partition this broker leads
//! (Kafka's GroupCoordinator + GroupMetadataManager): routing a group to its partition, loading
//! and unloading partitions as leadership moves, and every group API on top of the group state
//! machine — with writes to the partition for group metadata and offsets.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_core::ErrorCode;
use parking_lot::RwLock;
use storage::TopicPartition;
use tokio::time::Instant;
use tracing::{info, warn};

use super::config::CoordinatorConfig;
use super::group::{
    Group, GroupDescription, JoinRequest, LeavingMember, SyncRequest, CONSUMER_PROTOCOL_TYPE,
};
use super::loader;
use super::offsets::CommittedOffset;
use super::offsets_topic::{CoordinatorRecord, OffsetCommitValue};
use super::partitioner::partition_for;
use super::replies::{JoinResult, Reply, SyncResult};
use super::shard::{Shard, ShardStatus};
use super::state::GroupState;
use super::writer::offset_commit_error;
use crate::metrics::Metrics;
use crate::replica::{now_ms, Partition};

/// How long to wait before retrying a failed load.
const LOAD_RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct OffsetCommitEntry {
    pub partition: TopicPartition,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// An OffsetCommit.
#[derive(Debug, Clone)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation: i32,
    /// OffsetCommit v2-v4 retention time; None for the broker's retention.
    pub retention_ms: Option<i64>,
    pub entries: Vec<OffsetCommitEntry>,
}

/// ListGroups' view of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOverview {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// A group's committed offset of one partition, for lag metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPartitionOffset {
    pub group_id: String,
    pub partition: TopicPartition,
    pub offset: i64,
}

#[derive(Debug)]
pub struct GroupManager {
    config: Arc<CoordinatorConfig>,
    metrics: Arc<Metrics>,
    shards: RwLock<HashMap<i32, Arc<Shard>>>,
    /// Partition count of `__consumer_offsets` (0: unknown).
    partitions: AtomicI32,
}

impl GroupManager {
    pub fn new(config: Arc<CoordinatorConfig>, metrics: Arc<Metrics>) -> Arc<GroupManager> {
        Arc::new(GroupManager {
            config,
            metrics,
            shards: RwLock::new(HashMap::new()),
            partitions: AtomicI32::new(0),
        })
    }

    /// Records the partition count of `__consumer_offsets`, which decides where groups live.
    pub fn set_offsets_partitions(&self, partitions: i32) {
        self.partitions.store(partitions, Ordering::Relaxed);
    }

    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.partitions.load(Ordering::Relaxed))
    }

    /// The loaded partition that stores `group_id`, or why there is none here.
    fn shard(&self, group_id: &str) -> Result<Arc<Shard>, ErrorCode> {
        if self.partitions.load(Ordering::Relaxed) <= 0 {
            return Err(ErrorCode::NOT_COORDINATOR);
        }
        let index = self.partition_for(group_id);
        let shard = self
            .shards
            .read()
            .get(&index)
            .cloned()
            .ok_or(ErrorCode::NOT_COORDINATOR)?;
        match shard.status() {
            ShardStatus::Active => Ok(shard),
            ShardStatus::Loading => Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
            ShardStatus::Unloaded => Err(ErrorCode::NOT_COORDINATOR),
        }
    }

    fn active_shards(&self) -> Vec<Arc<Shard>> {
        self.shards
            .read()
            .values()
            .filter(|s| s.status() == ShardStatus::Active)
            .cloned()
            .collect()
    }

    // ---- leadership of __consumer_offsets partitions ------------------------------------------

    /// This broker now leads `__consumer_offsets` partition `index`: load its groups in the
    /// background (its groups answer COORDINATOR_LOAD_IN_PROGRESS meanwhile).
    pub fn elected(self: &Arc<Self>, index: i32, leader_epoch: i32, partition: Arc<Partition>) {
        let shard = {
            let mut shards = self.shards.write();
            if let Some(existing) = shards.get(&index) {
                if Arc::ptr_eq(&existing.partition, &partition)
                    && existing.status() != ShardStatus::Unloaded
                {
                    // Still the leader (a new epoch of the same leadership): state is current.
                    info!(partition = %partition.tp, leader_epoch, "still the group coordinator for this partition");
                    return;
                }
                existing.unload();
            }
            let shard = Arc::new(Shard::new(
                partition,
                self.config.clone(),
                self.metrics.clone(),
            ));
            shards.insert(index, shard.clone());
            shard
        };
        info!(partition = %shard.partition.tp, leader_epoch, "elected group coordinator; loading groups and offsets");
        tokio::spawn(load(shard));
    }

    /// This broker no longer leads `__consumer_offsets` partition `index`.
    pub fn resigned(&self, index: i32) {
        let removed = self.shards.write().remove(&index);
        if let Some(shard) = removed {
            info!(partition = %shard.partition.tp, "resigned as group coordinator for this partition");
            shard.unload();
        }
    }

    pub fn unload_all(&self) {
        let shards: Vec<Arc<Shard>> = self.shards.write().drain().map(|(_, s)| s).collect();
        for shard in shards {
            shard.unload();
        }
    }

    /// Whether partition `index` is loaded and served here.
    #[cfg(test)]
    pub fn is_active(&self, index: i32) -> bool {
        self.shards
            .read()
            .get(&index)
            .is_some_and(|s| s.status() == ShardStatus::Active)
    }

    // ---- the group protocol -------------------------------------------------------------------

    fn check_session_timeout(&self, session_timeout_ms: i32) -> bool {
        session_timeout_ms >= self.config.group_min_session_timeout_ms
            && session_timeout_ms <= self.config.group_max_session_timeout_ms
    }

    pub fn join_group(&self, group_id: &str, request: JoinRequest) -> Reply<JoinResult> {
        let member_id = request.member_id.clone();
        if group_id.is_empty() {
            return Reply::Ready(JoinResult::error(member_id, ErrorCode::INVALID_GROUP_ID));
        }
        let shard = match self.shard(group_id) {
            Ok(s) => s,
            Err(code) => return Reply::Ready(JoinResult::error(member_id, code)),
        };
        if !self.check_session_timeout(request.session_timeout_ms) {
            return Reply::Ready(JoinResult::error(
                member_id,
                ErrorCode::INVALID_SESSION_TIMEOUT,
            ));
        }
        let handle = if member_id.is_empty() {
            shard.get_or_create(group_id)
        } else {
            match shard.get(group_id) {
                Some(h) => h,
                None => {
                    return Reply::Ready(JoinResult::error(member_id, ErrorCode::UNKNOWN_MEMBER_ID))
                }
            }
        };
        let mut group = handle.lock();
        let reply = group.join(request, Instant::now());
        shard.apply_effects(&handle, &mut group);
        reply
    }

    pub fn sync_group(&self, group_id: &str, request: SyncRequest) -> Reply<SyncResult> {
        if group_id.is_empty() {
            return Reply::Ready(SyncResult::error(ErrorCode::INVALID_GROUP_ID));
        }
        let shard = match self.shard(group_id) {
            Ok(s) => s,
            // The rebalance state was lost with the load: the member must rejoin (older clients
            // do not expect COORDINATOR_LOAD_IN_PROGRESS here).
            Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS) => {
                return Reply::Ready(SyncResult::error(ErrorCode::REBALANCE_IN_PROGRESS))
            }
            Err(code) => return Reply::Ready(SyncResult::error(code)),
        };
        let Some(handle) = shard.get(group_id) else {
            return Reply::Ready(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID));
        };
        let mut group = handle.lock();
        let reply = group.sync(request, Instant::now());
        shard.apply_effects(&handle, &mut group);
        reply
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
    ) -> ErrorCode {
        if group_id.is_empty() {
            return ErrorCode::INVALID_GROUP_ID;
        }
        let shard = match self.shard(group_id) {
            Ok(s) => s,
            // Still loading: answer blindly, as Kafka does.
            Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS) => return ErrorCode::NONE,
            Err(code) => return code,
        };
        let Some(handle) = shard.get(group_id) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        let mut group = handle.lock();
        let code = group.heartbeat(member_id, group_instance_id, generation, Instant::now());
        drop(group);
        handle.wake();
        code
    }

    /// LeaveGroup: per-member errors, or a group-level error.
    pub fn leave_group(
        &self,
        group_id: &str,
        members: &[LeavingMember],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        if group_id.is_empty() {
            return Err(ErrorCode::INVALID_GROUP_ID);
        }
        let shard = self.shard(group_id)?;
        let Some(handle) = shard.get(group_id) else {
            return Ok(vec![ErrorCode::UNKNOWN_MEMBER_ID; members.len()]);
        };
        let mut group = handle.lock();
        let result = group.leave(members, Instant::now());
        shard.apply_effects(&handle, &mut group);
        result
    }

    /// DescribeGroups for one group (None: not known here, which Kafka reports as Dead).
    pub fn describe_group(&self, group_id: &str) -> Result<Option<GroupDescription>, ErrorCode> {
        let shard = self.shard(group_id)?;
        Ok(shard.get(group_id).map(|h| h.lock().describe()))
    }

    /// ListGroups: the groups of every loaded partition (COORDINATOR_LOAD_IN_PROGRESS with
    /// whatever is loaded while some partition is still loading).
    pub fn list_groups(&self) -> (ErrorCode, Vec<GroupOverview>) {
        let loading = self
            .shards
            .read()
            .values()
            .any(|s| s.status() == ShardStatus::Loading);
        let mut groups = Vec::new();
        for shard in self.active_shards() {
            for handle in shard.groups() {
                let group = handle.lock();
                if group.state() == GroupState::Dead {
                    continue;
                }
                groups.push(GroupOverview {
                    group_id: group.id().to_string(),
                    protocol_type: group.protocol_type().unwrap_or_default().to_string(),
                    state: group.state(),
                });
            }
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        (
            if loading {
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            } else {
                ErrorCode::NONE
            },
            groups,
        )
    }

    /// DeleteGroups for one group: only empty groups; writes tombstones for the group and its
    /// offsets.
    pub fn delete_group(&self, group_id: &str) -> ErrorCode {
        let shard = match self.shard(group_id) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let Some(handle) = shard.get(group_id) else {
            return ErrorCode::GROUP_ID_NOT_FOUND;
        };
        let mut group = handle.lock();
        match group.state() {
            GroupState::Dead => return ErrorCode::GROUP_ID_NOT_FOUND,
            GroupState::Empty => {}
            _ => return ErrorCode::NON_EMPTY_GROUP,
        }
        group.mark_dead();
        let removed = group.offsets_mut().remove_all();
        let mut records = Vec::with_capacity(removed.len() + 1);
        for tp in &removed {
            if let Ok(r) = CoordinatorRecord::offset_tombstone(group_id, &tp.topic, tp.partition) {
                records.push(r);
            }
        }
        if let Ok(r) = CoordinatorRecord::group_tombstone(group_id) {
            records.push(r);
        }
        let appended = shard.append(&records);
        drop(group);
        shard.remove_if_dead(&handle);
        match appended {
            Ok(_) => {
                info!(group = group_id, offsets = removed.len(), "deleted group");
                ErrorCode::NONE
            }
            Err(code) => {
                warn!(
                    group = group_id,
                    error = %code,
                    "group deleted here but its tombstones were not written"
                );
                offset_commit_error(code)
            }
        }
    }

    // ---- offsets ------------------------------------------------------------------------------

    /// OffsetCommit: one error per entry, once the commit records are replicated (or failed).
    pub fn commit_offsets(
        &self,
        request: OffsetCommitRequest,
    ) -> BoxFuture<'static, Vec<ErrorCode>> {
        let n = request.entries.len();
        let all = |code: ErrorCode| futures::future::ready(vec![code; n]).boxed();
        let shard = match self.shard(&request.group_id) {
            Ok(s) => s,
            Err(code) => return all(code),
        };
        let handle = match shard.get(&request.group_id) {
            Some(h) => h,
            // A group unknown here may be created by a standalone consumer's commit only.
            None if request.generation < 0 => {
                info!(group = %request.group_id, "creating a standalone consumer group through an offset commit");
                shard.get_or_create(&request.group_id)
            }
            None => return all(ErrorCode::ILLEGAL_GENERATION),
        };
        let now = now_ms();
        let mut group = handle.lock();
        if let Err(code) = group.validate_offset_commit(
            request.generation,
            &request.member_id,
            request.group_instance_id.as_deref(),
            Instant::now(),
        ) {
            return all(code);
        }
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut errors = vec![ErrorCode::NONE; n];
        let mut records = Vec::new();
        let mut committed: Vec<(usize, TopicPartition, CommittedOffset)> = Vec::new();
        for (i, e) in request.entries.iter().enumerate() {
            let metadata = e.metadata.clone().unwrap_or_default();
            if metadata.encode_utf16().count() > max_metadata {
                errors[i] = ErrorCode::OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            let value = OffsetCommitValue {
                offset: e.offset,
                leader_epoch: e.leader_epoch,
                metadata,
                commit_timestamp: now,
                expire_timestamp: request.retention_ms.map(|r| now.saturating_add(r)),
            };
            match CoordinatorRecord::offset_commit(
                &request.group_id,
                &e.partition.topic,
                e.partition.partition,
                &value,
            ) {
                Ok(record) => {
                    records.push(record);
                    committed.push((
                        i,
                        e.partition.clone(),
                        CommittedOffset {
                            offset: value.offset,
                            leader_epoch: value.leader_epoch,
                            metadata: value.metadata,
                            commit_timestamp_ms: now,
                            expire_timestamp_ms: value.expire_timestamp,
                            record_offset: -1,
                        },
                    ));
                }
                Err(_) => errors[i] = ErrorCode::OFFSET_METADATA_TOO_LARGE,
            }
        }
        if records.is_empty() {
            return futures::future::ready(errors).boxed();
        }
        let appended = match shard.append(&records) {
            Ok(a) => a,
            Err(code) => {
                let code = offset_commit_error(code);
                for (i, _, _) in &committed {
                    errors[*i] = code;
                }
                return futures::future::ready(errors).boxed();
            }
        };
        group
            .offsets_mut()
            .begin_commit(committed.iter().map(|(_, tp, _)| tp));
        drop(group);
        handle.wake();

        let timeout = self.config.offsets_commit_timeout;
        // The completion runs even if the client goes away: the cache must follow the log.
        let completion = tokio::spawn(async move {
            let code = offset_commit_error(appended.replicated(timeout).await);
            let mut group = handle.lock();
            for (k, (i, tp, mut value)) in committed.into_iter().enumerate() {
                value.record_offset = appended.first_offset + k as i64;
                group
                    .offsets_mut()
                    .finish_commit(&tp, (code == ErrorCode::NONE).then_some(value));
                errors[i] = code;
            }
            errors
        });
        async move {
            completion
                .await
                .unwrap_or_else(|_| vec![ErrorCode::UNKNOWN_SERVER_ERROR; n])
        }
        .boxed()
    }

    /// OffsetFetch: the committed offsets of `partitions` (None: all of the group's).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, ErrorCode> {
        let shard = self.shard(group_id)?;
        let handle = shard.get(group_id);
        let group = handle.as_ref().map(|h| h.lock());
        let live = group.as_ref().filter(|g| g.state() != GroupState::Dead);
        Ok(match (partitions, live) {
            (Some(partitions), Some(g)) => partitions
                .iter()
                .map(|tp| (tp.clone(), g.offsets().get(tp).cloned()))
                .collect(),
            (Some(partitions), None) => partitions.iter().map(|tp| (tp.clone(), None)).collect(),
            (None, Some(g)) => g
                .offsets()
                .iter()
                .map(|(tp, o)| (tp.clone(), Some(o.clone())))
                .collect(),
            (None, None) => Vec::new(),
        })
    }

    /// OffsetDelete: per-partition errors, or a group-level error.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let shard = self.shard(group_id)?;
        let handle = shard.get(group_id).ok_or(ErrorCode::GROUP_ID_NOT_FOUND)?;
        let mut group = handle.lock();
        let mut errors = vec![ErrorCode::NONE; partitions.len()];
        match group.state() {
            GroupState::Dead => return Err(ErrorCode::GROUP_ID_NOT_FOUND),
            GroupState::Empty => {}
            _ if group.protocol_type() == Some(CONSUMER_PROTOCOL_TYPE) => {
                for (i, tp) in partitions.iter().enumerate() {
                    if group.is_subscribed_to(&tp.topic) {
                        errors[i] = ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC;
                    }
                }
            }
            _ => return Err(ErrorCode::NON_EMPTY_GROUP),
        }
        let eligible: Vec<TopicPartition> = partitions
            .iter()
            .zip(&errors)
            .filter(|(_, e)| **e == ErrorCode::NONE)
            .map(|(tp, _)| tp.clone())
            .collect();
        let removed = group.offsets_mut().remove(&eligible);
        if !removed.is_empty() {
            let records: Vec<CoordinatorRecord> = removed
                .iter()
                .filter_map(|tp| {
                    CoordinatorRecord::offset_tombstone(group_id, &tp.topic, tp.partition).ok()
                })
                .collect();
            if let Err(code) = shard.append(&records) {
                warn!(
                    group = group_id,
                    error = %code,
                    "offset tombstones were not written"
                );
            }
            info!(group = group_id, partitions = ?removed, "deleted committed offsets");
        }
        Ok(errors)
    }

    /// Removes offsets past retention and groups left with nothing (periodic).
    pub fn expire_offsets(&self, now_ms: i64) {
        let retention_ms = self.config.offsets_retention_ms;
        let (offsets, groups) =
            self.clean_up(|group| group.remove_expired_offsets(now_ms, retention_ms));
        if offsets > 0 || groups > 0 {
            info!(offsets, groups, "removed expired offsets and groups");
        }
    }

    /// Removes the offsets of partitions that no longer exist (their topic was deleted), as
    /// Kafka does when topics are deleted.
    pub fn remove_deleted_partitions(&self, exists: impl Fn(&TopicPartition) -> bool) {
        let (offsets, groups) = self.clean_up(|group| {
            let gone: Vec<TopicPartition> = group
                .offsets()
                .iter()
                .map(|(tp, _)| tp)
                .filter(|tp| !exists(tp))
                .cloned()
                .collect();
            group.offsets_mut().remove(&gone)
        });
        if offsets > 0 || groups > 0 {
            info!(offsets, groups, "removed offsets of deleted partitions");
        }
    }

    /// Removes the offsets `select` picks from every group (writing tombstones), and the empty
    /// groups left without offsets. Returns (offsets removed, groups removed).
    fn clean_up(&self, select: impl Fn(&mut Group) -> Vec<TopicPartition>) -> (usize, usize) {
        let mut removed_offsets = 0usize;
        let mut removed_groups = 0usize;
        for shard in self.active_shards() {
            for handle in shard.groups() {
                let mut group = handle.lock();
                if group.state() == GroupState::Dead {
                    continue;
                }
                let removed = select(&mut group);
                let becomes_dead =
                    group.state() == GroupState::Empty && !group.offsets().has_offsets();
                let mut records: Vec<CoordinatorRecord> = removed
                    .iter()
                    .filter_map(|tp| {
                        CoordinatorRecord::offset_tombstone(group.id(), &tp.topic, tp.partition)
                            .ok()
                    })
                    .collect();
                if becomes_dead {
                    // Groups used only for offset storage (generation 0) never wrote metadata.
                    if group.generation() > 0 {
                        if let Ok(r) = CoordinatorRecord::group_tombstone(group.id()) {
                            records.push(r);
                        }
                    }
                    group.mark_dead();
                    removed_groups += 1;
                }
                removed_offsets += removed.len();
                if !records.is_empty() {
                    if let Err(code) = shard.append(&records) {
                        warn!(group = %group.id(), error = %code, "tombstones for removed offsets were not written");
                    }
                }
                drop(group);
                if becomes_dead {
                    shard.remove_if_dead(&handle);
                }
            }
        }
        (removed_offsets, removed_groups)
    }

    // ---- views for metrics --------------------------------------------------------------------

    /// Groups coordinated here, per state.
    pub fn group_state_counts(&self) -> HashMap<GroupState, usize> {
        let mut counts = HashMap::new();
        for shard in self.active_shards() {
            for handle in shard.groups() {
                *counts.entry(handle.lock().state()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Every committed offset of the groups coordinated here.
    pub fn committed_offsets(&self) -> Vec<GroupPartitionOffset> {
        let mut out = Vec::new();
        for shard in self.active_shards() {
            for handle in shard.groups() {
                let group = handle.lock();
                if group.state() == GroupState::Dead {
                    continue;
                }
                for (tp, o) in group.offsets().iter() {
                    if o.offset >= 0 {
                        out.push(GroupPartitionOffset {
                            group_id: group.id().to_string(),
                            partition: tp.clone(),
                            offset: o.offset,
                        });
                    }
                }
            }
        }
        out
    }

    /// The partitions groups coordinated here have offsets for.
    pub fn committed_partitions(&self) -> BTreeSet<TopicPartition> {
        self.committed_offsets()
            .into_iter()
            .map(|o| o.partition)
            .collect()
    }
}

/// Replays the partition's log (retrying after failures) and activates the shard.
async fn load(shard: Arc<Shard>) {
    loop {
        if shard.status() != ShardStatus::Loading {
            return;
        }
        let log = shard.partition.log().clone();
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || loader::load(&log)).await {
            Ok(Ok(loaded)) => {
                let groups = loaded.groups.len();
                if shard.activate(loaded) {
                    info!(partition = %shard.partition.tp, groups, elapsed_ms = started.elapsed().as_millis() as u64, "group coordinator partition ready");
                }
                return;
            }
            Ok(Err(e)) => {
                warn!(partition = %shard.partition.tp, error = %e, "loading groups failed; retrying")
            }
            Err(e) => {
                warn!(partition = %shard.partition.tp, error = %e, "loading task failed; retrying")
            }
        }
        tokio::time::sleep(LOAD_RETRY_BACKOFF).await;
    }
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;

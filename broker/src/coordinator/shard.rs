//! One `__consumer_offsets` partition this broker leads, with the groups stored in it: whether
//! they are loaded yet, the groups themselves (each behind its own lock, with its own deadline
//! timer), and the writes of group metadata that the groups ask for.
//!
//! Lock order: the shard's group map may be locked and then a group, never the other way round.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_core::ErrorCode;
use parking_lot::{Mutex, MutexGuard, RwLock};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info};

use super::config::CoordinatorConfig;
use super::group::{AfterStore, Group};
use super::loader::LoadedPartition;
use super::offsets_topic::CoordinatorRecord;
use super::state::GroupState;
use super::timer;
use super::writer::{self, group_store_error, Appended};
use crate::metrics::Metrics;
use crate::replica::Partition;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardStatus {
    /// The partition's log is being replayed: its groups answer COORDINATOR_LOAD_IN_PROGRESS.
    Loading,
    Active,
    /// Leadership moved away: its groups answer NOT_COORDINATOR.
    Unloaded,
}

/// A group and what wakes its timer.
#[derive(Debug)]
pub struct GroupHandle {
    pub id: String,
    group: Mutex<Group>,
    wake: Notify,
}

impl GroupHandle {
    pub fn lock(&self) -> MutexGuard<'_, Group> {
        self.group.lock()
    }

    /// Tells the timer the deadlines may have changed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

#[derive(Debug)]
pub struct Shard {
    pub partition: Arc<Partition>,
    config: Arc<CoordinatorConfig>,
    metrics: Arc<Metrics>,
    status: Mutex<ShardStatus>,
    groups: RwLock<HashMap<String, Arc<GroupHandle>>>,
}

impl Shard {
    pub fn new(
        partition: Arc<Partition>,
        config: Arc<CoordinatorConfig>,
        metrics: Arc<Metrics>,
    ) -> Shard {
        Shard {
            partition,
            config,
            metrics,
            status: Mutex::new(ShardStatus::Loading),
            groups: RwLock::new(HashMap::new()),
        }
    }

    pub fn status(&self) -> ShardStatus {
        *self.status.lock()
    }

    /// Installs the groups read from the log and starts answering for them. False if the
    /// shard was unloaded meanwhile.
    pub fn activate(self: &Arc<Self>, loaded: LoadedPartition) -> bool {
        let mut status = self.status.lock();
        if *status != ShardStatus::Loading {
            return false;
        }
        let now = Instant::now();
        let mut groups = self.groups.write();
        for (id, g) in loaded.groups {
            let group = Group::loaded(id.clone(), g.metadata, g.offsets, self.config.group, now);
            let handle = self.insert_locked(&mut groups, id, group);
            let mut group = handle.lock();
            self.apply_effects(&handle, &mut group);
        }
        info!(partition = %self.partition.tp, groups = groups.len(), records = loaded.records, skipped = loaded.skipped, end_offset = loaded.end_offset, "loaded groups and offsets");
        *status = ShardStatus::Active;
        true
    }

    /// Stops coordinating this partition's groups.
    pub fn unload(&self) {
        *self.status.lock() = ShardStatus::Unloaded;
        let groups: Vec<Arc<GroupHandle>> = self.groups.write().drain().map(|(_, h)| h).collect();
        for handle in &groups {
            handle.lock().unload();
            handle.wake();
        }
        if !groups.is_empty() {
            info!(partition = %self.partition.tp, groups = groups.len(), "unloaded groups");
        }
    }

    pub fn get(&self, group_id: &str) -> Option<Arc<GroupHandle>> {
        self.groups.read().get(group_id).cloned()
    }

    /// The group, created empty if it does not exist (or only a dead one does).
    pub fn get_or_create(self: &Arc<Self>, group_id: &str) -> Arc<GroupHandle> {
        let mut groups = self.groups.write();
        if let Some(existing) = groups.get(group_id) {
            if existing.lock().state() != GroupState::Dead {
                return existing.clone();
            }
        }
        debug!(group = group_id, partition = %self.partition.tp, "creating group");
        let group = Group::new(group_id.to_string(), self.config.group);
        self.insert_locked(&mut groups, group_id.to_string(), group)
    }

    fn insert_locked(
        self: &Arc<Self>,
        groups: &mut HashMap<String, Arc<GroupHandle>>,
        id: String,
        group: Group,
    ) -> Arc<GroupHandle> {
        let handle = Arc::new(GroupHandle {
            id: id.clone(),
            group: Mutex::new(group),
            wake: Notify::new(),
        });
        groups.insert(id, handle.clone());
        timer::spawn(self.clone(), handle.clone());
        handle
    }

    /// Forgets `handle` if it is (still) the one in the map and it is dead.
    pub fn remove_if_dead(&self, handle: &Arc<GroupHandle>) {
        let mut groups = self.groups.write();
        if let Some(current) = groups.get(&handle.id) {
            if Arc::ptr_eq(current, handle) && current.lock().state() == GroupState::Dead {
                groups.remove(&handle.id);
            }
        }
        handle.wake();
    }

    pub fn groups(&self) -> Vec<Arc<GroupHandle>> {
        self.groups.read().values().cloned().collect()
    }

    /// Appends records to this partition.
    pub fn append(&self, records: &[CoordinatorRecord]) -> Result<Appended, ErrorCode> {
        writer::append(&self.partition, records)
    }

    /// Carries out the writes `group` asked for: each group metadata record is appended now
    /// (under the group's lock, so the log sees them in state order), and its completion runs
    /// once it is replicated.
    pub fn apply_effects(self: &Arc<Self>, handle: &Arc<GroupHandle>, group: &mut Group) {
        loop {
            let effects = group.take_effects();
            if effects.is_empty() {
                break;
            }
            for store in effects {
                if matches!(store.then, AfterStore::Sync { .. }) {
                    self.metrics.rebalances.inc();
                }
                let record = CoordinatorRecord::group_metadata(group.id(), &store.value);
                let appended = match record {
                    Ok(record) => self.append(std::slice::from_ref(&record)),
                    Err(e) => {
                        tracing::warn!(group = %group.id(), error = %e, "cannot encode group metadata");
                        Err(ErrorCode::UNKNOWN_SERVER_ERROR)
                    }
                };
                match appended {
                    Ok(appended) => {
                        let shard = self.clone();
                        let handle = handle.clone();
                        let then = store.then;
                        tokio::spawn(async move {
                            let code = appended
                                .replicated(shard.config.offsets_commit_timeout)
                                .await;
                            let mut group = handle.lock();
                            group.on_stored(then, group_store_error(code), Instant::now());
                            shard.apply_effects(&handle, &mut group);
                            drop(group);
                            handle.wake();
                        });
                    }
                    Err(code) => {
                        group.on_stored(store.then, group_store_error(code), Instant::now())
                    }
                }
            }
        }
        handle.wake();
    }
}

//! One partition replica hosted by this broker: its log, its role (leader or follower) at a
//! leader epoch, and — when leading — the followers' progress, the high watermark and the ISR
//! changes it proposes to the controller.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_core::ErrorCode;
use parking_lot::{Mutex, RwLock};
use storage::{AppendInfo, Log, ReadInfo, StorageError, TopicPartition};
use tokio::sync::watch;
use tracing::{debug, info};
use uuid::Uuid;

/// The partition's replication state as last learned from the metadata image (or from an
/// accepted ISR change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy)]
pub struct FollowerProgress {
    /// The follower's log end offset (its last fetch offset), -1 if unknown.
    pub log_end_offset: i64,
    pub last_fetch_ms: i64,
    /// Last time the follower was known to have caught up to the leader's LEO.
    pub last_caught_up_ms: i64,
    /// The leader's LEO at the follower's previous fetch.
    pub leader_leo_at_last_fetch: i64,
}

#[derive(Debug)]
struct State {
    assignment: Assignment,
    /// Set while an ISR change proposed by this leader awaits the controller.
    pending_isr: Option<Vec<i32>>,
    followers: HashMap<i32, FollowerProgress>,
    min_insync_replicas: i32,
}

impl State {
    fn is_leader(&self, node_id: i32) -> bool {
        self.assignment.leader == node_id
    }

    /// The ISR the high watermark must respect: during a pending change, the union of the
    /// committed and proposed ISR (never advance past a replica that may still be in the ISR).
    fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.assignment.isr.clone();
        if let Some(pending) = &self.pending_isr {
            for r in pending {
                if !isr.contains(r) {
                    isr.push(*r);
                }
            }
        }
        isr
    }
}

/// Changes to the high watermark or role, for acks=all waiters and consumer long polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub high_watermark: i64,
    pub leader_epoch: i32,
    pub is_leader: bool,
}

/// A corrupt batch found in this replica's log on read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corruption {
    /// Base offset of the segment holding it.
    pub segment: i64,
    /// Its position in the segment file.
    pub position: u64,
    /// The first offset it should hold; everything before it is intact.
    pub offset: i64,
}

/// Why a read or append was refused, as a Kafka error code plus context for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    pub code: ErrorCode,
    pub message: String,
    /// Set when the refusal is a corrupt batch in the log (the code is KAFKA_STORAGE_ERROR).
    pub corruption: Option<Corruption>,
}

impl PartitionError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> PartitionError {
        PartitionError {
            code,
            message: message.into(),
            corruption: None,
        }
    }
}

impl From<StorageError> for PartitionError {
    fn from(e: StorageError) -> Self {
        let corruption = match &e {
            StorageError::Corrupt {
                segment,
                position,
                offset,
                ..
            } => Some(Corruption {
                segment: *segment,
                position: *position,
                offset: *offset,
            }),
            _ => None,
        };
        PartitionError {
            corruption,
            ..PartitionError::new(e.kafka_error_code(), e.to_string())
        }
    }
}

/// What a fetch asks of one partition.
#[derive(Debug, Clone, Copy)]
pub struct ReadParams {
    pub fetch_offset: i64,
    pub max_bytes: u32,
    /// -1: not checked.
    pub current_leader_epoch: i32,
    /// -1: no divergence check (fetch < v12).
    pub last_fetched_epoch: i32,
    /// Some(broker id) for follower fetches.
    pub replica_id: Option<i32>,
    pub now_ms: i64,
}

/// The result of reading one partition.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    pub records: ReadInfo,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Set when the follower's log diverges from the leader's: (epoch, end offset).
    pub diverging_epoch: Option<(i32, i64)>,
}

/// An ISR change the leader wants the controller to make.
#[derive(Debug, Clone)]
pub struct IsrProposal {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

#[derive(Debug)]
pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    node_id: i32,
    log: Arc<Log>,
    state: RwLock<State>,
    progress: watch::Sender<Progress>,
    /// The log end offset, re-announced on role changes: what a waiting follower fetch needs
    /// (new records, or a reason to answer with an error). High watermark moves do not wake it.
    log_end: watch::Sender<i64>,
    /// First offset of a corrupt batch found in the log and not repaired yet.
    corrupt_from: Mutex<Option<i64>>,
}

impl Partition {
    pub fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        node_id: i32,
        log: Arc<Log>,
        assignment: Assignment,
        min_insync_replicas: i32,
    ) -> Partition {
        let progress = Progress {
            high_watermark: log.high_watermark(),
            leader_epoch: -1,
            is_leader: false,
        };
        let log_end = log.log_end_offset();
        Partition {
            tp,
            topic_id,
            node_id,
            log,
            state: RwLock::new(State {
                assignment: Assignment {
                    leader: -1,
                    leader_epoch: -1,
                    ..assignment
                },
                pending_isr: None,
                followers: HashMap::new(),
                min_insync_replicas,
            }),
            progress: watch::channel(progress).0,
            log_end: watch::channel(log_end).0,
            corrupt_from: Mutex::new(None),
        }
    }

    /// Records a corrupt batch at `offset`. True when it is news: no repair is pending yet for
    /// this offset or an earlier one.
    pub fn note_corruption(&self, offset: i64) -> bool {
        let mut corrupt = self.corrupt_from.lock();
        if corrupt.is_some_and(|known| known <= offset) {
            return false;
        }
        *corrupt = Some(offset);
        true
    }

    /// The pending repair's offset, if any.
    pub fn corruption(&self) -> Option<i64> {
        *self.corrupt_from.lock()
    }

    /// Follower: cuts the log before the corrupt batch so it is fetched again from the leader.
    /// Returns the offset cut at, or `None` when there was nothing to repair.
    pub fn repair_as_follower(&self) -> Result<Option<i64>, StorageError> {
        if self.is_leader() {
            return Ok(None);
        }
        let Some(offset) = *self.corrupt_from.lock() else {
            return Ok(None);
        };
        self.truncate_to(offset)?;
        *self.corrupt_from.lock() = None;
        Ok(Some(offset))
    }

    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    pub fn assignment(&self) -> Assignment {
        self.state.read().assignment.clone()
    }

    pub fn is_leader(&self) -> bool {
        self.state.read().is_leader(self.node_id)
    }

    pub fn leader_epoch(&self) -> i32 {
        self.state.read().assignment.leader_epoch
    }

    /// Checks a client's `current_leader_epoch` against this replica's (see Kafka's
    /// FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
    pub fn check_leader_epoch(&self, requested: i32) -> Result<(), PartitionError> {
        check_leader_epoch(requested, self.leader_epoch())
    }

    pub fn high_watermark(&self) -> i64 {
        self.log.high_watermark()
    }

    pub fn min_insync_replicas(&self) -> i32 {
        self.state.read().min_insync_replicas
    }

    pub fn set_min_insync_replicas(&self, n: i32) {
        self.state.write().min_insync_replicas = n;
    }

    pub fn subscribe_progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Wakes on appends, truncations and role changes.
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    fn publish_progress(&self, state: &State) {
        let next = Progress {
            high_watermark: self.log.high_watermark(),
            leader_epoch: state.assignment.leader_epoch,
            is_leader: state.is_leader(self.node_id),
        };
        let mut role_changed = false;
        self.progress.send_if_modified(|p| {
            if *p != next {
                role_changed = p.leader_epoch != next.leader_epoch || p.is_leader != next.is_leader;
                *p = next;
                true
            } else {
                false
            }
        });
        if role_changed {
            self.log_end.send_modify(|_| {});
        }
    }

    /// Takes on leadership at a (newer) leader epoch: records the epoch's start offset, resets
    /// what is known of followers, and starts accepting writes.
    pub fn become_leader(&self, assignment: Assignment, now_ms: i64) -> Result<(), StorageError> {
        let mut state = self.state.write();
        let leo = self.log.log_end_offset();
        self.log
            .assign_epoch_start_offset(assignment.leader_epoch, leo)?;
        state.followers = assignment
            .replicas
            .iter()
            .filter(|r| **r != self.node_id)
            .map(|r| {
                (
                    *r,
                    FollowerProgress {
                        log_end_offset: -1,
                        last_fetch_ms: now_ms,
                        // Followers in the ISR get a full lag window to show up.
                        last_caught_up_ms: if assignment.isr.contains(r) {
                            now_ms
                        } else {
                            0
                        },
                        leader_leo_at_last_fetch: -1,
                    },
                )
            })
            .collect();
        state.pending_isr = None;
        info!(partition = %self.tp, epoch = assignment.leader_epoch, isr = ?assignment.isr, log_end = leo, "became leader");
        state.assignment = assignment;
        self.maybe_advance_high_watermark(&state);
        self.publish_progress(&state);
        Ok(())
    }

    /// Stops leading (or follows a new leader): writes are refused from now on.
    pub fn become_follower(&self, assignment: Assignment) {
        let mut state = self.state.write();
        let was_leader = state.is_leader(self.node_id);
        state.followers.clear();
        state.pending_isr = None;
        if was_leader || state.assignment.leader_epoch != assignment.leader_epoch {
            info!(partition = %self.tp, leader = assignment.leader, epoch = assignment.leader_epoch, "following");
        }
        state.assignment = assignment;
        self.publish_progress(&state);
    }

    /// Updates ISR / replicas / partition epoch without a leadership change. When this broker
    /// leads the partition and the update applies, returns the ISR size before and after it
    /// (for the ISR shrink/expand metrics: exactly one caller sees each change).
    pub fn update_assignment(&self, assignment: Assignment) -> Option<(usize, usize)> {
        let mut state = self.state.write();
        if assignment.partition_epoch < state.assignment.partition_epoch {
            return None;
        }
        if let Some(pending) = &state.pending_isr {
            if *pending == assignment.isr
                || assignment.partition_epoch > state.assignment.partition_epoch
            {
                state.pending_isr = None;
            }
        }
        for r in &assignment.replicas {
            if *r != self.node_id && state.is_leader(self.node_id) {
                state.followers.entry(*r).or_insert(FollowerProgress {
                    log_end_offset: -1,
                    last_fetch_ms: 0,
                    last_caught_up_ms: 0,
                    leader_leo_at_last_fetch: -1,
                });
            }
        }
        let leading = state
            .is_leader(self.node_id)
            .then_some((state.assignment.isr.len(), assignment.isr.len()));
        state.assignment = assignment;
        self.maybe_advance_high_watermark(&state);
        self.publish_progress(&state);
        leading
    }

    /// Leader append of one produce batch.
    pub fn append_as_leader(
        &self,
        records: Bytes,
        acks: i16,
        now_ms: i64,
    ) -> Result<AppendInfo, PartitionError> {
        let state = self.state.read();
        if !state.is_leader(self.node_id) {
            return Err(PartitionError::new(
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                format!("broker {} does not lead {}", self.node_id, self.tp),
            ));
        }
        if acks == -1 && (state.assignment.isr.len() as i32) < state.min_insync_replicas {
            return Err(PartitionError::new(
                ErrorCode::NOT_ENOUGH_REPLICAS,
                format!(
                    "ISR {:?} is smaller than min.insync.replicas {}",
                    state.assignment.isr, state.min_insync_replicas
                ),
            ));
        }
        // The state lock is held (shared) across the append so the leader epoch cannot change
        // under it: a broker that loses leadership stops writing at once.
        let info = self
            .log
            .append_as_leader(records, state.assignment.leader_epoch, now_ms)?;
        self.log_end.send_replace(self.log.log_end_offset());
        self.maybe_advance_high_watermark(&state);
        self.publish_progress(&state);
        Ok(info)
    }

    /// Runs the `flush.messages` fsync if it is due, on a blocking thread and without holding
    /// this partition's locks. An error means the records appended must not be acknowledged.
    pub async fn flush_if_due(&self) -> Result<(), PartitionError> {
        if !self.log.flush_due() {
            return Ok(());
        }
        let log = Arc::clone(&self.log);
        match tokio::task::spawn_blocking(move || log.flush()).await {
            Ok(flushed) => flushed.map_err(PartitionError::from),
            Err(e) => Err(PartitionError::new(
                ErrorCode::KAFKA_STORAGE_ERROR,
                format!("flush of {} did not finish: {e}", self.tp),
            )),
        }
    }

    /// Follower append of batches fetched from the leader, then the leader's HW (bounded by our LEO).
    pub fn append_as_follower(
        &self,
        records: Bytes,
        leader_high_watermark: i64,
    ) -> Result<Option<AppendInfo>, PartitionError> {
        let state = self.state.read();
        if state.is_leader(self.node_id) {
            return Err(PartitionError::new(
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                "this replica is the leader",
            ));
        }
        let info = if records.is_empty() {
            None
        } else {
            Some(self.log.append_as_follower(records)?)
        };
        let leo = self.log.log_end_offset();
        self.log_end.send_replace(leo);
        let hw = leader_high_watermark.min(leo);
        if hw > self.log.high_watermark() {
            self.log.set_high_watermark(hw);
        }
        self.publish_progress(&state);
        Ok(info)
    }

    /// Waits until the high watermark reaches `required_offset` (acks=all). Returns the error
    /// code the producer must see.
    pub async fn wait_for_high_watermark(
        &self,
        required_offset: i64,
        timeout: Duration,
    ) -> ErrorCode {
        let mut rx = self.progress.subscribe();
        let epoch = rx.borrow().leader_epoch;
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|p| {
                p.high_watermark >= required_offset || !p.is_leader || p.leader_epoch != epoch
            }),
        )
        .await
        // Copy the value out: the watch's read lock must not be held while `state` is locked
        // (record_follower_fetch holds `state` and then publishes progress).
        .map(|r| r.map(|p| *p));
        match waited {
            Err(_) => ErrorCode::REQUEST_TIMED_OUT,
            Ok(Err(_)) => ErrorCode::NOT_LEADER_OR_FOLLOWER,
            Ok(Ok(p)) if !p.is_leader || p.leader_epoch != epoch => {
                ErrorCode::NOT_LEADER_OR_FOLLOWER
            }
            Ok(Ok(_)) => {
                let state = self.state.read();
                if (state.assignment.isr.len() as i32) < state.min_insync_replicas {
                    ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND
                } else {
                    ErrorCode::NONE
                }
            }
        }
    }

    /// Reads for a consumer or follower fetch, with Kafka's epoch and range checks. For a
    /// follower fetch this also records its progress (which may advance the HW).
    /// A replica whose log dir went offline answers every fetch with KAFKA_STORAGE_ERROR.
    pub fn read(&self, params: &ReadParams) -> Result<PartitionRead, PartitionError> {
        if self.log.is_offline() {
            return Err(PartitionError::new(
                ErrorCode::KAFKA_STORAGE_ERROR,
                format!(
                    "the log dir of {} on broker {} is offline",
                    self.tp, self.node_id
                ),
            ));
        }
        let state = self.state.read();
        let is_leader = state.is_leader(self.node_id);
        let epoch = state.assignment.leader_epoch;
        check_leader_epoch(params.current_leader_epoch, epoch)?;
        if params.replica_id.is_some() && !is_leader {
            return Err(PartitionError::new(
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                format!("broker {} does not lead {}", self.node_id, self.tp),
            ));
        }
        if params.replica_id.is_none()
            && !is_leader
            && !state.assignment.replicas.contains(&self.node_id)
        {
            return Err(PartitionError::new(
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                "not a replica",
            ));
        }

        // KIP-320: a follower (or consumer) whose last fetched epoch ends before its fetch
        // offset here has a divergent tail; tell it where our log for that epoch ends.
        if params.last_fetched_epoch >= 0 && is_leader {
            if let Some((end_epoch, end_offset)) =
                self.log.end_offset_for_epoch(params.last_fetched_epoch)
            {
                if end_epoch != params.last_fetched_epoch || end_offset < params.fetch_offset {
                    return Ok(PartitionRead {
                        records: empty_read(&self.log),
                        high_watermark: self.log.high_watermark(),
                        last_stable_offset: self.log.high_watermark(),
                        log_start_offset: self.log.log_start_offset(),
                        diverging_epoch: Some((end_epoch, end_offset)),
                    });
                }
            }
        }

        let max_offset = match params.replica_id {
            Some(_) => i64::MAX,
            None => self.log.high_watermark(),
        };
        // The LEO from before the read, as Kafka does: appends landing while the fetch is
        // served must not keep a follower that fetched from the log end out of sync.
        let leader_leo = self.log.log_end_offset();
        let records = self
            .log
            .read(params.fetch_offset, params.max_bytes, max_offset)?;
        drop(state);

        if let Some(follower) = params.replica_id {
            self.record_follower_fetch(follower, params.fetch_offset, leader_leo, params.now_ms);
        }
        let hw = self.log.high_watermark();
        Ok(PartitionRead {
            records,
            high_watermark: hw,
            last_stable_offset: hw,
            log_start_offset: self.log.log_start_offset(),
            diverging_epoch: None,
        })
    }

    /// Leader: a follower fetched from `fetch_offset`, so its LEO is that; `leader_leo` is the
    /// leader's LEO when the fetch read the log.
    fn record_follower_fetch(
        &self,
        follower: i32,
        fetch_offset: i64,
        leader_leo: i64,
        now_ms: i64,
    ) {
        let mut state = self.state.write();
        if !state.is_leader(self.node_id) {
            return;
        }
        let Some(progress) = state.followers.get_mut(&follower) else {
            debug!(partition = %self.tp, follower, "fetch from a broker that is not a replica");
            return;
        };
        if fetch_offset >= leader_leo {
            progress.last_caught_up_ms = now_ms;
        } else if progress.leader_leo_at_last_fetch >= 0
            && fetch_offset >= progress.leader_leo_at_last_fetch
        {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.log_end_offset = fetch_offset;
        progress.last_fetch_ms = now_ms;
        progress.leader_leo_at_last_fetch = leader_leo;
        self.maybe_advance_high_watermark(&state);
        self.publish_progress(&state);
    }

    /// HW = min LEO over the (maximal) ISR; only ever moves forward on the leader.
    fn maybe_advance_high_watermark(&self, state: &State) {
        if !state.is_leader(self.node_id) {
            return;
        }
        let mut hw = self.log.log_end_offset();
        for r in state.maximal_isr() {
            if r == self.node_id {
                continue;
            }
            match state.followers.get(&r) {
                Some(p) if p.log_end_offset >= 0 => hw = hw.min(p.log_end_offset),
                _ => hw = hw.min(self.log.high_watermark()),
            }
        }
        if hw > self.log.high_watermark() {
            self.log.set_high_watermark(hw);
        }
    }

    /// Leader: the ISR change due now, if any — drop followers that have not caught up within
    /// `lag_max_ms`, add followers that have caught up to the HW. `None` while a change is pending.
    pub fn isr_change_due(
        &self,
        now_ms: i64,
        lag_max_ms: i64,
        live_brokers: &dyn Fn(i32) -> bool,
    ) -> Option<IsrProposal> {
        let state = self.state.read();
        if !state.is_leader(self.node_id) || state.pending_isr.is_some() {
            return None;
        }
        let hw = self.log.high_watermark();
        let epoch_start = self
            .log
            .epoch_entries()
            .iter()
            .rev()
            .find(|(e, _)| *e == state.assignment.leader_epoch)
            .map(|(_, o)| *o)
            .unwrap_or(0);
        let mut isr = state.assignment.isr.clone();
        let before = isr.clone();
        // A follower fetching from below the HW lost records it had acknowledged (it cut a
        // corrupt batch): it may not stay eligible for election until it has them again.
        isr.retain(|r| {
            *r == self.node_id
                || state.followers.get(r).is_some_and(|p| {
                    now_ms - p.last_caught_up_ms <= lag_max_ms
                        && (p.log_end_offset < 0 || p.log_end_offset >= hw)
                })
        });
        for (r, p) in &state.followers {
            if !isr.contains(r)
                && state.assignment.replicas.contains(r)
                && live_brokers(*r)
                && p.log_end_offset >= hw
                && p.log_end_offset >= epoch_start
                && now_ms - p.last_caught_up_ms <= lag_max_ms
            {
                isr.push(*r);
            }
        }
        if isr == before {
            return None;
        }
        // Keep replica order for readability and deterministic proposals.
        let order = &state.assignment.replicas;
        isr.sort_by_key(|r| order.iter().position(|x| x == r).unwrap_or(usize::MAX));
        Some(IsrProposal {
            topic_id: self.topic_id,
            partition: self.tp.partition,
            leader_epoch: state.assignment.leader_epoch,
            partition_epoch: state.assignment.partition_epoch,
            new_isr: isr,
        })
    }

    pub fn set_pending_isr(&self, isr: Option<Vec<i32>>) {
        let mut state = self.state.write();
        state.pending_isr = isr;
        self.maybe_advance_high_watermark(&state);
        self.publish_progress(&state);
    }

    /// Followers' progress (leader only), for the tests' inspection.
    #[cfg(test)]
    pub fn followers(&self) -> HashMap<i32, FollowerProgress> {
        self.state.read().followers.clone()
    }

    /// Truncates a follower's log (after divergence or a leader change).
    pub fn truncate_to(&self, offset: i64) -> Result<(), StorageError> {
        let state = self.state.read();
        self.log.truncate_to(offset)?;
        if self.log.high_watermark() > offset {
            self.log.set_high_watermark(offset);
        }
        self.log_end.send_replace(self.log.log_end_offset());
        self.publish_progress(&state);
        Ok(())
    }

    /// Empties a follower's log and restarts it at the leader's log start offset.
    pub fn reset_to(&self, offset: i64) -> Result<(), StorageError> {
        let state = self.state.read();
        self.log.truncate_fully_and_start_at(offset)?;
        self.log_end.send_replace(self.log.log_end_offset());
        self.publish_progress(&state);
        Ok(())
    }
}

/// Kafka's check of a request's `current_leader_epoch` (-1: not checked) against the
/// partition's: FENCED_LEADER_EPOCH when the client is behind, UNKNOWN_LEADER_EPOCH when ahead.
fn check_leader_epoch(requested: i32, current: i32) -> Result<(), PartitionError> {
    if requested < 0 || requested == current {
        Ok(())
    } else if requested < current {
        Err(PartitionError::new(
            ErrorCode::FENCED_LEADER_EPOCH,
            format!("request epoch {requested} < current {current}"),
        ))
    } else {
        Err(PartitionError::new(
            ErrorCode::UNKNOWN_LEADER_EPOCH,
            format!("request epoch {requested} > current {current}"),
        ))
    }
}

fn empty_read(log: &Log) -> ReadInfo {
    ReadInfo {
        regions: Vec::new(),
        size_bytes: 0,
        log_start_offset: log.log_start_offset(),
        log_end_offset: log.log_end_offset(),
        high_watermark: log.high_watermark(),
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;

//! The replica manager: the partitions this broker hosts, kept in step with the metadata image.
//!
//! When the image names this broker leader of a partition at a newer epoch it starts serving it;
//! when it names another leader, this broker follows (the fetcher pulls from that leader); when
//! a topic is deleted or the replica moves away, the log is deleted. It also runs the leader's
//! periodic duties: ISR shrink/expand proposals and high-watermark checkpoints. Images are
//! applied on a blocking thread: that is where logs are created, deleted and checkpointed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::RwLock;
use raft_controller::{AlterPartition, MetadataImage, PartitionState, Quorum, TopicImage};
use storage::{LogConfig, LogManager, TopicPartition};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::fetcher::FetcherManager;
use super::partition::{Assignment, Corruption, Partition};
use super::peer_client::PeerSecurity;
use super::repair::{self, RepairContext};
use crate::config::BrokerConfig;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::topic_config;

/// Told when this broker gains or loses leadership of a partition (the group coordinator
/// listens for `__consumer_offsets`).
pub trait RoleListener: Send + Sync + std::fmt::Debug {
    fn became_leader(&self, partition: &Arc<Partition>, leader_epoch: i32);
    fn became_follower(&self, partition: &Arc<Partition>, leader_epoch: i32);
    fn removed(&self, tp: &TopicPartition);
}

#[derive(Debug)]
pub struct ReplicaManager {
    node_id: i32,
    config: Arc<BrokerConfig>,
    logs: Arc<LogManager>,
    quorum: Quorum,
    metrics: Arc<Metrics>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    fetchers: FetcherManager,
    listeners: OnceLock<Vec<Arc<dyn RoleListener>>>,
    /// The last image applied, for lookups that must agree with the partitions map.
    applied: watch::Sender<Arc<MetadataImage>>,
    /// Set once the first image after start-up (caught up with the quorum) has been applied.
    ready: watch::Sender<bool>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl ReplicaManager {
    pub fn new(
        config: Arc<BrokerConfig>,
        logs: Arc<LogManager>,
        quorum: Quorum,
        metrics: Arc<Metrics>,
        peers: Arc<PeerSecurity>,
    ) -> Arc<ReplicaManager> {
        Arc::new_cyclic(|weak| ReplicaManager {
            node_id: config.node_id,
            fetchers: FetcherManager::new(
                config.clone(),
                quorum.clone(),
                weak.clone(),
                metrics.clone(),
                peers,
            ),
            config,
            logs,
            quorum,
            metrics,
            partitions: RwLock::new(HashMap::new()),
            listeners: OnceLock::new(),
            applied: watch::channel(Arc::new(MetadataImage::default())).0,
            ready: watch::channel(false).0,
        })
    }

    pub fn set_role_listeners(&self, listeners: Vec<Arc<dyn RoleListener>>) {
        if self.listeners.set(listeners).is_err() {
            warn!("role listeners set twice; keeping the first");
        }
    }

    fn listeners(&self) -> &[Arc<dyn RoleListener>] {
        self.listeners.get().map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    pub fn applied_image(&self) -> Arc<MetadataImage> {
        self.applied.borrow().clone()
    }

    /// Images as this broker applies them (partition roles already taken on).
    pub fn subscribe_applied(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.applied.subscribe()
    }

    /// Whether partition roles follow the metadata image yet (after start-up catch-up).
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Whether the replica manager has applied an image that is caught up with the quorum.
    pub fn subscribe_ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// The log config of a topic: broker defaults plus the topic's overrides.
    pub fn log_config_for(&self, topic: &TopicImage) -> LogConfig {
        topic_config::log_config(&self.config, &topic.configs)
    }

    /// Follows the metadata image until shutdown. `caught_up` turns true once this broker has
    /// applied the quorum's log up to its registration; deletions wait for that, so a broker
    /// starting with a stale image never deletes data it still needs.
    pub async fn run(
        self: Arc<Self>,
        mut images: watch::Receiver<Arc<MetadataImage>>,
        mut caught_up: watch::Receiver<bool>,
        mut shutdown: Shutdown,
    ) {
        loop {
            if *caught_up.borrow_and_update() {
                break;
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                changed = caught_up.changed() => if changed.is_err() { return },
            }
        }
        info!(
            node = self.node_id,
            "metadata caught up; taking on partition roles"
        );
        loop {
            let image = images.borrow_and_update().clone();
            // Applying an image creates and deletes log directories and writes checkpoints
            // (fsync): a blocking thread's work, not the request threads'.
            let this = Arc::clone(&self);
            if let Err(e) = tokio::task::spawn_blocking(move || this.apply_image(&image)).await {
                error!(node = self.node_id, error = %e, "applying the metadata image failed");
            }
            self.ready.send_replace(true);
            tokio::select! {
                _ = shutdown.wait() => break,
                changed = images.changed() => if changed.is_err() { break },
            }
        }
        self.fetchers.shutdown().await;
    }

    /// Brings hosted partitions in line with `image`.
    pub fn apply_image(&self, image: &Arc<MetadataImage>) {
        let now = now_ms();
        let mut wanted: HashSet<TopicPartition> = HashSet::new();
        for topic in image.topics.values() {
            let log_config = self.log_config_for(topic);
            let min_isr = topic_config::min_insync_replicas(&self.config, &topic.configs);
            for p in &topic.partitions {
                if !p.replicas.contains(&self.node_id) {
                    continue;
                }
                let tp = TopicPartition {
                    topic: topic.name.clone(),
                    partition: p.partition,
                };
                wanted.insert(tp.clone());
                let partition = match self.ensure_partition(&tp, topic, p, &log_config, min_isr) {
                    Ok(partition) => partition,
                    Err(e) => {
                        error!(partition = %tp, error = %e, "cannot open log for partition");
                        continue;
                    }
                };
                self.apply_partition_state(&partition, p, now);
            }
        }
        let removed: Vec<(TopicPartition, Arc<Partition>)> = {
            let mut partitions = self.partitions.write();
            let gone: Vec<TopicPartition> = partitions
                .keys()
                .filter(|tp| !wanted.contains(tp))
                .cloned()
                .collect();
            gone.into_iter()
                .filter_map(|tp| partitions.remove(&tp).map(|p| (tp, p)))
                .collect()
        };
        for (tp, _) in removed {
            self.fetchers.remove_partition(&tp);
            for l in self.listeners() {
                l.removed(&tp);
            }
            match self.logs.delete(&tp) {
                Ok(()) => {
                    info!(partition = %tp, "deleted replica (topic deleted or replica moved)")
                }
                Err(e) => error!(partition = %tp, error = %e, "deleting replica failed"),
            }
        }
        // Logs on disk that the image does not know (topic deleted while this broker was down).
        for log in self.logs.logs() {
            let tp = log.topic_partition().clone();
            if !wanted.contains(&tp) {
                match self.logs.delete(&tp) {
                    Ok(()) => {
                        info!(partition = %tp, "deleted stray log unknown to the metadata image")
                    }
                    Err(e) => error!(partition = %tp, error = %e, "deleting stray log failed"),
                }
            }
        }
        self.applied.send_replace(image.clone());
    }

    fn ensure_partition(
        &self,
        tp: &TopicPartition,
        topic: &TopicImage,
        state: &PartitionState,
        log_config: &LogConfig,
        min_isr: i32,
    ) -> Result<Arc<Partition>, storage::StorageError> {
        if let Some(existing) = self.partition(tp) {
            if existing.topic_id == topic.id {
                if existing.log().config() != *log_config {
                    existing.log().update_config(log_config.clone());
                }
                if existing.min_insync_replicas() != min_isr {
                    existing.set_min_insync_replicas(min_isr);
                }
                return Ok(existing);
            }
            // Same name, new topic id: the topic was deleted and re-created.
            info!(partition = %tp, "topic re-created; replacing the old replica");
            self.partitions.write().remove(tp);
            self.fetchers.remove_partition(tp);
            self.logs.delete(tp)?;
        }
        let topic_id = *topic.id.as_bytes();
        let log = match self.logs.get(tp) {
            Some(log) if log.topic_id().is_some_and(|id| id != topic_id) => {
                info!(partition = %tp, "log on disk belongs to an older topic of the same name; deleting it");
                self.logs.delete(tp)?;
                self.logs.get_or_create(tp, log_config.clone())?
            }
            Some(log) => {
                if log.config() != *log_config {
                    log.update_config(log_config.clone());
                }
                log
            }
            None => self.logs.get_or_create(tp, log_config.clone())?,
        };
        if log.topic_id().is_none() {
            log.set_topic_id(topic_id)?;
        }
        let partition = Arc::new(Partition::new(
            tp.clone(),
            topic.id,
            self.node_id,
            log,
            assignment_of(state),
            min_isr,
        ));
        self.partitions
            .write()
            .insert(tp.clone(), partition.clone());
        Ok(partition)
    }

    fn apply_partition_state(&self, partition: &Arc<Partition>, state: &PartitionState, now: i64) {
        let current = partition.assignment();
        let next = assignment_of(state);
        if state.leader == self.node_id {
            if !partition.is_leader() || state.leader_epoch > current.leader_epoch {
                self.fetchers.remove_partition(&partition.tp);
                if let Err(e) = partition.become_leader(next, now) {
                    error!(partition = %partition.tp, error = %e, "cannot become leader");
                    return;
                }
                for l in self.listeners() {
                    l.became_leader(partition, state.leader_epoch);
                }
            } else if next != current {
                if let Some((before, after)) = partition.update_assignment(next) {
                    self.metrics.isr_changed(before, after);
                }
            }
        } else {
            let leadership_changed = partition.is_leader()
                || state.leader_epoch != current.leader_epoch
                || state.leader != current.leader;
            if leadership_changed {
                partition.become_follower(next);
                if partition.corruption().is_some() {
                    // This replica resigned (or lost) leadership with a corrupt batch pending:
                    // cut it before fetching, so the batch comes back from the new leader.
                    repair::refetch(partition);
                }
                for l in self.listeners() {
                    l.became_follower(partition, state.leader_epoch);
                }
                if state.leader >= 0 {
                    self.fetchers.add_partition(
                        partition.clone(),
                        state.leader,
                        state.leader_epoch,
                    );
                } else {
                    self.fetchers.remove_partition(&partition.tp);
                }
            } else if next != current {
                partition.update_assignment(next);
            }
        }
    }

    /// Leader duties, every `interval`: propose ISR changes; checkpoint high watermarks.
    pub async fn run_maintenance(self: Arc<Self>, mut shutdown: Shutdown) {
        let lag_max = self.config.replica_lag_time_max_ms as i64;
        let isr_interval =
            Duration::from_millis((self.config.replica_lag_time_max_ms / 4).clamp(100, 5000));
        let checkpoint_interval =
            Duration::from_millis(self.config.hw_checkpoint_interval_ms.max(100));
        let mut isr_tick = tokio::time::interval(isr_interval);
        let mut checkpoint_tick = tokio::time::interval(checkpoint_interval);
        isr_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        checkpoint_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = isr_tick.tick() => self.propose_isr_changes(lag_max),
                _ = checkpoint_tick.tick() => {
                    let logs = self.logs.clone();
                    let result = tokio::task::spawn_blocking(move || logs.checkpoint_high_watermarks()).await;
                    match result {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => warn!(error = %e, "high watermark checkpoint failed"),
                        Err(e) => warn!(error = %e, "high watermark checkpoint task failed"),
                    }
                }
            }
        }
    }

    fn propose_isr_changes(self: &Arc<Self>, lag_max_ms: i64) {
        let image = self.quorum.image();
        let live = |id: i32| {
            image
                .brokers
                .get(&id)
                .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
        };
        let now = now_ms();
        let lifecycle_epoch = self.broker_epoch();
        for partition in self.partitions() {
            let Some(proposal) = partition.isr_change_due(now, lag_max_ms, &live) else {
                continue;
            };
            let current = partition.assignment();
            info!(partition = %partition.tp, from = ?current.isr, to = ?proposal.new_isr, "proposing ISR change");
            partition.set_pending_isr(Some(proposal.new_isr.clone()));
            let request = AlterPartition {
                broker_id: self.node_id,
                broker_epoch: lifecycle_epoch,
                topic_id: proposal.topic_id,
                partition: proposal.partition,
                leader_epoch: proposal.leader_epoch,
                partition_epoch: proposal.partition_epoch,
                new_isr: proposal.new_isr.clone(),
            };
            let quorum = self.quorum.clone();
            let metrics = self.metrics.clone();
            tokio::spawn(async move {
                match quorum.alter_partition(request).await {
                    Ok(Ok(state)) => {
                        if let Some((before, after)) =
                            partition.update_assignment(assignment_of(&state))
                        {
                            metrics.isr_changed(before, after);
                        }
                        partition.set_pending_isr(None);
                    }
                    Ok(Err(e)) => {
                        debug!(partition = %partition.tp, error = %e, "ISR change rejected; waiting for metadata");
                        partition.set_pending_isr(None);
                    }
                    Err(e) => {
                        warn!(partition = %partition.tp, error = %e, "ISR change could not reach the controller");
                        partition.set_pending_isr(None);
                    }
                }
            });
        }
    }

    /// A read of `partition` found a corrupt batch: count and log it, and repair the replica
    /// (see `repair`).
    pub fn report_corruption(&self, partition: &Arc<Partition>, corruption: Corruption) {
        let image = self.quorum.image();
        let eligible = |id: i32| image.is_eligible(id);
        let ctx = RepairContext {
            node_id: self.node_id,
            broker_epoch: self.broker_epoch(),
            quorum: self.quorum.clone(),
            metrics: self.metrics.clone(),
        };
        repair::report(ctx, partition, corruption, &eligible);
    }

    fn broker_epoch(&self) -> i64 {
        self.quorum
            .image()
            .brokers
            .get(&self.node_id)
            .map(|b| b.epoch)
            .unwrap_or(-1)
    }

    /// Partitions this broker leads, by topic (for metrics and shutdown).
    pub fn leader_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for p in self.partitions() {
            if p.is_leader() {
                *counts.entry(p.tp.topic.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// The largest follower lag (in records) of partitions this broker follows.
    pub fn max_follower_lag(&self) -> i64 {
        self.fetchers.max_lag()
    }

    /// Whether every partition this broker follows has caught up to its leader's high
    /// watermark as last reported (readiness).
    pub fn followers_caught_up(&self) -> bool {
        self.fetchers.all_caught_up()
    }
}

pub fn assignment_of(state: &PartitionState) -> Assignment {
    Assignment {
        leader: state.leader,
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
        replicas: state.replicas.clone(),
        isr: state.isr.clone(),
    }
}

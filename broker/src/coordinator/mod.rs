//! The group coordinator: Kafka's classic consumer group protocol and committed offsets, stored
//! in the compacted, replicated `__consumer_offsets` topic.
//!
//! [`GroupCoordinator`] wires the coordinator into the broker: it follows leadership of
//! `__consumer_offsets` partitions (as a [`RoleListener`]) to load and unload their groups,
//! locates coordinators for FindCoordinator (creating the topic on first use), expires offsets,
//! samples consumer lag, and exports group metrics. The groups themselves live in
//! [`manager::GroupManager`].

pub mod cluster;
pub mod config;
pub mod discovery;
pub mod group;
pub mod lag;
pub mod lag_sampler;
pub mod loader;
pub mod manager;
pub mod member;
pub mod offsets;
pub mod offsets_topic;
pub mod partitioner;
pub mod replies;
pub mod shard;
pub mod state;
pub mod timer;
pub mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use storage::TopicPartition;
use tracing::{info, warn};

use self::cluster::Cluster;
use self::config::CoordinatorConfig;
use self::discovery::{offsets_partitions, offsets_topic_spec, Located};
use self::lag::LagTables;
use self::lag_sampler::LatestOffsetSampler;
use self::manager::GroupManager;
use self::state::GroupState;
use crate::config::BrokerConfig;
use crate::metrics::Metrics;
use crate::replica::peer_client::PeerSecurity;
use crate::replica::{now_ms, Partition, RoleListener};
use crate::shutdown::Shutdown;

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How often the latest offsets of committed partitions are sampled for lag.
const LAG_SAMPLE_INTERVAL: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub struct GroupCoordinator {
    config: Arc<CoordinatorConfig>,
    cluster: Arc<dyn Cluster>,
    metrics: Arc<Metrics>,
    manager: Arc<GroupManager>,
    lag: LagTables,
    /// Set while a creation of `__consumer_offsets` is in flight.
    creating_offsets_topic: Arc<AtomicBool>,
    /// How this broker connects to the others' inter-broker listener.
    peers: Arc<PeerSecurity>,
}

impl GroupCoordinator {
    pub fn new(
        config: Arc<BrokerConfig>,
        cluster: Arc<dyn Cluster>,
        metrics: Arc<Metrics>,
        peers: Arc<PeerSecurity>,
    ) -> Arc<GroupCoordinator> {
        let config = Arc::new(CoordinatorConfig::from_broker(&config));
        let manager = GroupManager::new(config.clone(), metrics.clone());
        Arc::new(GroupCoordinator {
            config,
            cluster,
            metrics,
            manager,
            lag: LagTables::default(),
            creating_offsets_topic: Arc::new(AtomicBool::new(false)),
            peers,
        })
    }

    /// The groups and offsets coordinated here (what the group APIs act on).
    pub fn groups(&self) -> &Arc<GroupManager> {
        &self.manager
    }

    /// Where the coordinator of `group_id` is for a client on `listener`. When
    /// `__consumer_offsets` does not exist yet, its creation is started and the caller gets
    /// [`Located::NoOffsetsTopic`] (clients retry on COORDINATOR_NOT_AVAILABLE).
    pub fn locate(&self, group_id: &str, listener: &str) -> Located {
        let image = self.cluster.image();
        let located = discovery::locate(&image, group_id, listener);
        if located == Located::NoOffsetsTopic {
            self.create_offsets_topic(image.live_brokers().count());
        }
        located
    }

    fn create_offsets_topic(&self, live_brokers: usize) {
        if self.creating_offsets_topic.swap(true, Ordering::AcqRel) {
            return;
        }
        let spec = offsets_topic_spec(&self.config, live_brokers);
        let creation = self.cluster.create_topic(spec.clone());
        let in_flight = self.creating_offsets_topic.clone();
        tokio::spawn(async move {
            info!(
                partitions = spec.num_partitions,
                replication_factor = spec.replication_factor,
                "creating {OFFSETS_TOPIC}"
            );
            match creation.await {
                Ok(results) => {
                    for result in results {
                        match result {
                            Ok(created) => {
                                info!(topic = %created.name, partitions = created.num_partitions, replication_factor = created.replication_factor, "created {OFFSETS_TOPIC}")
                            }
                            Err(e) => warn!(error = %e, "creating {OFFSETS_TOPIC} failed"),
                        }
                    }
                }
                Err(e) => warn!(error = %e, "creating {OFFSETS_TOPIC} failed: quorum unavailable"),
            }
            in_flight.store(false, Ordering::Release);
        });
    }

    fn refresh_partition_count(&self) {
        if let Some(n) = offsets_partitions(&self.cluster.image()) {
            self.manager.set_offsets_partitions(n);
        }
    }

    /// Periodic duties until shutdown: offset retention, removal of deleted topics' offsets and
    /// consumer lag sampling. On shutdown
    /// every group is unloaded (parked requests are told NOT_COORDINATOR).
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut retention = tokio::time::interval(self.config.offsets_retention_check_interval);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retention.tick().await;
        let mut lag_tick = tokio::time::interval(LAG_SAMPLE_INTERVAL);
        lag_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sampler = LatestOffsetSampler::new(
            self.config.node_id,
            self.config.inter_broker_listener.clone(),
            self.peers.clone(),
        );
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = retention.tick() => self.manager.expire_offsets(now_ms()),
                _ = lag_tick.tick() => self.sample_lag(&mut sampler).await,
            }
        }
        self.manager.unload_all();
    }

    /// Drops offsets of deleted topics, then samples the latest offsets of the partitions
    /// groups have committed offsets for.
    async fn sample_lag(&self, sampler: &mut LatestOffsetSampler) {
        let image = self.cluster.image();
        self.manager
            .remove_deleted_partitions(|tp| image.partition(&tp.topic, tp.partition).is_some());
        let tracked = self.manager.committed_partitions();
        let latest = if tracked.is_empty() {
            Default::default()
        } else {
            sampler
                .sample(&tracked, &image, self.cluster.as_ref())
                .await
        };
        self.lag.record(&latest, &tracked, now_ms());
    }

    /// Refreshes the group gauges (called before each metrics scrape).
    pub fn refresh_metrics(&self) {
        let counts = self.manager.group_state_counts();
        for state in GroupState::ALL {
            let n = counts.get(&state).copied().unwrap_or(0);
            self.metrics
                .groups
                .with_label_values(&[state.name()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.metrics.consumer_lag.reset();
        self.metrics.consumer_lag_seconds.reset();
        let now = now_ms();
        for committed in self.manager.committed_offsets() {
            let Some(lag) = self.lag.lag(&committed.partition, committed.offset, now) else {
                continue;
            };
            let partition = committed.partition.partition.to_string();
            let labels = [
                committed.group_id.as_str(),
                committed.partition.topic.as_str(),
                partition.as_str(),
            ];
            self.metrics
                .consumer_lag
                .with_label_values(&labels)
                .set(lag.records);
            if let Some(seconds) = lag.seconds {
                self.metrics
                    .consumer_lag_seconds
                    .with_label_values(&labels)
                    .set(seconds);
            }
        }
    }
}

fn is_offsets_partition(tp: &TopicPartition) -> bool {
    tp.topic == OFFSETS_TOPIC
}

impl RoleListener for GroupCoordinator {
    fn became_leader(&self, partition: &Arc<Partition>, leader_epoch: i32) {
        if !is_offsets_partition(&partition.tp) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            warn!(partition = %partition.tp, "leadership change outside the runtime; groups not loaded");
            return;
        }
        self.refresh_partition_count();
        self.manager
            .elected(partition.tp.partition, leader_epoch, partition.clone());
    }

    fn became_follower(&self, partition: &Arc<Partition>, _leader_epoch: i32) {
        if is_offsets_partition(&partition.tp) {
            self.manager.resigned(partition.tp.partition);
        }
    }

    fn removed(&self, tp: &TopicPartition) {
        if is_offsets_partition(tp) {
            self.manager.resigned(tp.partition);
        }
    }
}

//! Replica fetchers: followers pull from partition leaders over the Kafka protocol (Fetch with
//! `replica_id` set), one connection and one task per leader broker, batching every partition
//! followed there into each request.
//!
//! Divergence after a leader change is detected the KIP-320 way: each fetch carries the epoch of
//! the follower's last batch, and the leader answers with a diverging epoch and end offset when
//! the follower's tail does not match its log; the follower truncates and fetches again.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_core::ErrorCode;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use raft_controller::Quorum;
use storage::TopicPartition;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::manager::ReplicaManager;
use super::partition::Partition;
use super::peer_client::{PeerConnection, PeerError, PeerSecurity};
use crate::config::BrokerConfig;
use crate::metrics::Metrics;

/// The Fetch version followers use (last_fetched_epoch / diverging_epoch, topic names).
const REPLICA_FETCH_VERSION: i16 = 12;

#[derive(Debug)]
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
    /// Leader's high watermark as last reported, to judge "caught up".
    leader_high_watermark: i64,
    /// Don't fetch before this instant (after an error).
    paused_until: Option<tokio::time::Instant>,
    /// The fetch offset of the request in flight. A response is applied only while the log
    /// still ends there: a log truncated meanwhile (repair of a corrupt batch) must not take
    /// data fetched from its old end, which would leave a gap.
    in_flight_offset: Option<i64>,
}

#[derive(Debug)]
struct Fetcher {
    partitions: Arc<Mutex<HashMap<TopicPartition, Followed>>>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

/// All fetchers of this broker, keyed by leader.
#[derive(Debug)]
pub struct FetcherManager {
    config: Arc<BrokerConfig>,
    quorum: Quorum,
    replicas: Weak<ReplicaManager>,
    metrics: Arc<Metrics>,
    /// How this broker connects to the others' inter-broker listener.
    peers: Arc<PeerSecurity>,
    fetchers: Mutex<HashMap<i32, Fetcher>>,
}

impl FetcherManager {
    pub fn new(
        config: Arc<BrokerConfig>,
        quorum: Quorum,
        replicas: Weak<ReplicaManager>,
        metrics: Arc<Metrics>,
        peers: Arc<PeerSecurity>,
    ) -> FetcherManager {
        FetcherManager {
            config,
            quorum,
            replicas,
            metrics,
            peers,
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Follows `partition` from `leader` (moving it off any other fetcher).
    pub fn add_partition(&self, partition: Arc<Partition>, leader: i32, leader_epoch: i32) {
        let tp = partition.tp.clone();
        let mut fetchers = self.fetchers.lock();
        for (id, f) in fetchers.iter() {
            if *id != leader {
                f.partitions.lock().remove(&tp);
            }
        }
        let fetcher = fetchers.entry(leader).or_insert_with(|| self.spawn(leader));
        fetcher.partitions.lock().insert(
            tp,
            Followed {
                partition,
                leader_epoch,
                leader_high_watermark: -1,
                paused_until: None,
                in_flight_offset: None,
            },
        );
        fetcher.wake.notify_one();
        self.reap_idle(&mut fetchers);
    }

    pub fn remove_partition(&self, tp: &TopicPartition) {
        let mut fetchers = self.fetchers.lock();
        for f in fetchers.values() {
            f.partitions.lock().remove(tp);
        }
        self.reap_idle(&mut fetchers);
    }

    fn reap_idle(&self, fetchers: &mut HashMap<i32, Fetcher>) {
        fetchers.retain(|leader, f| {
            let idle = f.partitions.lock().is_empty();
            if idle {
                debug!(leader, "stopping idle replica fetcher");
                f.task.abort();
            }
            !idle
        });
    }

    fn spawn(&self, leader: i32) -> Fetcher {
        let partitions = Arc::new(Mutex::new(HashMap::new()));
        let wake = Arc::new(Notify::new());
        let worker = FetcherTask {
            leader,
            config: self.config.clone(),
            quorum: self.quorum.clone(),
            partitions: partitions.clone(),
            wake: wake.clone(),
            replicas: self.replicas.clone(),
            metrics: self.metrics.clone(),
            peers: self.peers.clone(),
        };
        info!(leader, "starting replica fetcher");
        Fetcher {
            partitions,
            wake,
            task: tokio::spawn(worker.run()),
        }
    }

    pub async fn shutdown(&self) {
        let fetchers: Vec<Fetcher> = self.fetchers.lock().drain().map(|(_, f)| f).collect();
        for f in fetchers {
            f.task.abort();
            let _ = f.task.await;
        }
    }

    /// The largest lag, in records, of any followed partition behind its leader's HW.
    pub fn max_lag(&self) -> i64 {
        let fetchers = self.fetchers.lock();
        fetchers
            .values()
            .flat_map(|f| {
                f.partitions
                    .lock()
                    .values()
                    .map(|p| (p.leader_high_watermark - p.partition.log().log_end_offset()).max(0))
                    .collect::<Vec<_>>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Every followed partition has reached the leader's HW it last heard of.
    pub fn all_caught_up(&self) -> bool {
        let fetchers = self.fetchers.lock();
        fetchers.values().all(|f| {
            f.partitions.lock().values().all(|p| {
                p.leader_high_watermark >= 0
                    && p.partition.log().log_end_offset() >= p.leader_high_watermark
            })
        })
    }
}

struct FetcherTask {
    leader: i32,
    config: Arc<BrokerConfig>,
    quorum: Quorum,
    partitions: Arc<Mutex<HashMap<TopicPartition, Followed>>>,
    wake: Arc<Notify>,
    replicas: Weak<ReplicaManager>,
    metrics: Arc<Metrics>,
    peers: Arc<PeerSecurity>,
}

impl FetcherTask {
    async fn run(self) {
        // Shared with the blocking threads that apply responses (appends, truncations, fsyncs).
        let task = Arc::new(self);
        let backoff = task.backoff();
        let mut connection: Option<PeerConnection> = None;
        loop {
            if task.replicas.upgrade().is_none() {
                return;
            }
            let request = match task.build_request() {
                Some(r) => r,
                None => {
                    // Nothing to fetch right now (empty or all paused): wait for a change.
                    let _ = tokio::time::timeout(backoff, task.wake.notified()).await;
                    continue;
                }
            };
            if connection.is_none() {
                match task.connect().await {
                    Ok(c) => connection = Some(c),
                    Err(e) => {
                        debug!(leader = task.leader, error = %e, "cannot reach leader");
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                }
            }
            let Some(conn) = connection.as_mut() else {
                continue;
            };
            let timeout =
                Duration::from_millis(task.config.replica_fetch_wait_max_ms.max(0) as u64 + 30_000);
            match conn.request(&request, REPLICA_FETCH_VERSION, timeout).await {
                Ok(response) => {
                    let error = ErrorCode::from_code(response.error_code);
                    if error != ErrorCode::NONE {
                        warn!(
                            leader = task.leader,
                            error = %error,
                            "replica fetch failed"
                        );
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                    // Appends run here, as the leader's do on the produce path (one wake-up
                    // less per response); truncations and log resets touch and delete files,
                    // so a response that needs one is applied on a blocking thread.
                    let flush_due = if rewrites_log(&response) {
                        let applier = Arc::clone(&task);
                        match tokio::task::spawn_blocking(move || applier.process(response)).await {
                            Ok(due) => due,
                            Err(e) => {
                                warn!(leader = task.leader, error = %e, "applying a fetch response failed");
                                Vec::new()
                            }
                        }
                    } else {
                        task.process(response)
                    };
                    task.flush(flush_due).await;
                }
                Err(e) => {
                    debug!(leader = task.leader, error = %e, "replica fetch failed; reconnecting");
                    connection = None;
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    async fn connect(&self) -> Result<PeerConnection, PeerError> {
        let image = self.quorum.image();
        let listener = &self.config.inter_broker_listener_name;
        let endpoint = image
            .brokers
            .get(&self.leader)
            .and_then(|b| b.endpoints.iter().find(|e| &e.listener == listener))
            .ok_or_else(|| {
                PeerError::Protocol(format!(
                    "no {listener} endpoint known for broker {}",
                    self.leader
                ))
            })?;
        let addr = format!("{}:{}", endpoint.host, endpoint.port);
        PeerConnection::connect(
            &addr,
            format!("rivulet-replica-fetcher-{}", self.config.node_id),
            Duration::from_secs(5),
            &self.peers,
        )
        .await
    }

    fn build_request(&self) -> Option<FetchRequest> {
        let now = tokio::time::Instant::now();
        let mut by_topic: HashMap<String, Vec<FetchPartition>> = HashMap::new();
        {
            let mut partitions = self.partitions.lock();
            for (tp, f) in partitions.iter_mut() {
                // A replica whose log dir is offline takes no more writes: stop fetching it.
                if f.paused_until.is_some_and(|t| t > now) || f.partition.log().is_offline() {
                    continue;
                }
                f.paused_until = None;
                let log = f.partition.log();
                f.in_flight_offset = Some(log.log_end_offset());
                by_topic.entry(tp.topic.clone()).or_default().push(
                    FetchPartition::default()
                        .with_partition(tp.partition)
                        .with_current_leader_epoch(f.leader_epoch)
                        .with_fetch_offset(log.log_end_offset())
                        .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
                        .with_log_start_offset(log.log_start_offset())
                        .with_partition_max_bytes(self.config.replica_fetch_max_bytes),
                );
            }
        }
        if by_topic.is_empty() {
            return None;
        }
        let topics = by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(partitions)
            })
            .collect();
        Some(
            FetchRequest::default()
                .with_replica_id(BrokerId(self.config.node_id))
                .with_replica_state(
                    ReplicaState::default().with_replica_id(BrokerId(self.config.node_id)),
                )
                .with_max_wait_ms(self.config.replica_fetch_wait_max_ms)
                .with_min_bytes(self.config.replica_fetch_min_bytes)
                .with_max_bytes(self.config.replica_fetch_response_max_bytes)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(topics),
        )
    }

    /// Runs the `flush.messages` fsyncs that `process` found due (on blocking threads); a
    /// partition whose fsync failed backs off.
    async fn flush(&self, partitions: Vec<Arc<Partition>>) {
        for partition in partitions {
            if let Err(e) = partition.flush_if_due().await {
                warn!(partition = %partition.tp, error = %e.message, "follower flush failed");
                self.back_off(&partition.tp);
            }
        }
    }

    /// `replica.fetch.backoff.ms`, at least 10 ms.
    fn backoff(&self) -> Duration {
        Duration::from_millis(self.config.replica_fetch_backoff_ms.max(10))
    }

    /// Leaves `tp` out of the fetches for one backoff.
    fn back_off(&self, tp: &TopicPartition) {
        if let Some(f) = self.partitions.lock().get_mut(tp) {
            f.paused_until = Some(tokio::time::Instant::now() + self.backoff());
        }
    }

    /// Applies a fetch response: appends, truncations and log resets. Returns the partitions
    /// whose `flush.messages` fsync is now due.
    fn process(&self, response: kafka_protocol::messages::FetchResponse) -> Vec<Arc<Partition>> {
        let mut max_lag = 0i64;
        let mut flush_due = Vec::new();
        for topic in response.responses {
            let topic_name = topic.topic.0.to_string();
            for data in topic.partitions {
                let tp = TopicPartition {
                    topic: topic_name.clone(),
                    partition: data.partition_index,
                };
                let partition = {
                    let mut partitions = self.partitions.lock();
                    let Some(f) = partitions.get_mut(&tp) else {
                        continue;
                    };
                    f.leader_high_watermark = data.high_watermark;
                    let requested = f.in_flight_offset.take();
                    let log_end = f.partition.log().log_end_offset();
                    if requested != Some(log_end) {
                        debug!(partition = %tp, requested = ?requested, log_end, "log end moved while the fetch was in flight; dropping its data");
                        continue;
                    }
                    f.partition.clone()
                };
                let outcome = self.apply(&partition, &data);
                if outcome.is_ok() && partition.log().flush_due() {
                    flush_due.push(Arc::clone(&partition));
                }
                if let Err(code) = outcome {
                    self.back_off(&tp);
                    debug!(partition = %tp, leader = self.leader, error = %code, "follower fetch error; backing off");
                }
                max_lag = max_lag.max(data.high_watermark - partition.log().log_end_offset());
            }
        }
        self.metrics.replica_fetch_lag.set(max_lag.max(0));
        flush_due
    }

    /// Appends a partition's records, or truncates or resets its log as the leader's answer
    /// requires.
    fn apply(
        &self,
        partition: &Arc<Partition>,
        data: &kafka_protocol::messages::fetch_response::PartitionData,
    ) -> Result<(), ErrorCode> {
        match ErrorCode::from_code(data.error_code) {
            ErrorCode::NONE => {
                if data.diverging_epoch.epoch >= 0 {
                    let div = &data.diverging_epoch;
                    let log = partition.log();
                    let ours = log.end_offset_for_epoch(div.epoch);
                    let target = match ours {
                        Some((_, our_end)) => our_end.min(div.end_offset),
                        None => div.end_offset.min(log.log_end_offset()),
                    };
                    info!(partition = %partition.tp, epoch = div.epoch, leader_end = div.end_offset, truncate_to = target, "log diverged from the leader; truncating");
                    partition.truncate_to(target).map_err(|e| {
                        warn!(partition = %partition.tp, error = %e, "truncation failed");
                        ErrorCode::KAFKA_STORAGE_ERROR
                    })?;
                    return Ok(());
                }
                let records = data.records.clone().unwrap_or_default();
                match partition.append_as_follower(records, data.high_watermark) {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        warn!(partition = %partition.tp, error = %e.message, "follower append failed");
                        Err(e.code)
                    }
                }
            }
            ErrorCode::OFFSET_OUT_OF_RANGE => {
                let log = partition.log();
                let result = if log.log_end_offset() < data.log_start_offset {
                    info!(partition = %partition.tp, leader_log_start = data.log_start_offset, "behind the leader's log start; restarting the log there");
                    partition.reset_to(data.log_start_offset)
                } else {
                    let target = data.high_watermark.min(log.log_end_offset());
                    info!(partition = %partition.tp, truncate_to = target, "ahead of the leader; truncating to its high watermark");
                    partition.truncate_to(target)
                };
                result.map_err(|e| {
                    warn!(partition = %partition.tp, error = %e, "recovering from out-of-range fetch failed");
                    ErrorCode::KAFKA_STORAGE_ERROR
                })
            }
            code => Err(code),
        }
    }
}

/// Whether applying `response` may truncate or reset a log (a diverging epoch or an
/// out-of-range answer), which deletes and rewrites files.
fn rewrites_log(response: &kafka_protocol::messages::FetchResponse) -> bool {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| {
            p.diverging_epoch.epoch >= 0
                || ErrorCode::from_code(p.error_code) == ErrorCode::OFFSET_OUT_OF_RANGE
        })
}

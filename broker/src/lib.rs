//! The Kafka protocol server: listeners, request handlers, partition replicas and group
//! coordinator, wired together by [`Broker`].
//!
//! A produce request flows listener -> connection -> api/produce -> replica/partition ->
//! storage; the metadata quorum (raft-controller) drives which partitions this broker leads.
//!
//! The public surface is small: [`Broker`] (start, observe, shut down), [`BrokerError`],
//! [`ReplicaStatus`], [`config`] (Kafka's property names, read from files, environment and
//! flags), [`k8s`] (with the `kubernetes` feature: pod identity and the KafkaTopic operator)
//! and [`wire`] (request decoding and response encoding on their own, for the benchmarks and
//! fuzz targets). Everything else is internal.
//!
//! Inside, the modules layer downwards: `server` (network) serves a `server::Service` that
//! `api` (handlers, one table of APIs) implements; handlers reach the broker through
//! `context`; `replica` and `coordinator` sit below them, `storage` and `raft_controller`
//! below that.

mod api;
pub mod config;
mod context;
mod coordinator;
mod health;
mod http;
#[cfg(feature = "kubernetes")]
pub mod k8s;
mod log_dirs;
mod metrics;
mod parts;
mod producer_id_manager;
mod quota;
mod replica;
mod replica_selector;
mod security;
mod server;
mod shutdown;
mod topic_config;
pub mod wire;
mod zerocopy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_core::TopicPartition;
use raft_controller::{
    BrokerLifecycle, BrokerRegistrationRequest, BrokerState, Endpoint, Quorum, QuorumConfig,
};
use storage::{LogDirFailure, LogManager};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::api::Dispatcher;
use crate::config::BrokerConfig;
use crate::context::Context;
use crate::coordinator::cluster::BrokerCluster;
use crate::coordinator::GroupCoordinator;
use crate::log_dirs::LogDirs;
use crate::metrics::Metrics;
use crate::parts::Parts;
use crate::quota::ClientQuotas;
use crate::replica::peer_client::PeerSecurity;
use crate::replica::{now_ms, ReplicaManager, RoleListener};
use crate::security::{scram_bootstrap, CredentialStore, TlsIdentity};
use crate::server::listener::ClientListener;
use crate::server::{ConnectionLimits, ConnectionQuotas, ListenerAuth};
use crate::shutdown::{Shutdown, ShutdownTrigger};

/// Why the broker could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    LogDir(#[from] log_dirs::LogDirError),
    #[error("opening the logs failed: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("metadata quorum: {0}")]
    Quorum(#[from] raft_controller::QuorumError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("listener {listener}: {reason}")]
    ListenerSecurity { listener: String, reason: String },
    #[error("background task failed: {0}")]
    Task(String),
}

/// What a broker knows of one partition replica it hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub is_leader: bool,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub high_watermark: i64,
}

/// Why [`Broker::storage_failed`] completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageFailure {
    /// Every log dir was taken offline by an I/O error.
    LogDirs,
    /// The metadata log store stopped on a fatal error (the reason).
    MetadataLog(String),
}

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    parts: Arc<Parts>,
    lifecycle: BrokerLifecycle,
    trigger: ShutdownTrigger,
    /// Accept loops; each ends once its connections have drained.
    listener_tasks: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    dirs_failed: watch::Receiver<bool>,
    client_addresses: Vec<SocketAddr>,
    metrics_address: Option<SocketAddr>,
    _log_dirs: LogDirs,
}

async fn bind(address: &str) -> Result<TcpListener, BrokerError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| BrokerError::Bind {
            address: address.to_string(),
            source,
        })
}

impl Broker {
    /// Opens the logs, joins the metadata quorum, binds the listeners and starts serving.
    pub async fn start(config: BrokerConfig) -> Result<Broker, BrokerError> {
        let config = Arc::new(config);
        let node_id = config.node_id;
        info!(node = node_id, listeners = ?config.listeners.iter().map(|l| l.to_string()).collect::<Vec<_>>(), log_dirs = ?config.log_dirs, "starting broker");
        let log_dirs = LogDirs::claim(&config.log_dirs, node_id)?;
        let metrics = Arc::new(Metrics::new());

        let dirs = config.log_dirs.clone();
        let defaults = config.log_defaults.clone();
        let threads = config.recovery_threads * dirs.len().max(1);
        let logs = tokio::task::spawn_blocking(move || LogManager::open(&dirs, defaults, threads))
            .await
            .map_err(|e| BrokerError::Task(e.to_string()))??;
        let logs = Arc::new(logs);
        info!(partitions = logs.logs().len(), "logs opened");
        let dirs_failed = watch_log_dir_failures(&logs, &metrics);

        let quorum = Quorum::start(quorum_config(&config).await?).await?;

        let credentials: Arc<dyn CredentialStore> = Arc::new(quorum.clone());
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let auth = match config.listener_security.get(&l.name) {
                Some(security) => ListenerAuth::configure(&l.name, security, credentials.clone())
                    .map_err(|reason| BrokerError::ListenerSecurity {
                    listener: l.name.clone(),
                    reason,
                })?,
                None => ListenerAuth::default(),
            };
            listeners.push(ClientListener {
                name: l.name.clone(),
                socket: bind(&l.bind_address()).await?,
                auth,
            });
        }
        // Followers and offset sampling dial the inter-broker listener as this broker.
        let peers = Arc::new(PeerSecurity {
            tls: listeners
                .iter()
                .find(|l| l.name == config.inter_broker_listener_name)
                .and_then(|l| l.auth.tls.clone()),
            sasl: config.inter_broker_sasl.clone(),
        });
        let client_addresses = listeners
            .iter()
            .filter_map(|l| l.socket.local_addr().ok())
            .collect();
        let metrics_listener = match &config.metrics_listener {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let metrics_address = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());

        let replicas = ReplicaManager::new(
            config.clone(),
            logs.clone(),
            quorum.clone(),
            metrics.clone(),
            peers.clone(),
        );
        let cluster = Arc::new(BrokerCluster {
            quorum: quorum.clone(),
            replicas: replicas.clone(),
        });
        let groups = GroupCoordinator::new(config.clone(), cluster, metrics.clone(), peers);
        let role_listener: Arc<dyn RoleListener> = groups.clone();
        replicas.set_role_listeners(vec![role_listener]);
        let parts = Arc::new(Parts {
            config: config.clone(),
            quorum: quorum.clone(),
            logs: logs.clone(),
            replicas: replicas.clone(),
            groups: groups.clone(),
            metrics: metrics.clone(),
            quotas: ClientQuotas::new(
                Duration::from_secs(u64::from(config.quota_window_size_seconds)),
                config.quota_window_num,
            ),
        });

        let (trigger, shutdown) = shutdown::channel();
        let mut tasks = Vec::new();

        let registration = BrokerRegistrationRequest {
            broker_id: node_id,
            incarnation_id: Uuid::new_v4(),
            rack: config.rack.clone(),
            endpoints: config
                .advertised_listeners
                .iter()
                .map(|l| Endpoint {
                    listener: l.name.clone(),
                    host: l.host.clone(),
                    port: l.port,
                    security_protocol: "PLAINTEXT".to_string(),
                })
                .collect(),
        };
        let lifecycle = quorum.start_broker_lifecycle(registration);
        let caught_up = caught_up_signal(lifecycle.state());

        tasks.push(tokio::spawn(replicas.clone().run(
            quorum.subscribe(),
            caught_up,
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(
            replicas.clone().run_maintenance(shutdown.clone()),
        ));
        tasks.push(tokio::spawn(groups.clone().run(shutdown.clone())));
        if let Some(path) = &config.scram_bootstrap_file {
            let credentials = scram_bootstrap::load(path).map_err(BrokerError::Config)?;
            tasks.push(tokio::spawn(scram_bootstrap::run(
                quorum.clone(),
                credentials,
                shutdown.clone(),
            )));
        }
        tasks.push(tokio::spawn(log_maintenance(
            parts.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(stamp_cluster_id(
            parts.clone(),
            log_dirs_stamper(&config),
            shutdown.clone(),
        )));
        #[cfg(feature = "kubernetes")]
        if k8s::runner::enabled(&config) {
            tasks.push(tokio::spawn(k8s::runner::run(
                parts.clone(),
                shutdown.clone(),
            )));
        }

        let dispatcher = Arc::new(Dispatcher::new(Arc::new(Context::new(parts.clone()))));
        let limits = ConnectionLimits {
            max_frame_bytes: config.socket_request_max_bytes,
            idle_timeout: Duration::from_millis(config.connections_max_idle_ms.max(1000)),
            max_in_flight: config.queued_max_requests,
            drain_timeout: Duration::from_secs(5),
        };
        let listener_names: Vec<String> = listeners.iter().map(|l| l.name.clone()).collect();
        let quotas = Arc::new(ConnectionQuotas::new(
            config.connection_limits.clone(),
            &config.inter_broker_listener_name,
            &listener_names,
            std::time::Instant::now(),
        ));
        let mut listener_tasks = Vec::new();
        for listener in listeners {
            listener_tasks.push(tokio::spawn(server::listener::run(
                listener,
                dispatcher.clone(),
                limits,
                quotas.clone(),
                replicas.subscribe_ready(),
                shutdown.clone(),
            )));
        }
        if let Some(listener) = metrics_listener {
            let sources = http::HealthSources {
                parts: parts.clone(),
                lifecycle: lifecycle.state(),
                roles_applied: replicas.subscribe_ready(),
            };
            tasks.push(tokio::spawn(http::serve(
                listener,
                sources,
                shutdown.clone(),
            )));
        }
        info!(node = node_id, "broker started");
        Ok(Broker {
            parts,
            lifecycle,
            trigger,
            listener_tasks,
            tasks,
            dirs_failed,
            client_addresses,
            metrics_address,
            _log_dirs: log_dirs,
        })
    }

    /// Addresses the client listeners are bound to.
    pub fn client_addresses(&self) -> &[SocketAddr] {
        &self.client_addresses
    }

    /// Where `/metrics`, `/livez` and `/readyz` are served, if anywhere.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// The metadata quorum this broker belongs to (admin operations through the controller).
    pub fn quorum(&self) -> &Quorum {
        &self.parts.quorum
    }

    /// This broker's replica of `topic`-`partition`, if it hosts one.
    pub fn replica_status(&self, topic: &str, partition: i32) -> Option<ReplicaStatus> {
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        let p = self.parts.replicas.partition(&tp)?;
        let assignment = p.assignment();
        Some(ReplicaStatus {
            is_leader: p.is_leader(),
            leader_epoch: assignment.leader_epoch,
            isr: assignment.isr,
            high_watermark: p.high_watermark(),
        })
    }

    /// The broker's registration state in the quorum (registered, fenced), as it changes.
    pub fn lifecycle_state(&self) -> watch::Receiver<BrokerState> {
        self.lifecycle.state()
    }

    /// Completes once the broker's storage has failed: every log dir taken offline by an I/O
    /// error, or the metadata log store stopped on one (its Raft core hit a fatal error). The
    /// broker can no longer serve; as Kafka does, the caller should shut it down (controlled,
    /// so leaderships move to the other in-sync replicas) and exit with a failure.
    pub async fn storage_failed(&self) -> StorageFailure {
        let mut failed = self.dirs_failed.clone();
        tokio::select! {
            Ok(_) = failed.wait_for(|f| *f) => StorageFailure::LogDirs,
            reason = self.parts.quorum.fatal_error() => StorageFailure::MetadataLog(reason),
        }
    }

    /// Stops the broker. With `controlled`, leaderships are moved to other replicas first
    /// (Kafka's controlled shutdown), so clients fail over before this broker goes away.
    ///
    /// The steps run in order: controlled shutdown; stop accepting connections and wait
    /// (bounded) for every connection to answer the requests it accepted and close; stop the
    /// fetchers and background tasks; checkpoint and close the logs; leave the quorum. No
    /// request can append once the logs are closed.
    pub async fn shutdown(self, controlled: bool) -> Result<(), BrokerError> {
        let node = self.parts.config.node_id;
        if controlled {
            let timeout = Duration::from_millis(self.parts.config.controlled_shutdown_timeout_ms);
            info!(node, leaderships = ?health::leadership_summary(&self.parts), "controlled shutdown: moving leaderships away");
            match self.lifecycle.controlled_shutdown(timeout).await {
                Ok(()) => info!(node, "controlled shutdown: leaderships moved"),
                Err(e) => {
                    warn!(node, error = %e, "controlled shutdown incomplete; stopping anyway")
                }
            }
        }
        self.trigger.trigger();
        info!(node, "shutdown: draining client connections");
        for task in self.listener_tasks {
            if let Err(e) = tokio::time::timeout(Duration::from_secs(10), task).await {
                warn!(node, error = %e, "a listener did not stop in time");
            }
        }
        info!(
            node,
            "shutdown: connections drained; stopping fetchers and background tasks"
        );
        for task in self.tasks {
            if let Err(e) = tokio::time::timeout(Duration::from_secs(10), task).await {
                warn!(node, error = %e, "a task did not stop in time");
            }
        }
        info!(node, "shutdown: closing logs");
        let logs = self.parts.logs.clone();
        let closed = tokio::task::spawn_blocking(move || {
            logs.checkpoint_high_watermarks()?;
            logs.shutdown()
        })
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))?;
        match closed {
            Ok(()) => info!(node, "shutdown: logs closed"),
            Err(e) => error!(node, error = %e, "closing logs failed"),
        }
        self.parts.quorum.shutdown().await?;
        info!(node, "broker stopped");
        Ok(())
    }
}

async fn quorum_config(config: &BrokerConfig) -> Result<QuorumConfig, BrokerError> {
    let bind = config.controller_listener.bind_address();
    let listen_addr = tokio::net::lookup_host(&bind)
        .await
        .map_err(|source| BrokerError::Bind {
            address: bind.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| {
            BrokerError::Config(format!("controller listener {bind} does not resolve"))
        })?;
    let advertised_addr = match config.voters.get(&config.node_id) {
        Some(addr) => addr.clone(),
        None => {
            let l = config.controller_listener.advertisable();
            format!("{}:{}", l.host, l.port)
        }
    };
    let data_dir = config
        .log_dirs
        .first()
        .map(|d| d.join("__raft_metadata"))
        .ok_or_else(|| BrokerError::Config("no log dir for the metadata log".to_string()))?;
    let mut q = QuorumConfig::new(
        config.node_id,
        listen_addr,
        advertised_addr,
        config.voters.clone(),
        data_dir,
    );
    q.heartbeat_interval_ms = config.quorum_heartbeat_interval_ms;
    q.election_timeout_min_ms = config.quorum_election_timeout_ms;
    q.election_timeout_max_ms = config.quorum_election_timeout_ms * 2;
    q.broker_session_timeout_ms = config.broker_session_timeout_ms;
    q.broker_heartbeat_interval_ms = config.broker_heartbeat_interval_ms;
    q.leader_imbalance_check_interval_ms = config
        .auto_leader_rebalance
        .then_some(config.leader_imbalance_check_interval_ms);
    q.unclean_leader_election_default = config.unclean_leader_election;
    q.snapshot_after_logs = config.metadata_snapshot_records;
    if let Some(settings) = &config.controller_security.tls {
        let listener = &config.controller_listener.name;
        let identity = TlsIdentity::load(listener, settings.clone()).map_err(|e| {
            BrokerError::ListenerSecurity {
                listener: listener.clone(),
                reason: e.to_string(),
            }
        })?;
        q.tls = Some(Arc::new(identity));
    }
    q.request_timeout_ms = config.quorum_request_timeout_ms;
    q.cluster_id = config.cluster_id.clone();
    Ok(q)
}

/// Tells the metrics of each log dir that fails, and turns the returned flag on once all have.
fn watch_log_dir_failures(logs: &LogManager, metrics: &Arc<Metrics>) -> watch::Receiver<bool> {
    let (all_failed, rx) = watch::channel(false);
    let metrics = Arc::clone(metrics);
    logs.set_failure_listener(Arc::new(move |failure: &LogDirFailure| {
        metrics
            .log_dir_offline
            .with_label_values(&[&failure.path.display().to_string()])
            .set(1);
        if failure.all_failed {
            all_failed.send_replace(true);
        }
    }));
    rx
}

/// True once the broker is registered and unfenced (it has applied the metadata log up to its
/// registration), and from then on.
fn caught_up_signal(mut state: watch::Receiver<BrokerState>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            let s = state.borrow_and_update().clone();
            if s.registered && !s.fenced {
                tx.send_replace(true);
                return;
            }
            if state.changed().await.is_err() {
                return;
            }
        }
    });
    rx
}

fn log_dirs_stamper(config: &BrokerConfig) -> (Vec<std::path::PathBuf>, i32) {
    (config.log_dirs.clone(), config.node_id)
}

/// Writes the cluster id into meta.properties once the quorum knows it.
async fn stamp_cluster_id(
    parts: Arc<Parts>,
    (dirs, node_id): (Vec<std::path::PathBuf>, i32),
    mut shutdown: Shutdown,
) {
    let mut images = parts.quorum.subscribe();
    let cluster_id = tokio::select! {
        _ = shutdown.wait() => return,
        image = images.wait_for(|i| i.cluster_id.is_some()) => match image {
            Ok(i) => i.cluster_id.clone().unwrap_or_default(),
            Err(_) => return,
        },
    };
    let stamped =
        tokio::task::spawn_blocking(move || log_dirs::stamp(&dirs, node_id, &cluster_id)).await;
    match stamped {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(error = %e, "log dirs do not belong to this cluster"),
        Err(e) => error!(error = %e, "stamping log dirs failed"),
    }
}

/// Retention, time-based rolling, flushes and compaction, every log.retention.check.interval.ms.
async fn log_maintenance(parts: Arc<Parts>, mut shutdown: Shutdown) {
    let period = Duration::from_millis(parts.config.log_retention_check_interval_ms.max(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tick.tick() => {
                let logs = parts.logs.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || logs.maintain_all(now_ms())).await {
                    warn!(error = %e, "log maintenance task failed");
                }
            }
        }
    }
}

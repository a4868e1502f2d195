//! `Quorum`: the handle a broker holds on the embedded metadata quorum. Starting it opens the
//! sled store, starts Raft, the RPC server and the controller role, and joins the group (as a
//! voter or a learner). Through it a broker reads and follows the local metadata image and sends
//! controller requests from any node.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_core::acl::{AclBinding, AclFilter};
use kafka_core::quota::QuotaAlteration;
use kafka_core::scram::{ScramCredential, ScramMechanism};
use openraft::{BasicNode, RaftMetrics, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::QuorumConfig;
use crate::controller::Controller;
use crate::error::{ControllerError, QuorumError};
use crate::image::{MetadataImage, PartitionState};
use crate::lifecycle::BrokerLifecycle;
use crate::membership;
use crate::network::client::{NetworkFactory, PeerPool};
use crate::network::server::{self, RpcHandler};
use crate::requests::{
    AlterPartition, BrokerHeartbeat, BrokerRegistrationRequest, ConfigOp, ControllerRequest,
    ControllerResponse, CreateTopicSpec, CreatedTopic, ElectionType, HeartbeatReply,
    PartitionElection, ResignLeadership,
};
use crate::routing::{LeaderCall, LeaderReply, Router};
use crate::store::log::LogStore;
use crate::store::state_machine::StateMachineStore;
use crate::types::{node_id, MetaRaft, NodeId};

/// How long to keep retrying to open a sled directory still locked by a previous instance.
const OPEN_RETRY_FOR: Duration = Duration::from_secs(10);

/// A snapshot of this node's view of the quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumStatus {
    /// This node.
    pub node_id: i32,
    /// Whether this node votes.
    pub is_voter: bool,
    /// Current Raft term.
    pub term: u64,
    /// The active controller as far as this node knows.
    pub leader: Option<i32>,
    /// Highest committed log index known here.
    pub commit_index: u64,
    /// Highest log index applied to the local image.
    pub applied_index: u64,
}

/// Handle on the embedded metadata quorum. Cheap to clone.
#[derive(Clone)]
pub struct Quorum {
    inner: Arc<Inner>,
}

struct Inner {
    config: QuorumConfig,
    raft: MetaRaft,
    controller: Arc<Controller>,
    router: Arc<Router>,
    pool: Arc<PeerPool>,
    image: watch::Receiver<Arc<MetadataImage>>,
    committed: Arc<AtomicU64>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum")
            .field("node_id", &self.inner.config.node_id)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl Quorum {
    /// Starts this node's quorum member.
    pub async fn start(config: QuorumConfig) -> Result<Quorum, QuorumError> {
        config.validate()?;
        let db = open_db(&config.data_dir).await?;
        let committed = Arc::new(AtomicU64::new(0));
        let log_store = LogStore::open(&db, committed.clone())?;
        let (image_tx, image_rx) = watch::channel(Arc::new(MetadataImage::default()));
        let state_machine = StateMachineStore::open(&db, image_tx)
            .map_err(|e| QuorumError::Storage(e.to_string()))?;
        drop(db);
        let listener = TcpListener::bind(config.listen_addr).await.map_err(|e| {
            QuorumError::Io(format!("cannot listen on {}: {e}", config.listen_addr))
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| QuorumError::Io(e.to_string()))?;

        let raft_config = openraft::Config {
            cluster_name: "rivulet-metadata".to_string(),
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            install_snapshot_timeout: config.request_timeout_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_after_logs),
            max_in_snapshot_log_to_keep: config.snapshot_after_logs / 2,
            ..Default::default()
        }
        .validate()
        .map_err(|e| QuorumError::InvalidConfig(e.to_string()))?;
        let pool = Arc::new(PeerPool::new(config.voters.clone(), config.tls.clone()));
        // Pause between attempts to reach a peer that is down (openraft's default is 500ms).
        let backoff = Duration::from_millis(config.heartbeat_interval_ms.max(500));
        let network = NetworkFactory::new(node_id(config.node_id), pool.clone(), backoff);
        let raft = MetaRaft::new(
            node_id(config.node_id),
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| QuorumError::Raft(e.to_string()))?;

        let controller = Arc::new(Controller::new(
            config.clone(),
            raft.clone(),
            image_rx.clone(),
        ));
        let retry_pause = Duration::from_millis(config.heartbeat_interval_ms.clamp(10, 100));
        let router = Arc::new(Router::new(
            config.node_id,
            &config.voters,
            pool.clone(),
            controller.clone(),
            raft.clone(),
            retry_pause,
        ));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = vec![
            server::spawn(
                listener,
                RpcHandler::new(raft.clone(), controller.clone()),
                config.tls.clone(),
                shutdown_rx.clone(),
            ),
            controller.clone().spawn(shutdown_rx.clone()),
        ];
        if config.is_voter() {
            tasks.push(membership::spawn_voter_bootstrap(
                raft.clone(),
                config.clone(),
                shutdown_rx,
            ));
        } else {
            tasks.push(membership::spawn_learner_join(
                raft.clone(),
                router.clone(),
                config.clone(),
                shutdown_rx,
            ));
        }
        info!(node = config.node_id, %local_addr, voter = config.is_voter(), "metadata quorum member started");
        Ok(Quorum {
            inner: Arc::new(Inner {
                config,
                raft,
                controller,
                router,
                pool,
                image: image_rx,
                committed,
                local_addr,
                shutdown,
                tasks: parking_lot::Mutex::new(tasks),
            }),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.inner.config.node_id
    }

    /// The configuration this member runs with.
    pub fn config(&self) -> &QuorumConfig {
        &self.inner.config
    }

    /// The address the RPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The current local metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.image.borrow().clone()
    }

    /// Follows the local image: a new value after every applied batch of entries.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.image.clone()
    }

    /// openraft's metrics of this node (state, term, log positions, replication progress).
    pub fn raft_metrics(&self) -> watch::Receiver<RaftMetrics<NodeId, BasicNode>> {
        self.inner.raft.metrics()
    }

    /// Completes, with the reason, once this node's Raft core has stopped on a fatal error: a
    /// failed write or fsync of the metadata log store (a full or failing disk) or a panic. The
    /// node can then neither vote nor apply metadata; as Kafka does on a metadata log dir
    /// failure, the caller should shut the broker down. A normal stop never completes this.
    pub async fn fatal_error(&self) -> String {
        let mut metrics = self.inner.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                if !matches!(fatal, openraft::error::Fatal::Stopped) {
                    return fatal.to_string();
                }
            }
            if metrics.changed().await.is_err() {
                // The core is gone without a fatal error on record: it was stopped.
                std::future::pending::<()>().await;
            }
        }
    }

    /// This node's view of the quorum.
    pub fn status(&self) -> QuorumStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let me = node_id(self.inner.config.node_id);
        let membership = m.membership_config.membership();
        let is_voter = if membership.nodes().next().is_some() {
            membership.voter_ids().any(|id| id == me)
        } else {
            self.inner.config.is_voter()
        };
        QuorumStatus {
            node_id: self.inner.config.node_id,
            is_voter,
            term: m.current_term,
            leader: self.inner.controller.known_leader(),
            commit_index: self.inner.committed.load(Ordering::Relaxed),
            applied_index: self.inner.image.borrow().offset,
        }
    }

    /// Whether this node is the active controller (Raft leader with a live quorum).
    pub fn is_controller(&self) -> bool {
        self.inner.controller.is_active()
    }

    /// Waits until some node is known to be the active controller; returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<i32, QuorumError> {
        let mut metrics = self.inner.raft.metrics();
        let wait = async {
            loop {
                if let Some(leader) = self.inner.controller.known_leader() {
                    return Ok(leader);
                }
                tokio::select! {
                    changed = metrics.changed() => if changed.is_err() { return Err(QuorumError::Shutdown) },
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| QuorumError::Timeout)?
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.config.request_timeout_ms)
    }

    pub(crate) async fn call(
        &self,
        request: ControllerRequest,
        timeout: Duration,
    ) -> Result<ControllerResponse, QuorumError> {
        if *self.inner.shutdown.borrow() {
            return Err(QuorumError::Shutdown);
        }
        match self
            .inner
            .router
            .call(&LeaderCall::Controller(request), timeout)
            .await?
        {
            LeaderReply::Controller(response) => Ok(response),
            LeaderReply::LearnerAdded => Err(mismatch()),
        }
    }

    /// Registers a broker; the answer is its broker epoch.
    pub async fn register_broker(
        &self,
        req: BrokerRegistrationRequest,
    ) -> Result<Result<i64, ControllerError>, QuorumError> {
        self.register_broker_within(req, self.request_timeout())
            .await
    }

    pub(crate) async fn register_broker_within(
        &self,
        req: BrokerRegistrationRequest,
        timeout: Duration,
    ) -> Result<Result<i64, ControllerError>, QuorumError> {
        match self
            .call(ControllerRequest::RegisterBroker(req), timeout)
            .await?
        {
            ControllerResponse::RegisterBroker(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Sends a broker heartbeat.
    pub async fn broker_heartbeat(
        &self,
        hb: BrokerHeartbeat,
    ) -> Result<Result<HeartbeatReply, ControllerError>, QuorumError> {
        self.broker_heartbeat_within(hb, self.request_timeout())
            .await
    }

    pub(crate) async fn broker_heartbeat_within(
        &self,
        hb: BrokerHeartbeat,
        timeout: Duration,
    ) -> Result<Result<HeartbeatReply, ControllerError>, QuorumError> {
        match self
            .call(ControllerRequest::BrokerHeartbeat(hb), timeout)
            .await?
        {
            ControllerResponse::BrokerHeartbeat(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Creates topics (or, with `validate_only`, checks that they could be created).
    pub async fn create_topics(
        &self,
        specs: Vec<CreateTopicSpec>,
        validate_only: bool,
    ) -> Result<Vec<Result<CreatedTopic, ControllerError>>, QuorumError> {
        match self
            .call(
                ControllerRequest::CreateTopics {
                    specs,
                    validate_only,
                },
                self.request_timeout(),
            )
            .await?
        {
            ControllerResponse::CreateTopics(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Deletes topics by name; answers carry the deleted topic ids.
    pub async fn delete_topics(
        &self,
        names: Vec<String>,
    ) -> Result<Vec<Result<Uuid, ControllerError>>, QuorumError> {
        match self
            .call(
                ControllerRequest::DeleteTopics { names },
                self.request_timeout(),
            )
            .await?
        {
            ControllerResponse::DeleteTopics(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Raises a topic's partition count to `new_total`.
    pub async fn create_partitions(
        &self,
        topic: String,
        new_total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Result<(), ControllerError>, QuorumError> {
        let request = ControllerRequest::CreatePartitions {
            topic,
            new_total,
            assignments,
            validate_only,
        };
        match self.call(request, self.request_timeout()).await? {
            ControllerResponse::CreatePartitions(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Changes topic configs.
    pub async fn alter_topic_configs(
        &self,
        topic: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> Result<Result<(), ControllerError>, QuorumError> {
        let request = ControllerRequest::AlterTopicConfigs {
            topic,
            ops,
            validate_only,
        };
        match self.call(request, self.request_timeout()).await? {
            ControllerResponse::AlterTopicConfigs(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Proposes an ISR change (from the partition leader).
    pub async fn alter_partition(
        &self,
        req: AlterPartition,
    ) -> Result<Result<PartitionState, ControllerError>, QuorumError> {
        match self
            .call(
                ControllerRequest::AlterPartition(req),
                self.request_timeout(),
            )
            .await?
        {
            ControllerResponse::AlterPartition(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Hands leadership of a partition led here to another ISR member (the local copy is
    /// damaged); the answer is the partition's new state.
    pub async fn resign_leadership(
        &self,
        req: ResignLeadership,
    ) -> Result<Result<PartitionState, ControllerError>, QuorumError> {
        match self
            .call(
                ControllerRequest::ResignLeadership(req),
                self.request_timeout(),
            )
            .await?
        {
            ControllerResponse::ResignLeadership(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Elects leaders for the given partitions (all partitions when `None`).
    pub async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<PartitionElection>, QuorumError> {
        match self
            .call(
                ControllerRequest::ElectLeaders { kind, partitions },
                self.request_timeout(),
            )
            .await?
        {
            ControllerResponse::ElectLeaders(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Creates ACL bindings; one result per binding.
    pub async fn create_acls(
        &self,
        acls: Vec<AclBinding>,
    ) -> Result<Vec<Result<(), ControllerError>>, QuorumError> {
        match self
            .call(
                ControllerRequest::CreateAcls { acls },
                self.request_timeout(),
            )
            .await?
        {
            ControllerResponse::CreateAcls(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Deletes the bindings each filter matches; the deleted bindings per filter.
    pub async fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<Vec<AclBinding>>, QuorumError> {
        match self
            .call(
                ControllerRequest::DeleteAcls { filters },
                self.request_timeout(),
            )
            .await?
        {
            ControllerResponse::DeleteAcls(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Sets and removes SCRAM credentials; the users left unchanged because a deletion of
    /// theirs found nothing.
    pub async fn alter_scram_credentials(
        &self,
        upsertions: Vec<(String, ScramMechanism, ScramCredential)>,
        deletions: Vec<(String, ScramMechanism)>,
    ) -> Result<Vec<String>, QuorumError> {
        let request = ControllerRequest::AlterScramCredentials {
            upsertions,
            deletions,
        };
        match self.call(request, self.request_timeout()).await? {
            ControllerResponse::AlterScramCredentials(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Sets (`Some`) and removes (`None`) client quotas, by entity.
    pub async fn alter_client_quotas(
        &self,
        entries: Vec<QuotaAlteration>,
    ) -> Result<(), QuorumError> {
        let request = ControllerRequest::AlterClientQuotas { entries };
        match self.call(request, self.request_timeout()).await? {
            ControllerResponse::AlterClientQuotas => Ok(()),
            _ => Err(mismatch()),
        }
    }

    /// Allocates a block of producer ids: `(first, count)`.
    pub async fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<Result<(i64, i32), ControllerError>, QuorumError> {
        let request = ControllerRequest::AllocateProducerIds {
            broker_id,
            broker_epoch,
        };
        match self.call(request, self.request_timeout()).await? {
            ControllerResponse::AllocateProducerIds(r) => Ok(r),
            _ => Err(mismatch()),
        }
    }

    /// Starts the broker side of the controller protocol for `registration`.
    pub fn start_broker_lifecycle(
        &self,
        registration: BrokerRegistrationRequest,
    ) -> BrokerLifecycle {
        BrokerLifecycle::start(self.clone(), registration)
    }

    /// Turns true when the quorum member shuts down.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Stops this member: Raft, the RPC server, the controller role and all connections.
    pub async fn shutdown(&self) -> Result<(), QuorumError> {
        if self.inner.shutdown.send_replace(true) {
            return Ok(());
        }
        let result = self
            .inner
            .raft
            .shutdown()
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()));
        let tasks: Vec<JoinHandle<()>> = self.inner.tasks.lock().drain(..).collect();
        for task in tasks {
            task.abort();
            // A task ends by itself or by the abort; either way it is gone.
            let _ = task.await;
        }
        self.inner.pool.close_all().await;
        info!(
            node = self.inner.config.node_id,
            "metadata quorum member stopped"
        );
        result
    }
}

fn mismatch() -> QuorumError {
    QuorumError::Raft("controller answered with a reply of another kind".into())
}

/// Opens the sled database, waiting for a previous instance in this process to release it.
async fn open_db(dir: &Path) -> Result<sled::Db, QuorumError> {
    let deadline = tokio::time::Instant::now() + OPEN_RETRY_FOR;
    loop {
        let path = dir.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || {
            sled::Config::new()
                .path(path)
                .cache_capacity(64 * 1024 * 1024)
                .open()
        })
        .await
        .map_err(|e| QuorumError::Storage(e.to_string()))?;
        match opened {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if tokio::time::Instant::now() < deadline => {
                warn!(dir = %dir.display(), error = %e, "cannot open the metadata store yet, retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(QuorumError::Storage(format!(
                    "cannot open {}: {e}",
                    dir.display()
                )))
            }
        }
    }
}

//! The controller role, active on the Raft leader only: it turns requests into validated
//! commands (choosing ids and replica placement), tracks broker sessions and fences brokers
//! whose heartbeats stop, and runs periodic preferred leader election. The modules below hold
//! the deterministic transitions those commands make when applied.

pub(crate) mod brokers;
pub(crate) mod cluster_id;
pub(crate) mod election;
pub(crate) mod fencing;
pub(crate) mod isr;
pub(crate) mod leadership;
pub(crate) mod placement;
pub(crate) mod resign;
pub(crate) mod sessions;
pub(crate) mod topic_config;
pub(crate) mod topics;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_core::acl::{AclBinding, AclFilter};
use kafka_core::quota::QuotaAlteration;
use kafka_core::scram::{ScramCredential, ScramMechanism};
use openraft::error::{ClientWriteError, Fatal, RaftError};
use openraft::BasicNode;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::commands::{Applied, Command, CommandResponse, MetadataOp};
use crate::config::QuorumConfig;
use crate::error::{ControllerError, QuorumError};
use crate::image::{MetadataImage, UNCLEAN_LEADER_ELECTION_CONFIG};
use crate::requests::{
    AlterPartition, BrokerHeartbeat, BrokerRegistrationRequest, ConfigOp, ControllerRequest,
    ControllerResponse, CreateTopicSpec, CreatedTopic, ElectionType, PartitionElection,
    ResignLeadership,
};
use crate::types::{broker_id, node_id, MetaRaft, NodeId};
use leadership::{Leadership, RoleChange};
use sessions::SessionTracker;

/// The controller of this node (acting only while this node leads).
pub(crate) struct Controller {
    config: QuorumConfig,
    node_id: NodeId,
    raft: MetaRaft,
    image: watch::Receiver<Arc<MetadataImage>>,
    sessions: parking_lot::Mutex<SessionTracker>,
    leadership: parking_lot::Mutex<Leadership>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Work the active controller repeats on its tick.
struct Duties {
    /// Cluster id / cluster-wide defaults still to be written in this term.
    init_pending: bool,
    last_imbalance_check: Instant,
}

impl Controller {
    pub(crate) fn new(
        config: QuorumConfig,
        raft: MetaRaft,
        image: watch::Receiver<Arc<MetadataImage>>,
    ) -> Self {
        let lease = Duration::from_millis(config.election_timeout_max_ms);
        Controller {
            node_id: node_id(config.node_id),
            leadership: parking_lot::Mutex::new(Leadership::new(node_id(config.node_id), lease)),
            sessions: parking_lot::Mutex::new(SessionTracker::new(Instant::now().into_std())),
            config,
            raft,
            image,
        }
    }

    pub(crate) fn request_timeout_ms(&self) -> u64 {
        self.config.request_timeout_ms
    }

    fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.config.broker_session_timeout_ms)
    }

    /// This node is the Raft leader with a live quorum.
    pub(crate) fn is_active(&self) -> bool {
        self.leadership.lock().is_active(Instant::now())
    }

    /// The leader as far as this node knows; itself only while it is an active controller.
    pub(crate) fn known_leader(&self) -> Option<i32> {
        let leader = self.raft.metrics().borrow().current_leader;
        match leader {
            Some(id) if id == self.node_id => self.is_active().then_some(id),
            other => other,
        }
        .and_then(broker_id)
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// Writes `op` through Raft and returns its apply result.
    async fn propose(&self, op: MetadataOp) -> Result<CommandResponse, QuorumError> {
        match self.raft.client_write(Command::new(op)).await {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(QuorumError::NotLeader {
                    leader: f.leader_id.and_then(broker_id),
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(QuorumError::Raft(e.to_string()))
            }
            Err(RaftError::Fatal(Fatal::Stopped)) => Err(QuorumError::Shutdown),
            Err(RaftError::Fatal(e)) => Err(QuorumError::Raft(e.to_string())),
        }
    }

    /// Serves a controller request if this node is the active controller.
    pub(crate) async fn handle(
        &self,
        request: ControllerRequest,
        timeout: Duration,
    ) -> Result<ControllerResponse, QuorumError> {
        if !self.is_active() {
            return Err(QuorumError::NotLeader {
                leader: self.known_leader(),
            });
        }
        let kind = request.kind();
        let result = tokio::time::timeout(timeout, self.process(request))
            .await
            .map_err(|_| QuorumError::Timeout)?;
        if let Err(error) = &result {
            debug!(request = kind, %error, "controller request failed");
        }
        result
    }

    async fn process(&self, request: ControllerRequest) -> Result<ControllerResponse, QuorumError> {
        Ok(match request {
            ControllerRequest::RegisterBroker(r) => {
                ControllerResponse::RegisterBroker(self.register(r).await?)
            }
            ControllerRequest::BrokerHeartbeat(hb) => {
                ControllerResponse::BrokerHeartbeat(self.heartbeat(hb).await?)
            }
            ControllerRequest::CreateTopics {
                specs,
                validate_only,
            } => ControllerResponse::CreateTopics(self.create_topics(specs, validate_only).await?),
            ControllerRequest::DeleteTopics { names } => {
                ControllerResponse::DeleteTopics(self.delete_topics(names).await?)
            }
            ControllerRequest::CreatePartitions {
                topic,
                new_total,
                assignments,
                validate_only,
            } => ControllerResponse::CreatePartitions(
                self.create_partitions(&topic, new_total, assignments.as_deref(), validate_only)
                    .await?,
            ),
            ControllerRequest::AlterTopicConfigs {
                topic,
                ops,
                validate_only,
            } => ControllerResponse::AlterTopicConfigs(
                self.alter_configs(&topic, ops, validate_only).await?,
            ),
            ControllerRequest::AlterPartition(req) => {
                ControllerResponse::AlterPartition(self.alter_partition(req).await?)
            }
            ControllerRequest::ResignLeadership(req) => {
                ControllerResponse::ResignLeadership(self.resign_leadership(req).await?)
            }
            ControllerRequest::ElectLeaders { kind, partitions } => {
                ControllerResponse::ElectLeaders(self.elect_leaders(kind, partitions).await?)
            }
            ControllerRequest::AllocateProducerIds {
                broker_id,
                broker_epoch,
            } => ControllerResponse::AllocateProducerIds(
                self.allocate_producer_ids(broker_id, broker_epoch).await?,
            ),
            ControllerRequest::CreateAcls { acls } => {
                ControllerResponse::CreateAcls(self.create_acls(acls).await?)
            }
            ControllerRequest::DeleteAcls { filters } => {
                ControllerResponse::DeleteAcls(self.delete_acls(filters).await?)
            }
            ControllerRequest::AlterScramCredentials {
                upsertions,
                deletions,
            } => ControllerResponse::AlterScramCredentials(
                self.alter_scram_credentials(upsertions, deletions).await?,
            ),
            ControllerRequest::AlterClientQuotas { entries } => {
                self.alter_client_quotas(entries).await?;
                ControllerResponse::AlterClientQuotas
            }
        })
    }

    async fn register(
        &self,
        r: BrokerRegistrationRequest,
    ) -> Result<Result<i64, ControllerError>, QuorumError> {
        if r.broker_id < 0 {
            return Ok(Err(ControllerError::InvalidRequest(format!(
                "invalid broker id {}",
                r.broker_id
            ))));
        }
        let image = self.image();
        if let Some(existing) = image.broker(r.broker_id) {
            let alive = self.sessions.lock().is_alive(
                r.broker_id,
                Instant::now().into_std(),
                self.session_timeout(),
            );
            if existing.incarnation_id != r.incarnation_id && !existing.fenced && alive {
                info!(broker = r.broker_id, incarnation = %r.incarnation_id, "registration refused: another incarnation is alive");
                return Ok(Err(ControllerError::DuplicateBrokerRegistration(
                    r.broker_id,
                )));
            }
        }
        let id = r.broker_id;
        let op = MetadataOp::RegisterBroker {
            broker_id: r.broker_id,
            incarnation_id: r.incarnation_id,
            rack: r.rack,
            endpoints: r.endpoints,
        };
        Ok(match self.propose(op).await? {
            Ok(Applied::BrokerEpoch(epoch)) => {
                self.sessions.lock().touch(id, Instant::now().into_std());
                Ok(epoch)
            }
            Ok(other) => return Err(unexpected(other)),
            Err(e) => Err(e),
        })
    }

    async fn heartbeat(
        &self,
        hb: BrokerHeartbeat,
    ) -> Result<Result<crate::requests::HeartbeatReply, ControllerError>, QuorumError> {
        let action = match brokers::heartbeat_action(&self.image(), &hb) {
            Ok(action) => action,
            Err(e) => return Ok(Err(e)),
        };
        self.sessions
            .lock()
            .touch(hb.broker_id, Instant::now().into_std());
        if let Some(op) = action {
            if let Err(e) = self.propose(op).await? {
                return Ok(Err(e));
            }
        }
        Ok(brokers::heartbeat_reply(&self.image(), &hb))
    }

    async fn create_topics(
        &self,
        specs: Vec<CreateTopicSpec>,
        validate_only: bool,
    ) -> Result<Vec<Result<CreatedTopic, ControllerError>>, QuorumError> {
        let image = self.image();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for spec in &specs {
            *counts.entry(spec.name.as_str()).or_default() += 1;
        }
        let results = join_all(specs.iter().map(|spec| {
            let duplicate = counts.get(spec.name.as_str()).copied().unwrap_or(0) > 1;
            self.create_topic(&image, spec, duplicate, validate_only)
        }))
        .await;
        results.into_iter().collect()
    }

    async fn create_topic(
        &self,
        image: &MetadataImage,
        spec: &CreateTopicSpec,
        duplicate: bool,
        validate_only: bool,
    ) -> Result<Result<CreatedTopic, ControllerError>, QuorumError> {
        if duplicate {
            return Ok(Err(ControllerError::InvalidRequest(format!(
                "Duplicate topic name {} in the request",
                spec.name
            ))));
        }
        let plan = match topics::plan_create(
            image,
            spec,
            self.config.default_num_partitions,
            self.config.default_replication_factor,
        ) {
            Ok(plan) => plan,
            Err(e) => return Ok(Err(e)),
        };
        if validate_only {
            return Ok(Ok(CreatedTopic {
                name: spec.name.clone(),
                id: Uuid::nil(),
                num_partitions: i32::try_from(plan.assignments.len()).unwrap_or(i32::MAX),
                replication_factor: plan.replication_factor,
            }));
        }
        let op = MetadataOp::CreateTopic {
            name: spec.name.clone(),
            topic_id: Uuid::new_v4(),
            configs: spec.configs.clone(),
            assignments: plan.assignments,
        };
        Ok(match self.propose(op).await? {
            Ok(Applied::Topic(created)) => Ok(created),
            Ok(other) => return Err(unexpected(other)),
            Err(e) => Err(e),
        })
    }

    async fn delete_topics(
        &self,
        names: Vec<String>,
    ) -> Result<Vec<Result<Uuid, ControllerError>>, QuorumError> {
        let image = self.image();
        let image = &image;
        let results = join_all(names.iter().map(|name| async move {
            let Some(topic) = image.topic(name) else {
                return Ok(Err(ControllerError::UnknownTopicOrPartition(format!(
                    "Topic '{name}' does not exist."
                ))));
            };
            let op = MetadataOp::DeleteTopic {
                name: name.clone(),
                topic_id: topic.id,
            };
            Ok(match self.propose(op).await? {
                Ok(Applied::TopicDeleted(id)) => Ok(id),
                Ok(other) => return Err(unexpected(other)),
                Err(e) => Err(e),
            })
        }))
        .await;
        results.into_iter().collect()
    }

    async fn create_partitions(
        &self,
        topic: &str,
        new_total: i32,
        assignments: Option<&[Vec<i32>]>,
        validate_only: bool,
    ) -> Result<Result<(), ControllerError>, QuorumError> {
        let (topic_id, assignments) =
            match topics::plan_create_partitions(&self.image(), topic, new_total, assignments) {
                Ok(plan) => plan,
                Err(e) => return Ok(Err(e)),
            };
        if validate_only {
            return Ok(Ok(()));
        }
        let op = MetadataOp::CreatePartitions {
            topic_id,
            assignments,
        };
        Ok(self.propose(op).await?.map(|_| ()))
    }

    async fn alter_configs(
        &self,
        topic: &str,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> Result<Result<(), ControllerError>, QuorumError> {
        let topic_id = match topics::check_alter_configs(&self.image(), topic, &ops) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        if validate_only {
            return Ok(Ok(()));
        }
        Ok(self
            .propose(MetadataOp::AlterTopicConfigs { topic_id, ops })
            .await?
            .map(|_| ()))
    }

    async fn alter_partition(
        &self,
        req: AlterPartition,
    ) -> Result<Result<crate::image::PartitionState, ControllerError>, QuorumError> {
        Ok(match self.propose(MetadataOp::AlterPartition(req)).await? {
            Ok(Applied::Partition(p)) => Ok(p),
            Ok(other) => return Err(unexpected(other)),
            Err(e) => Err(e),
        })
    }

    async fn resign_leadership(
        &self,
        req: ResignLeadership,
    ) -> Result<Result<crate::image::PartitionState, ControllerError>, QuorumError> {
        Ok(
            match self.propose(MetadataOp::ResignLeadership(req)).await? {
                Ok(Applied::Partition(p)) => Ok(p),
                Ok(other) => return Err(unexpected(other)),
                Err(e) => Err(e),
            },
        )
    }

    async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<PartitionElection>, QuorumError> {
        let all = partitions.is_none();
        let partitions = partitions.unwrap_or_else(|| {
            self.image()
                .topics
                .values()
                .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
                .collect()
        });
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let results = match self
            .propose(MetadataOp::ElectLeaders { kind, partitions })
            .await?
        {
            Ok(Applied::Elections(results)) => results,
            Ok(other) => return Err(unexpected(other)),
            Err(e) => return Err(QuorumError::Raft(format!("election rejected: {e}"))),
        };
        Ok(results
            .into_iter()
            .filter(|r| !(all && r.result == Err(ControllerError::ElectionNotNeeded)))
            .collect())
    }

    async fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<Result<(i64, i32), ControllerError>, QuorumError> {
        Ok(
            match self
                .propose(MetadataOp::AllocateProducerIds {
                    broker_id,
                    broker_epoch,
                })
                .await?
            {
                Ok(Applied::ProducerIds { first, count }) => Ok((first, count)),
                Ok(other) => return Err(unexpected(other)),
                Err(e) => Err(e),
            },
        )
    }

    /// Creates the valid bindings in one entry; each gets its own result.
    async fn create_acls(
        &self,
        acls: Vec<AclBinding>,
    ) -> Result<Vec<Result<(), ControllerError>>, QuorumError> {
        let results: Vec<Result<(), ControllerError>> = acls
            .iter()
            .map(|b| b.validate().map_err(ControllerError::InvalidRequest))
            .collect();
        let valid: Vec<AclBinding> = acls
            .into_iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(b, _)| b)
            .collect();
        if !valid.is_empty() {
            if let Err(e) = self.propose(MetadataOp::CreateAcls { acls: valid }).await? {
                return Ok(results.into_iter().map(|_| Err(e.clone())).collect());
            }
        }
        Ok(results)
    }

    async fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<Vec<AclBinding>>, QuorumError> {
        match self.propose(MetadataOp::DeleteAcls { filters }).await? {
            Ok(Applied::AclsDeleted(deleted)) => Ok(deleted),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(QuorumError::Raft(format!("DeleteAcls rejected: {e}"))),
        }
    }

    async fn alter_scram_credentials(
        &self,
        upsertions: Vec<(String, ScramMechanism, ScramCredential)>,
        deletions: Vec<(String, ScramMechanism)>,
    ) -> Result<Vec<String>, QuorumError> {
        let op = MetadataOp::AlterScramCredentials {
            upsertions,
            deletions,
        };
        match self.propose(op).await? {
            Ok(Applied::ScramMissing(missing)) => Ok(missing),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(QuorumError::Raft(format!(
                "AlterScramCredentials rejected: {e}"
            ))),
        }
    }

    async fn alter_client_quotas(&self, entries: Vec<QuotaAlteration>) -> Result<(), QuorumError> {
        match self
            .propose(MetadataOp::AlterClientQuotas { entries })
            .await?
        {
            Ok(Applied::Nothing) => Ok(()),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(QuorumError::Raft(format!(
                "AlterClientQuotas rejected: {e}"
            ))),
        }
    }

    /// Adds a non-voter broker as a learner (idempotent).
    pub(crate) async fn add_learner(&self, learner: i32, addr: String) -> Result<(), QuorumError> {
        if !self.is_active() {
            return Err(QuorumError::NotLeader {
                leader: self.known_leader(),
            });
        }
        if learner < 0 {
            return Err(QuorumError::InvalidConfig(format!(
                "invalid node id {learner}"
            )));
        }
        if self.config.voters.contains_key(&learner) {
            return Err(QuorumError::InvalidConfig(format!(
                "node {learner} is a voter, not a learner"
            )));
        }
        let id = node_id(learner);
        let known = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .is_some_and(|n| n.addr == addr);
        if known {
            return Ok(());
        }
        match self
            .raft
            .add_learner(id, BasicNode::new(addr.clone()), false)
            .await
        {
            Ok(_) => {
                info!(learner, addr = %addr, "learner added to the metadata quorum");
                Ok(())
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(QuorumError::NotLeader {
                    leader: f.leader_id.and_then(broker_id),
                })
            }
            Err(RaftError::APIError(e)) => Err(QuorumError::Raft(e.to_string())),
            Err(RaftError::Fatal(Fatal::Stopped)) => Err(QuorumError::Shutdown),
            Err(RaftError::Fatal(e)) => Err(QuorumError::Raft(e.to_string())),
        }
    }

    /// Runs the controller role loop until `shutdown`: follows leadership, and while active
    /// writes cluster defaults, fences expired brokers and rebalances leaders.
    pub(crate) fn spawn(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut metrics = self.raft.metrics();
            let tick_ms = (self.config.broker_session_timeout_ms / 10).clamp(20, 250);
            let mut ticker = tokio::time::interval(Duration::from_millis(tick_ms));
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut duties = Duties {
                init_pending: false,
                last_imbalance_check: Instant::now(),
            };
            let mut known_leader = None;
            loop {
                tokio::select! {
                    () = crate::signal::stopped(&mut shutdown) => break,
                    changed = metrics.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let m = metrics.borrow_and_update().clone();
                        if m.current_leader != known_leader {
                            info!(node = self.config.node_id, term = m.current_term, old_leader = ?known_leader,
                                  leader = ?m.current_leader, "metadata quorum leader changed");
                            known_leader = m.current_leader;
                        }
                        let change = self.leadership.lock().observe(&m, Instant::now());
                        if self.on_role_change(change, &mut duties) {
                            // A new controller writes the cluster defaults right away.
                            self.run_duties(&mut duties).await;
                        }
                    }
                    _ = ticker.tick() => {
                        let change = self.leadership.lock().update(Instant::now());
                        self.on_role_change(change, &mut duties);
                        if self.is_active() {
                            self.run_duties(&mut duties).await;
                        }
                    }
                }
            }
        })
    }

    /// Logs a role change and resets the controller's state on gaining the role; returns
    /// whether the role was gained.
    fn on_role_change(&self, change: Option<RoleChange>, duties: &mut Duties) -> bool {
        match change {
            Some(RoleChange::Gained { term }) => {
                let now = Instant::now();
                self.sessions.lock().reset(now.into_std());
                duties.init_pending = true;
                duties.last_imbalance_check = now;
                info!(
                    node = self.config.node_id,
                    term, "became the active controller"
                );
                return true;
            }
            Some(RoleChange::Lost {
                term,
                lease_expired,
            }) => {
                if lease_expired {
                    warn!(
                        node = self.config.node_id,
                        term,
                        "no quorum acknowledgement within the lease, stepping down as controller"
                    );
                } else {
                    info!(node = self.config.node_id, term, "no longer the controller");
                }
            }
            None => {}
        }
        false
    }

    async fn run_duties(&self, duties: &mut Duties) {
        let bound = self.session_timeout();
        if duties.init_pending {
            match tokio::time::timeout(bound, self.write_cluster_defaults()).await {
                Ok(Ok(())) => duties.init_pending = false,
                Ok(Err(error)) => debug!(%error, "cannot write cluster defaults yet"),
                Err(_) => debug!("writing cluster defaults timed out"),
            }
        }
        let expired = self.sessions.lock().expired(
            &self.image(),
            Instant::now().into_std(),
            self.session_timeout(),
        );
        for (broker, broker_epoch) in expired {
            info!(
                broker,
                broker_epoch,
                session_timeout_ms = self.config.broker_session_timeout_ms,
                "broker session expired, fencing"
            );
            let op = MetadataOp::FenceBroker {
                broker_id: broker,
                broker_epoch,
            };
            match tokio::time::timeout(bound, self.propose(op)).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err(error))) => debug!(broker, %error, "fencing rejected"),
                Ok(Err(error)) => debug!(broker, %error, "fencing not written"),
                Err(_) => debug!(broker, "fencing timed out"),
            }
        }
        if let Some(interval) = self.config.leader_imbalance_check_interval_ms {
            if duties.last_imbalance_check.elapsed() >= Duration::from_millis(interval) {
                duties.last_imbalance_check = Instant::now();
                let partitions = election::imbalanced_partitions(&self.image());
                if !partitions.is_empty() {
                    info!(
                        partitions = partitions.len(),
                        "leader imbalance found, electing preferred leaders"
                    );
                    let op = MetadataOp::ElectLeaders {
                        kind: ElectionType::Preferred,
                        partitions,
                    };
                    if let Ok(Err(error)) = tokio::time::timeout(bound, self.propose(op)).await {
                        debug!(%error, "preferred leader election not written");
                    }
                }
            }
        }
    }

    /// Sets the cluster id (once per cluster) and this controller's cluster-wide defaults.
    async fn write_cluster_defaults(&self) -> Result<(), QuorumError> {
        let image = self.image();
        match (&image.cluster_id, &self.config.cluster_id) {
            (None, configured) => {
                let cluster_id = configured.clone().unwrap_or_else(cluster_id::generate);
                if let Ok(Applied::ClusterId(id)) =
                    self.propose(MetadataOp::InitCluster { cluster_id }).await?
                {
                    info!(cluster_id = %id, "cluster id set");
                }
            }
            (Some(current), Some(configured)) if current != configured => {
                warn!(cluster_id = %current, configured = %configured, "configured cluster id differs from the cluster's");
            }
            _ => {}
        }
        let desired = self.config.unclean_leader_election_default.to_string();
        if image.broker_configs.get(UNCLEAN_LEADER_ELECTION_CONFIG) != Some(&desired) {
            let configs =
                BTreeMap::from([(UNCLEAN_LEADER_ELECTION_CONFIG.to_string(), Some(desired))]);
            // The apply result carries nothing to check; a failure to write is the error.
            let _applied = self
                .propose(MetadataOp::SetBrokerConfigs { configs })
                .await?;
        }
        Ok(())
    }
}

fn unexpected(applied: Applied) -> QuorumError {
    QuorumError::Raft(format!("unexpected apply outcome {applied:?}"))
}

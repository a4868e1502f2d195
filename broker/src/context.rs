//! Everything a request handler may use, shared by all connections of a broker.

use std::sync::Arc;

use raft_controller::Quorum;
use storage::LogManager;

use crate::config::BrokerConfig;
use crate::coordinator::GroupCoordinator;
use crate::metrics::Metrics;
use crate::producer_id_manager::ProducerIdManager;
use crate::replica::ReplicaManager;

#[derive(Debug)]
pub struct Context {
    pub config: Arc<BrokerConfig>,
    pub quorum: Quorum,
    pub logs: Arc<LogManager>,
    pub replicas: Arc<ReplicaManager>,
    pub groups: Arc<GroupCoordinator>,
    pub producer_ids: ProducerIdManager,
    pub metrics: Arc<Metrics>,
}

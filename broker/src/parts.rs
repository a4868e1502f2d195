//! The broker's long-lived components as [`Broker::start`](crate::Broker::start) wires them:
//! what the background tasks and the health and metrics endpoint work with. Request handlers
//! do not see this; they get the narrower [`Context`](crate::context::Context).

use std::sync::Arc;

use raft_controller::Quorum;
use storage::LogManager;

use crate::config::BrokerConfig;
use crate::coordinator::GroupCoordinator;
use crate::metrics::Metrics;
use crate::quota::ClientQuotas;
use crate::replica::ReplicaManager;

#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) config: Arc<BrokerConfig>,
    pub(crate) quorum: Quorum,
    pub(crate) logs: Arc<LogManager>,
    pub(crate) replicas: Arc<ReplicaManager>,
    pub(crate) groups: Arc<GroupCoordinator>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) quotas: ClientQuotas,
}

//! Everything a request handler may use, shared by all connections of a broker.

use std::sync::Arc;

use raft_controller::{MetadataImage, Quorum};
use storage::LogManager;
use tokio::sync::watch;

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

impl Context {
    /// The metadata clients are shown: once partition roles follow the image, the image this
    /// broker has applied, so a client never learns of a leadership before this broker acts on
    /// it; before that (start-up), the quorum's image.
    pub fn image(&self) -> Arc<MetadataImage> {
        if self.replicas.is_ready() {
            self.replicas.applied_image()
        } else {
            self.quorum.image()
        }
    }

    /// Changes to [`Context::image`].
    pub fn subscribe_image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        if self.replicas.is_ready() {
            self.replicas.subscribe_applied()
        } else {
            self.quorum.subscribe()
        }
    }
}

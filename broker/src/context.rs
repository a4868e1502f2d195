//! Everything a request handler may use, shared by all connections of a broker.

use std::sync::Arc;

use kafka_core::ErrorCode;
use raft_controller::{MetadataImage, Quorum};
use storage::{LogManager, TopicPartition};
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::coordinator::GroupCoordinator;
use crate::metrics::Metrics;
use crate::producer_id_manager::ProducerIdManager;
use crate::replica::{Partition, ReplicaManager};

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

    /// The replica of `tp` this broker hosts, or the code Kafka answers when it hosts none:
    /// NOT_LEADER_OR_FOLLOWER for a partition that exists elsewhere, else
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub fn hosted_partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>, ErrorCode> {
        match self.replicas.partition(tp) {
            Some(p) => Ok(p),
            None if self
                .quorum
                .image()
                .partition(&tp.topic, tp.partition)
                .is_some() =>
            {
                Err(ErrorCode::NOT_LEADER_OR_FOLLOWER)
            }
            None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        }
    }

    /// The replica of `tp` if this broker leads it; else the code a client must see.
    pub fn led_partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>, ErrorCode> {
        let p = self.hosted_partition(tp)?;
        if p.is_leader() {
            Ok(p)
        } else {
            Err(ErrorCode::NOT_LEADER_OR_FOLLOWER)
        }
    }
}

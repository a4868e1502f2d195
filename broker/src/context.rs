//! What a request handler may use, shared by all connections of a broker: the metadata it may
//! read and the controller operations it may ask for ([`MetadataView`]), the partition replicas
//! it may read and append to ([`PartitionLookup`]), and a few named services (groups, producer
//! ids, log dir usage). Handlers never hold the broker's components themselves.

use std::sync::Arc;

use kafka_core::ErrorCode;
use raft_controller::{MetadataImage, Quorum};
use storage::{LogDirUsage, TopicPartition};
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::coordinator::discovery::Located;
use crate::coordinator::manager::GroupManager;
use crate::metrics::Metrics;
use crate::parts::Parts;
use crate::producer_id_manager::ProducerIdManager;
use crate::quota::ClientQuotas;
use crate::replica::partition::Corruption;
use crate::replica::Partition;
use crate::security::Authorizer;

/// The cluster metadata as handlers see it, and the controller they send admin writes to.
pub(crate) trait MetadataView {
    /// The metadata clients are shown: once partition roles follow the image, the image this
    /// broker has applied, so a client never learns of a leadership before this broker acts on
    /// it; before that (start-up), the quorum's image.
    fn image(&self) -> Arc<MetadataImage>;

    /// Changes to [`MetadataView::image`].
    fn subscribe_image(&self) -> watch::Receiver<Arc<MetadataImage>>;

    /// The newest image this broker's quorum member has (admin APIs read and wait on it).
    fn latest_image(&self) -> Arc<MetadataImage>;

    /// Changes to [`MetadataView::latest_image`].
    fn subscribe_latest_image(&self) -> watch::Receiver<Arc<MetadataImage>>;

    /// The controller: topic creation and deletion, leader elections, config changes.
    fn controller(&self) -> &Quorum;
}

/// The partition replicas this broker hosts, with the codes a client sees where it hosts none.
pub(crate) trait PartitionLookup {
    /// The replica of `tp` hosted here, if any.
    fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>>;

    /// Every replica hosted here.
    fn partitions(&self) -> Vec<Arc<Partition>>;

    /// The replica of `tp` this broker hosts, or the code Kafka answers when it hosts none:
    /// NOT_LEADER_OR_FOLLOWER for a partition that exists elsewhere, else
    /// UNKNOWN_TOPIC_OR_PARTITION.
    fn hosted_partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>, ErrorCode>;

    /// The replica of `tp` if this broker leads it; else the code a client must see.
    fn led_partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>, ErrorCode> {
        let p = self.hosted_partition(tp)?;
        if p.is_leader() {
            Ok(p)
        } else {
            Err(ErrorCode::NOT_LEADER_OR_FOLLOWER)
        }
    }
}

/// The handlers' view of the broker.
#[derive(Debug)]
pub(crate) struct Context {
    parts: Arc<Parts>,
    producer_ids: ProducerIdManager,
    authorizer: Authorizer,
}

impl Context {
    pub(crate) fn new(parts: Arc<Parts>) -> Context {
        let producer_ids = ProducerIdManager::new(parts.quorum.clone(), parts.config.node_id);
        let config = &parts.config;
        let authorizer = if config.authorizer_enabled {
            Authorizer::new(
                config.super_users.iter().cloned(),
                config.allow_everyone_if_no_acl_found,
            )
        } else {
            Authorizer::disabled()
        };
        Context {
            parts,
            producer_ids,
            authorizer,
        }
    }

    pub(crate) fn config(&self) -> &BrokerConfig {
        &self.parts.config
    }

    pub(crate) fn authorizer(&self) -> &Authorizer {
        &self.authorizer
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.parts.metrics
    }

    /// Usage against client quotas.
    pub(crate) fn quotas(&self) -> &ClientQuotas {
        &self.parts.quotas
    }

    /// The groups and offsets coordinated here.
    pub(crate) fn groups(&self) -> &Arc<GroupManager> {
        self.parts.groups.groups()
    }

    /// Where the coordinator of `group_id` is for a client on `listener`.
    pub(crate) fn locate_coordinator(&self, group_id: &str, listener: &str) -> Located {
        self.parts.groups.locate(group_id, listener)
    }

    pub(crate) fn producer_ids(&self) -> &ProducerIdManager {
        &self.producer_ids
    }

    /// A read found a corrupt batch in `partition`'s log: report it and repair the replica.
    pub(crate) fn report_corruption(&self, partition: &Arc<Partition>, corruption: Corruption) {
        self.parts.replicas.report_corruption(partition, corruption);
    }

    pub(crate) fn log_dir_usage(&self) -> Vec<LogDirUsage> {
        self.parts.logs.dir_usage()
    }
}

impl MetadataView for Context {
    fn image(&self) -> Arc<MetadataImage> {
        if self.parts.replicas.is_ready() {
            self.parts.replicas.applied_image()
        } else {
            self.parts.quorum.image()
        }
    }

    fn subscribe_image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        if self.parts.replicas.is_ready() {
            self.parts.replicas.subscribe_applied()
        } else {
            self.parts.quorum.subscribe()
        }
    }

    fn latest_image(&self) -> Arc<MetadataImage> {
        self.parts.quorum.image()
    }

    fn subscribe_latest_image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.parts.quorum.subscribe()
    }

    fn controller(&self) -> &Quorum {
        &self.parts.quorum
    }
}

impl PartitionLookup for Context {
    fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.parts.replicas.partition(tp)
    }

    fn partitions(&self) -> Vec<Arc<Partition>> {
        self.parts.replicas.partitions()
    }

    fn hosted_partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>, ErrorCode> {
        match self.parts.replicas.partition(tp) {
            Some(p) => Ok(p),
            None if self
                .parts
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
}

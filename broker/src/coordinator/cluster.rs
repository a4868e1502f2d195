//! What the group coordinator needs from the rest of the broker, as a trait: the metadata
//! image, creating `__consumer_offsets`, and this broker's replicas (whose high watermarks lag is
//! measured against). The coordinator holds nothing else of the broker.

use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use raft_controller::{
    ControllerError, CreateTopicSpec, CreatedTopic, MetadataImage, Quorum, QuorumError,
};
use storage::TopicPartition;

use crate::replica::{Partition, ReplicaManager};

/// The answer to a topic creation: per topic, or the quorum's failure to answer.
pub(crate) type TopicCreation = Result<Vec<Result<CreatedTopic, ControllerError>>, QuorumError>;

pub(crate) trait Cluster: Send + Sync + Debug + 'static {
    /// The newest metadata image.
    fn image(&self) -> Arc<MetadataImage>;

    /// Asks the controller to create a topic.
    fn create_topic(&self, spec: CreateTopicSpec) -> BoxFuture<'static, TopicCreation>;

    /// The replica of `tp` hosted here, if any.
    fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>>;
}

/// The broker's metadata quorum member and replicas, as the coordinator sees them.
#[derive(Debug)]
pub(crate) struct BrokerCluster {
    pub(crate) quorum: Quorum,
    pub(crate) replicas: Arc<ReplicaManager>,
}

impl Cluster for BrokerCluster {
    fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    fn create_topic(&self, spec: CreateTopicSpec) -> BoxFuture<'static, TopicCreation> {
        let quorum = self.quorum.clone();
        async move { quorum.create_topics(vec![spec], false).await }.boxed()
    }

    fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.replicas.partition(tp)
    }
}

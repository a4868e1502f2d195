//! Versioned metadata commands, the payload of the Raft log, and their apply responses.
//!
//! A command states an intent plus every non-deterministic input the proposer chose (ids,
//! replica placement); applying it is a pure function of the image, so every replica computes
//! the same outcome. Compatibility: each entry carries a format version `v`; fields added later
//! are `#[serde(default)]` so a newer broker reads an older log, and unknown fields are ignored.

use std::collections::BTreeMap;

use kafka_core::acl::{AclBinding, AclFilter};
use kafka_core::quota::QuotaAlteration;
use kafka_core::scram::{ScramCredential, ScramMechanism};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ControllerError;
use crate::image::{Endpoint, PartitionState};
use crate::requests::{
    AlterPartition, ConfigOp, CreatedTopic, ElectionType, PartitionElection, ResignLeadership,
};

/// The command format version this build writes.
pub const COMMAND_VERSION: u16 = 1;

/// One entry of the metadata log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Format version of `op`.
    pub v: u16,
    /// What to do.
    pub op: MetadataOp,
}

impl Command {
    /// Wraps an operation in the current format version.
    pub fn new(op: MetadataOp) -> Self {
        Command {
            v: COMMAND_VERSION,
            op,
        }
    }
}

/// The metadata operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataOp {
    /// Sets the cluster id if none is set yet.
    InitCluster {
        /// Generated or configured cluster id.
        cluster_id: String,
    },
    /// Sets (`Some`) or removes (`None`) cluster-wide dynamic broker configs.
    SetBrokerConfigs {
        /// Config name -> new value.
        configs: BTreeMap<String, Option<String>>,
    },
    /// Registers a broker incarnation; the registration starts fenced and its epoch is the
    /// log index of this entry. A previous, unfenced incarnation is fenced first.
    RegisterBroker {
        /// Broker id.
        broker_id: i32,
        /// Process incarnation.
        incarnation_id: Uuid,
        /// Rack.
        #[serde(default)]
        rack: Option<String>,
        /// Listeners.
        #[serde(default)]
        endpoints: Vec<Endpoint>,
    },
    /// Fences a broker: it leaves every ISR it is not the last member of, its leaderships move.
    FenceBroker {
        /// Broker id.
        broker_id: i32,
        /// The registration being fenced.
        broker_epoch: i64,
    },
    /// Unfences a caught-up broker; leaderless partitions whose ISR holds it elect it.
    UnfenceBroker {
        /// Broker id.
        broker_id: i32,
        /// The registration being unfenced.
        broker_epoch: i64,
    },
    /// Starts a controlled shutdown: leaderships move away, the broker leaves ISRs where
    /// others remain.
    BeginControlledShutdown {
        /// Broker id.
        broker_id: i32,
        /// The registration shutting down.
        broker_epoch: i64,
    },
    /// Creates a topic with the given placement.
    CreateTopic {
        /// Name.
        name: String,
        /// Id chosen by the proposer.
        topic_id: Uuid,
        /// Topic configs.
        #[serde(default)]
        configs: BTreeMap<String, String>,
        /// Replicas of partition i at index i.
        assignments: Vec<Vec<i32>>,
    },
    /// Deletes a topic.
    DeleteTopic {
        /// Name.
        name: String,
        /// Id (guards against deleting a re-created topic).
        topic_id: Uuid,
    },
    /// Appends partitions to a topic.
    CreatePartitions {
        /// Topic id.
        topic_id: Uuid,
        /// Replicas of each new partition, in partition order.
        assignments: Vec<Vec<i32>>,
    },
    /// Changes topic configs.
    AlterTopicConfigs {
        /// Topic id.
        topic_id: Uuid,
        /// Changes, applied in order.
        ops: Vec<ConfigOp>,
    },
    /// An ISR change proposed by a partition leader.
    AlterPartition(AlterPartition),
    /// A partition leader whose log copy is damaged hands leadership to another ISR member.
    ResignLeadership(ResignLeadership),
    /// Elects leaders for the listed partitions.
    ElectLeaders {
        /// Preferred or unclean.
        kind: ElectionType,
        /// Partitions by topic name and index.
        partitions: Vec<(String, i32)>,
    },
    /// Adds ACL bindings (validated by the controller; adding one twice keeps one).
    CreateAcls {
        /// The bindings.
        acls: Vec<AclBinding>,
    },
    /// Removes every binding each filter matches.
    DeleteAcls {
        /// The filters, answered in order.
        filters: Vec<AclFilter>,
    },
    /// Sets and removes users' SCRAM credentials (validated by the broker). A user one of
    /// whose deletions finds no credential keeps all its credentials as they were.
    AlterScramCredentials {
        /// Credentials to set, replacing any for the same user and mechanism.
        upsertions: Vec<(String, ScramMechanism, ScramCredential)>,
        /// Credentials to remove.
        deletions: Vec<(String, ScramMechanism)>,
    },
    /// Sets (`Some`) and removes (`None`) client quotas (validated by the broker); an entity
    /// left with no quota is forgotten.
    AlterClientQuotas {
        /// Changes by entity.
        entries: Vec<QuotaAlteration>,
    },
    /// Hands out a block of producer ids.
    AllocateProducerIds {
        /// Requesting broker.
        broker_id: i32,
        /// Its epoch.
        broker_epoch: i64,
    },
}

impl MetadataOp {
    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            MetadataOp::InitCluster { .. } => "InitCluster",
            MetadataOp::SetBrokerConfigs { .. } => "SetBrokerConfigs",
            MetadataOp::RegisterBroker { .. } => "RegisterBroker",
            MetadataOp::FenceBroker { .. } => "FenceBroker",
            MetadataOp::UnfenceBroker { .. } => "UnfenceBroker",
            MetadataOp::BeginControlledShutdown { .. } => "BeginControlledShutdown",
            MetadataOp::CreateTopic { .. } => "CreateTopic",
            MetadataOp::DeleteTopic { .. } => "DeleteTopic",
            MetadataOp::CreatePartitions { .. } => "CreatePartitions",
            MetadataOp::AlterTopicConfigs { .. } => "AlterTopicConfigs",
            MetadataOp::AlterPartition(_) => "AlterPartition",
            MetadataOp::ResignLeadership(_) => "ResignLeadership",
            MetadataOp::ElectLeaders { .. } => "ElectLeaders",
            MetadataOp::CreateAcls { .. } => "CreateAcls",
            MetadataOp::DeleteAcls { .. } => "DeleteAcls",
            MetadataOp::AlterScramCredentials { .. } => "AlterScramCredentials",
            MetadataOp::AlterClientQuotas { .. } => "AlterClientQuotas",
            MetadataOp::AllocateProducerIds { .. } => "AllocateProducerIds",
        }
    }
}

/// What applying an entry produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// Entry without a result (blank, membership, or a command with nothing to report).
    Nothing,
    /// The cluster id now in force.
    ClusterId(String),
    /// A broker's epoch (registration offset).
    BrokerEpoch(i64),
    /// A topic was created.
    Topic(CreatedTopic),
    /// A topic was deleted.
    TopicDeleted(Uuid),
    /// A partition's new state.
    Partition(PartitionState),
    /// Per-partition election outcomes.
    Elections(Vec<PartitionElection>),
    /// The bindings each DeleteAcls filter removed, in filter order.
    AclsDeleted(Vec<Vec<AclBinding>>),
    /// The AlterScramCredentials users left unchanged: a deletion of theirs found nothing.
    ScramMissing(Vec<String>),
    /// A producer id block.
    ProducerIds {
        /// First id of the block.
        first: i64,
        /// Block size.
        count: i32,
    },
}

/// The response of applying one entry, returned to the proposer by `client_write`.
pub type CommandResponse = Result<Applied, ControllerError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let cmd = Command::new(MetadataOp::CreateTopic {
            name: "t".into(),
            topic_id: Uuid::new_v4(),
            configs: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
            assignments: vec![vec![0, 1], vec![1, 0]],
        });
        let json = serde_json::to_string(&cmd).unwrap();
        let back: Command = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cmd);
    }

    #[test]
    fn reads_entries_with_missing_optional_and_unknown_fields() {
        let json = r#"{"v":1,"future_envelope_field":true,
            "op":{"type":"RegisterBroker","broker_id":3,
                  "incarnation_id":"67e55044-10b1-426f-9247-bb680e5fe0c8",
                  "some_field_from_a_newer_version":[1,2,3]}}"#;
        let cmd: Command = serde_json::from_str(json).unwrap();
        match cmd.op {
            MetadataOp::RegisterBroker {
                broker_id,
                rack,
                endpoints,
                ..
            } => {
                assert_eq!(broker_id, 3);
                assert_eq!(rack, None);
                assert!(endpoints.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tuple_and_newtype_variants_serialize() {
        let cmd = Command::new(MetadataOp::ElectLeaders {
            kind: ElectionType::Preferred,
            partitions: vec![("a".into(), 0), ("b".into(), 3)],
        });
        let back: Command = serde_json::from_str(&serde_json::to_string(&cmd).unwrap()).unwrap();
        assert_eq!(back, cmd);
        let cmd = Command::new(MetadataOp::AlterPartition(AlterPartition {
            broker_id: 1,
            broker_epoch: 7,
            topic_id: Uuid::new_v4(),
            partition: 0,
            leader_epoch: 2,
            partition_epoch: 5,
            new_isr: vec![1, 2],
        }));
        let back: Command = serde_json::from_str(&serde_json::to_string(&cmd).unwrap()).unwrap();
        assert_eq!(back, cmd);
    }
}

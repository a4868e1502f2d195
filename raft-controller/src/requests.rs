//! Controller request and reply types of the public API, and the forwardable
//! `ControllerRequest` / `ControllerResponse` pair that travels to the leader over RPC.

use std::collections::BTreeMap;

use kafka_core::acl::{AclBinding, AclFilter};
use kafka_core::quota::QuotaAlteration;
use kafka_core::scram::{ScramCredential, ScramMechanism};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ControllerError;
use crate::image::{Endpoint, PartitionState};

/// A broker announcing itself to the controller (Kafka's BrokerRegistration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationRequest {
    /// The broker id.
    pub broker_id: i32,
    /// Fresh per broker process; tells a retry from a restart.
    pub incarnation_id: Uuid,
    /// The rack (zone) the broker runs in.
    #[serde(default)]
    pub rack: Option<String>,
    /// Advertised listeners.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// A broker's periodic heartbeat (Kafka's BrokerHeartbeat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeat {
    /// The broker id.
    pub broker_id: i32,
    /// The epoch returned by registration.
    pub broker_epoch: i64,
    /// The metadata offset the broker has applied.
    pub current_metadata_offset: u64,
    /// The broker asks to be fenced.
    #[serde(default)]
    pub want_fence: bool,
    /// The broker asks for a controlled shutdown.
    #[serde(default)]
    pub want_shutdown: bool,
}

/// The controller's answer to a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The broker has applied metadata up to its registration.
    pub is_caught_up: bool,
    /// The broker is fenced (may not lead or be in an ISR).
    pub is_fenced: bool,
    /// Controlled shutdown is complete; the broker may exit.
    pub should_shut_down: bool,
}

/// One topic of a CreateTopics request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count, -1 for `num.partitions`.
    pub num_partitions: i32,
    /// Replication factor, -1 for `default.replication.factor`.
    pub replication_factor: i16,
    /// Manual assignment partition -> replicas; empty = place automatically.
    #[serde(default)]
    pub assignments: BTreeMap<i32, Vec<i32>>,
    /// Topic configs.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// A created (or, with `validate_only`, creatable) topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopic {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub num_partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
}

/// One change of an AlterConfigs-style request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    /// Set a config to a value.
    Set(String, String),
    /// Remove a config (back to the default).
    Delete(String),
}

/// An ISR change proposed by a partition leader (Kafka's AlterPartition).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartition {
    /// The proposing broker (must lead the partition).
    pub broker_id: i32,
    /// Its broker epoch.
    pub broker_epoch: i64,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The leader epoch the proposer leads in.
    pub leader_epoch: i32,
    /// The partition epoch the proposal is based on.
    pub partition_epoch: i32,
    /// The proposed ISR.
    pub new_isr: Vec<i32>,
}

/// A partition leader giving up leadership because its log copy is damaged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResignLeadership {
    /// The resigning broker (must lead the partition).
    pub broker_id: i32,
    /// Its broker epoch.
    pub broker_epoch: i64,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The leader epoch it leads in.
    pub leader_epoch: i32,
}

/// Kind of leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    /// Move leadership to the first replica if it is in sync and live.
    Preferred,
    /// Elect any live replica for a leaderless partition, even out of the ISR.
    Unclean,
}

/// Result of electing a leader for one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionElection {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The new leader, or why there is none.
    pub result: Result<i32, ControllerError>,
}

/// A request that only the controller (Raft leader) can serve; forwarded from any node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum ControllerRequest {
    RegisterBroker(BrokerRegistrationRequest),
    BrokerHeartbeat(BrokerHeartbeat),
    CreateTopics {
        specs: Vec<CreateTopicSpec>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        topic: String,
        new_total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    },
    AlterTopicConfigs {
        topic: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    },
    AlterPartition(AlterPartition),
    ResignLeadership(ResignLeadership),
    ElectLeaders {
        kind: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    },
    AllocateProducerIds {
        broker_id: i32,
        broker_epoch: i64,
    },
    CreateAcls {
        acls: Vec<AclBinding>,
    },
    DeleteAcls {
        filters: Vec<AclFilter>,
    },
    AlterScramCredentials {
        upsertions: Vec<(String, ScramMechanism, ScramCredential)>,
        deletions: Vec<(String, ScramMechanism)>,
    },
    AlterClientQuotas {
        entries: Vec<QuotaAlteration>,
    },
}

impl ControllerRequest {
    /// Short name for logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ControllerRequest::RegisterBroker(_) => "RegisterBroker",
            ControllerRequest::BrokerHeartbeat(_) => "BrokerHeartbeat",
            ControllerRequest::CreateTopics { .. } => "CreateTopics",
            ControllerRequest::DeleteTopics { .. } => "DeleteTopics",
            ControllerRequest::CreatePartitions { .. } => "CreatePartitions",
            ControllerRequest::AlterTopicConfigs { .. } => "AlterTopicConfigs",
            ControllerRequest::AlterPartition(_) => "AlterPartition",
            ControllerRequest::ResignLeadership(_) => "ResignLeadership",
            ControllerRequest::ElectLeaders { .. } => "ElectLeaders",
            ControllerRequest::AllocateProducerIds { .. } => "AllocateProducerIds",
            ControllerRequest::CreateAcls { .. } => "CreateAcls",
            ControllerRequest::DeleteAcls { .. } => "DeleteAcls",
            ControllerRequest::AlterScramCredentials { .. } => "AlterScramCredentials",
            ControllerRequest::AlterClientQuotas { .. } => "AlterClientQuotas",
        }
    }
}

/// The controller's answer to a `ControllerRequest` (same order of variants).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum ControllerResponse {
    RegisterBroker(Result<i64, ControllerError>),
    BrokerHeartbeat(Result<HeartbeatReply, ControllerError>),
    CreateTopics(Vec<Result<CreatedTopic, ControllerError>>),
    DeleteTopics(Vec<Result<Uuid, ControllerError>>),
    CreatePartitions(Result<(), ControllerError>),
    AlterTopicConfigs(Result<(), ControllerError>),
    AlterPartition(Result<PartitionState, ControllerError>),
    ResignLeadership(Result<PartitionState, ControllerError>),
    ElectLeaders(Vec<PartitionElection>),
    AllocateProducerIds(Result<(i64, i32), ControllerError>),
    CreateAcls(Vec<Result<(), ControllerError>>),
    DeleteAcls(Vec<Vec<AclBinding>>),
    AlterScramCredentials(Vec<String>),
    AlterClientQuotas,
}

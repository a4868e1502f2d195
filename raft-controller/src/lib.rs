//! The embedded Raft metadata quorum: cluster image, controller role, and the local metadata view.
//!
//! Every broker runs a [`Quorum`] member. The configured voters replicate a log of versioned
//! metadata commands with openraft (log, vote and snapshots in sled, peers over a small
//! length-prefixed TCP RPC); other brokers follow as learners. Each member applies committed
//! commands to a local [`MetadataImage`] that brokers read and subscribe to; the Raft leader
//! additionally acts as the controller: broker registration, heartbeats and fencing, topic
//! creation with rack-aware placement, ISR changes, controlled shutdown and leader election.
//! [`wire`] runs the RPC decoders on their own, for fuzzing.

mod commands;
mod config;
mod controller;
mod error;
mod image;
mod lifecycle;
mod membership;
mod network;
mod quorum;
mod requests;
mod routing;
mod signal;
mod store;
mod types;
pub mod wire;

pub use config::{ordinal_voters, QuorumConfig};
pub use error::{ControllerError, QuorumError};
pub use image::{
    BrokerRegistration, Endpoint, MetadataImage, PartitionState, TopicImage, NO_LEADER,
    PRODUCER_ID_BLOCK_SIZE, UNCLEAN_LEADER_ELECTION_CONFIG,
};
pub use lifecycle::{BrokerLifecycle, BrokerState};
pub use network::tls::RpcTls;
pub use quorum::{Quorum, QuorumStatus};
pub use requests::{
    AlterPartition, BrokerHeartbeat, BrokerRegistrationRequest, ConfigOp, CreateTopicSpec,
    CreatedTopic, ElectionType, HeartbeatReply, PartitionElection, ResignLeadership,
};

//! The openraft type configuration: node ids are broker ids (as `u64`), nodes are `BasicNode`
//! carrying the RPC address, entries carry versioned metadata commands.

use std::io::Cursor;

use crate::commands::{Command, CommandResponse};

openraft::declare_raft_types!(
    /// Type configuration of the metadata Raft group.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
);

/// The Raft node id type.
pub type NodeId = u64;
/// The Raft node type (its RPC address).
pub type Node = openraft::BasicNode;
/// The Raft handle of this group.
pub type MetaRaft = openraft::Raft<TypeConfig>;
/// A log entry of this group.
pub type LogEntry = openraft::Entry<TypeConfig>;
/// A log id of this group.
pub type LogId = openraft::LogId<NodeId>;
/// A storage error of this group.
pub type StorageError = openraft::StorageError<NodeId>;
/// Membership as stored in the log / snapshot.
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
/// Snapshot metadata of this group.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;

/// Converts a broker id to a Raft node id (broker ids are validated non-negative).
pub fn node_id(broker_id: i32) -> NodeId {
    u64::from(broker_id.unsigned_abs())
}

/// Converts a Raft node id back to a broker id, if it fits.
pub fn broker_id(node_id: NodeId) -> Option<i32> {
    i32::try_from(node_id).ok()
}

//! The RPC message set: Raft traffic (append entries, vote, whole-snapshot install) and the
//! requests that must reach the leader (forwarded controller requests, learner joins).

use openraft::error::{Fatal, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::Vote;
use serde::{Deserialize, Serialize};

use crate::error::QuorumError;
use crate::requests::{ControllerRequest, ControllerResponse};
use crate::types::{NodeId, SnapshotMeta, TypeConfig};

/// A request from one quorum member to another.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    /// A whole snapshot; `data` is the snapshot's (JSON) bytes as text.
    FullSnapshot {
        vote: Vote<NodeId>,
        meta: SnapshotMeta,
        data: String,
    },
    /// A controller request for the leader, to be answered within `timeout_ms`.
    Forward {
        request: ControllerRequest,
        timeout_ms: u64,
    },
    /// A broker that is not a voter asks the leader to add it as a learner.
    AddLearner {
        node_id: i32,
        addr: String,
    },
}

impl RpcRequest {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            RpcRequest::AppendEntries(_) => "AppendEntries",
            RpcRequest::Vote(_) => "Vote",
            RpcRequest::FullSnapshot { .. } => "FullSnapshot",
            RpcRequest::Forward { .. } => "Forward",
            RpcRequest::AddLearner { .. } => "AddLearner",
        }
    }
}

/// The answer to an `RpcRequest` (same variant order), or a protocol error.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    FullSnapshot(Result<SnapshotResponse<NodeId>, Fatal<NodeId>>),
    Forward(Result<ControllerResponse, QuorumError>),
    AddLearner(Result<(), QuorumError>),
    /// The request could not be decoded.
    BadRequest(String),
}

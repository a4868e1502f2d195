//! Delivering leader-only requests: served locally when this node is the active controller,
//! otherwise forwarded over RPC to the leader this node knows of (or, when it knows none, to
//! the configured voters in turn, following their leader hints), retried across leader changes
//! until the caller's deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use crate::controller::Controller;
use crate::error::QuorumError;
use crate::network::client::{PeerPool, RpcError};
use crate::network::messages::{RpcRequest, RpcResponse};
use crate::requests::{ControllerRequest, ControllerResponse};
use crate::types::{node_id, MetaRaft};

/// A request only the leader can serve.
#[derive(Clone, Debug)]
pub(crate) enum LeaderCall {
    Controller(ControllerRequest),
    AddLearner { node_id: i32, addr: String },
}

/// The leader's answer.
#[derive(Debug)]
pub(crate) enum LeaderReply {
    Controller(ControllerResponse),
    LearnerAdded,
}

/// Finds the leader and delivers requests to it.
pub(crate) struct Router {
    node_id: i32,
    voters: Vec<i32>,
    pool: Arc<PeerPool>,
    controller: Arc<Controller>,
    raft: MetaRaft,
    retry_pause: Duration,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Router {
    pub(crate) fn new(
        node_id: i32,
        voters: &BTreeMap<i32, String>,
        pool: Arc<PeerPool>,
        controller: Arc<Controller>,
        raft: MetaRaft,
        retry_pause: Duration,
    ) -> Self {
        Router {
            node_id,
            voters: voters.keys().copied().collect(),
            pool,
            controller,
            raft,
            retry_pause,
        }
    }

    /// Delivers `call` to the leader, retrying until `timeout` has passed.
    pub(crate) async fn call(
        &self,
        call: &LeaderCall,
        timeout: Duration,
    ) -> Result<LeaderReply, QuorumError> {
        let deadline = Instant::now() + timeout;
        let mut hint: Option<i32> = None;
        let mut next_voter = 0usize;
        let mut last_error = QuorumError::Timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(match last_error {
                    QuorumError::NotLeader { .. } | QuorumError::Io(_) => QuorumError::Timeout,
                    other => other,
                });
            }
            let remaining = deadline - now;
            let target = hint
                .take()
                .or_else(|| self.controller.known_leader())
                .or_else(|| {
                    let candidates: Vec<i32> = self
                        .voters
                        .iter()
                        .copied()
                        .filter(|v| *v != self.node_id)
                        .collect();
                    let pick = candidates
                        .get(next_voter % candidates.len().max(1))
                        .copied();
                    next_voter += 1;
                    pick
                });
            let result = match target {
                Some(t) if t == self.node_id => self.call_local(call, remaining).await,
                Some(t) => self.call_remote(t, call, remaining).await,
                None => Err(QuorumError::NotLeader { leader: None }),
            };
            match result {
                Ok(reply) => return Ok(reply),
                Err(QuorumError::NotLeader { leader: Some(l) }) if Some(l) != target => {
                    debug!(leader = l, "following leader hint");
                    hint = Some(l);
                    last_error = QuorumError::NotLeader { leader: Some(l) };
                }
                Err(
                    e @ (QuorumError::NotLeader { .. } | QuorumError::Io(_) | QuorumError::Timeout),
                ) => {
                    debug!(target = ?target, error = %e, "leader not reachable yet, retrying");
                    last_error = e;
                    tokio::time::sleep_until((Instant::now() + self.retry_pause).min(deadline))
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn call_local(
        &self,
        call: &LeaderCall,
        timeout: Duration,
    ) -> Result<LeaderReply, QuorumError> {
        match call {
            LeaderCall::Controller(request) => self
                .controller
                .handle(request.clone(), timeout)
                .await
                .map(LeaderReply::Controller),
            LeaderCall::AddLearner { node_id, addr } => self
                .controller
                .add_learner(*node_id, addr.clone())
                .await
                .map(|()| LeaderReply::LearnerAdded),
        }
    }

    async fn call_remote(
        &self,
        target: i32,
        call: &LeaderCall,
        timeout: Duration,
    ) -> Result<LeaderReply, QuorumError> {
        let id = node_id(target);
        let member_addr = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone());
        let peer = self
            .pool
            .peer(id, member_addr.as_deref())
            .ok_or(QuorumError::NotLeader { leader: None })?;
        let request = match call {
            LeaderCall::Controller(request) => RpcRequest::Forward {
                request: request.clone(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
            LeaderCall::AddLearner { node_id, addr } => RpcRequest::AddLearner {
                node_id: *node_id,
                addr: addr.clone(),
            },
        };
        match peer.call(&request, timeout).await {
            Ok(RpcResponse::Forward(result)) => result.map(LeaderReply::Controller),
            Ok(RpcResponse::AddLearner(result)) => result.map(|()| LeaderReply::LearnerAdded),
            Ok(RpcResponse::BadRequest(reason)) => Err(QuorumError::Io(format!(
                "node {target} rejected the request: {reason}"
            ))),
            Ok(other) => Err(QuorumError::Io(format!(
                "unexpected response from node {target}: {other:?}"
            ))),
            Err(RpcError::Timeout { .. }) => Err(QuorumError::Timeout),
            Err(e) => Err(QuorumError::Io(e.to_string())),
        }
    }
}

//! Quorum membership: the voters come from configuration and bootstrap the group (every voter
//! initializes it with the same voter set, which openraft allows); every other node joins as a
//! learner by asking the leader to add it, and receives the log without voting.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::BasicNode;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::QuorumConfig;
use crate::error::QuorumError;
use crate::routing::{LeaderCall, Router};
use crate::types::{node_id, MetaRaft, NodeId};

/// Initializes the group on a pristine voter; a no-op on a node that already has state.
/// Voters bootstrap in turn (the lowest id at once, the next one election timeout later, ...)
/// so that normally one of them forms the group and the others simply receive its log, instead
/// of all campaigning at once; any voter still bootstraps if those before it are down.
pub(crate) fn spawn_voter_bootstrap(
    raft: MetaRaft,
    config: QuorumConfig,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let rank = config
            .voters
            .keys()
            .position(|id| *id == config.node_id)
            .unwrap_or(0);
        let delay =
            Duration::from_millis(config.election_timeout_max_ms.saturating_mul(rank as u64));
        tokio::select! {
            () = crate::signal::stopped(&mut shutdown) => return,
            () = tokio::time::sleep(delay) => {}
        }
        if let Err(error) = bootstrap_voter(&raft, &config).await {
            warn!(node = config.node_id, %error, "cannot initialize the metadata quorum");
        }
    })
}

async fn bootstrap_voter(raft: &MetaRaft, config: &QuorumConfig) -> Result<(), QuorumError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| QuorumError::Raft(e.to_string()))?;
    if initialized {
        debug!(node = config.node_id, "metadata quorum already formed");
        return Ok(());
    }
    let members: BTreeMap<NodeId, BasicNode> = config
        .voters
        .iter()
        .map(|(id, addr)| (node_id(*id), BasicNode::new(addr.clone())))
        .collect();
    match raft.initialize(members).await {
        Ok(()) => {
            info!(voters = ?config.voters.keys().collect::<Vec<_>>(), "metadata quorum initialized");
            Ok(())
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
            debug!(reason = %e, "quorum already initialized");
            Ok(())
        }
        Err(e) => Err(QuorumError::Raft(e.to_string())),
    }
}

/// Keeps a non-voter in the group as a learner: asks the leader to add it until the membership
/// lists it at its advertised address.
pub(crate) fn spawn_learner_join(
    raft: MetaRaft,
    router: Arc<Router>,
    config: QuorumConfig,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let id = node_id(config.node_id);
        let retry = Duration::from_millis(config.election_timeout_max_ms);
        let mut metrics = raft.metrics();
        loop {
            let joined = metrics
                .borrow()
                .membership_config
                .membership()
                .get_node(&id)
                .is_some_and(|n| n.addr == config.advertised_addr);
            if !joined {
                let call = LeaderCall::AddLearner {
                    node_id: config.node_id,
                    addr: config.advertised_addr.clone(),
                };
                match router.call(&call, retry).await {
                    Ok(_) => {
                        info!(node = config.node_id, addr = %config.advertised_addr, "joined the metadata quorum as a learner")
                    }
                    Err(error) => {
                        warn!(node = config.node_id, %error, "cannot join the metadata quorum yet")
                    }
                }
            }
            tokio::select! {
                () = crate::signal::stopped(&mut shutdown) => break,
                changed = metrics.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep(retry) => {}
            }
        }
    })
}

//! Whether this node may act as the controller: it must be the Raft leader *and* have heard
//! from a quorum within the leader lease. openraft 0.9 keeps a leader that lost its quorum in
//! the leader state until it sees a higher term; such a node cannot commit anything, and here it
//! also stops acting as (and reporting itself as) controller.

use std::time::Duration;

use openraft::{RaftMetrics, ServerState};
use tokio::time::Instant;

use crate::types::{Node, NodeId};

/// Tracks this node's leadership from Raft metrics.
#[derive(Debug)]
pub(crate) struct Leadership {
    node_id: NodeId,
    lease: Duration,
    /// The term in which this node leads, and when a quorum last acknowledged it.
    leading: Option<(u64, Instant)>,
    /// The term for which this node last announced itself active controller.
    announced: Option<u64>,
}

/// A change of controller role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleChange {
    /// Became the active controller in `term`.
    Gained { term: u64 },
    /// Stopped being the active controller of `term`; `lease_expired` if Raft still
    /// considers this node leader (it lost contact with its quorum).
    Lost { term: u64, lease_expired: bool },
}

impl Leadership {
    pub(crate) fn new(node_id: NodeId, lease: Duration) -> Self {
        Leadership {
            node_id,
            lease,
            leading: None,
            announced: None,
        }
    }

    /// Folds in a metrics report received at `now`; returns a role change if any.
    pub(crate) fn observe(
        &mut self,
        m: &RaftMetrics<NodeId, Node>,
        now: Instant,
    ) -> Option<RoleChange> {
        let is_leader = m.state == ServerState::Leader && m.current_leader == Some(self.node_id);
        let same_term =
            |leading: &Option<(u64, Instant)>| leading.filter(|(term, _)| *term == m.current_term);
        self.leading = match (is_leader, m.millis_since_quorum_ack) {
            (true, Some(ms)) => {
                let acked = now.checked_sub(Duration::from_millis(ms)).unwrap_or(now);
                let acked = same_term(&self.leading).map_or(acked, |(_, prev)| prev.max(acked));
                Some((m.current_term, acked))
            }
            (true, None) => same_term(&self.leading),
            (false, _) => None,
        };
        self.update(now)
    }

    /// Re-evaluates the lease at `now` (it expires without any metrics report).
    pub(crate) fn update(&mut self, now: Instant) -> Option<RoleChange> {
        let current = if self.is_active(now) {
            self.leading.map(|(term, _)| term)
        } else {
            None
        };
        if current == self.announced {
            return None;
        }
        let previous = std::mem::replace(&mut self.announced, current);
        match (previous, current) {
            (_, Some(term)) => Some(RoleChange::Gained { term }),
            (Some(term), None) => Some(RoleChange::Lost {
                term,
                lease_expired: self.leading.is_some(),
            }),
            (None, None) => None,
        }
    }

    /// Leader with a quorum acknowledgement within the lease.
    pub(crate) fn is_active(&self, now: Instant) -> bool {
        self.leading
            .is_some_and(|(_, at)| now.saturating_duration_since(at) <= self.lease)
    }
}

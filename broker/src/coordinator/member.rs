//! One member of a classic group: its identity, session and rebalance timeouts, the protocols it
//! supports (with their metadata), its current assignment, and its parked JoinGroup / SyncGroup.

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::replies::{JoinResult, SyncResult};

/// A (protocol name, protocol metadata) pair from JoinGroup.
pub type Protocol = (String, Bytes);

#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    /// Set while the member's JoinGroup waits for the rebalance to complete.
    pub awaiting_join: Option<oneshot::Sender<JoinResult>>,
    /// Set while the member's SyncGroup waits for the leader's assignment.
    pub awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    /// Joined during the current rebalance and has not yet received its first JoinGroup answer.
    pub is_new: bool,
    /// When the member expires unless it heartbeats (None: not scheduled).
    pub heartbeat_deadline: Option<Instant>,
}

impl Member {
    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    /// Same protocols with the same metadata, in the same order.
    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols.len() == protocols.len()
            && self.protocols.iter().zip(protocols).all(|(a, b)| a == b)
    }

    /// The member's most preferred protocol among `candidates`.
    pub fn vote<'a>(&'a self, candidates: &[&str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// The member's metadata for `protocol` (empty if it does not support it).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// Answers the parked JoinGroup, if any. True if there was one.
    pub fn complete_join(&mut self, result: JoinResult) -> bool {
        match self.awaiting_join.take() {
            Some(tx) => {
                // The requester may be gone (connection closed); nothing to do then.
                let _ = tx.send(result);
                true
            }
            None => false,
        }
    }

    /// Answers the parked SyncGroup, if any. True if there was one.
    pub fn complete_sync(&mut self, result: SyncResult) -> bool {
        match self.awaiting_sync.take() {
            Some(tx) => {
                let _ = tx.send(result);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(protocols: &[(&str, &'static [u8])]) -> Member {
        Member {
            id: "m".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|(n, m)| (n.to_string(), Bytes::from_static(m)))
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            heartbeat_deadline: None,
        }
    }

    #[test]
    fn votes_for_its_preferred_candidate() {
        let m = member(&[("cooperative-sticky", b"a"), ("range", b"b")]);
        assert_eq!(
            m.vote(&["range", "cooperative-sticky"]),
            Some("cooperative-sticky")
        );
        assert_eq!(m.vote(&["range"]), Some("range"));
        assert_eq!(m.vote(&["roundrobin"]), None);
        assert_eq!(&m.metadata("range")[..], b"b");
        assert!(m.metadata("roundrobin").is_empty());
    }

    #[test]
    fn matching_needs_same_order_and_metadata() {
        let m = member(&[("a", b"1"), ("b", b"2")]);
        let same = vec![
            ("a".to_string(), Bytes::from_static(b"1")),
            ("b".to_string(), Bytes::from_static(b"2")),
        ];
        assert!(m.matches(&same));
        let reordered = vec![same[1].clone(), same[0].clone()];
        assert!(!m.matches(&reordered));
        let changed = vec![same[0].clone(), ("b".to_string(), Bytes::from_static(b"3"))];
        assert!(!m.matches(&changed));
    }
}

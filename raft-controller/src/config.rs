//! Quorum configuration: node identity, addresses, the static voter set
//! (`controller.quorum.voters`), Raft timing and controller policies.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::QuorumError;
use crate::network::tls::RpcTls;

/// Configuration of one quorum member (voter or learner).
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    /// This node's broker id (also its Raft node id).
    pub node_id: i32,
    /// Where this node's Raft/controller RPC server binds.
    pub listen_addr: SocketAddr,
    /// `host:port` that peers dial to reach this node (DNS names allowed).
    pub advertised_addr: String,
    /// `controller.quorum.voters`: voter id -> `host:port`. May or may not contain `node_id`;
    /// a node that is not listed joins as a learner.
    pub voters: BTreeMap<i32, String>,
    /// The sled database directory (Raft log, vote, committed index, snapshot).
    pub data_dir: PathBuf,
    /// Raft heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized Raft election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized Raft election timeout.
    pub election_timeout_max_ms: u64,
    /// `broker.session.timeout.ms`: a broker silent for this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// `leader.imbalance.check.interval.seconds` (in ms) when `auto.leader.rebalance.enable`,
    /// `None` disables periodic preferred leader election.
    pub leader_imbalance_check_interval_ms: Option<u64>,
    /// `unclean.leader.election.enable` broker default (topics may override it).
    pub unclean_leader_election_default: bool,
    /// Build a snapshot (and purge the log before it) every this many applied entries.
    pub snapshot_after_logs: u64,
    /// Bound on a controller request, including forwarding to the leader and retries across
    /// leader changes.
    pub request_timeout_ms: u64,
    /// Fixed cluster id; otherwise the first controller generates one.
    pub cluster_id: Option<String>,
    /// `num.partitions`: partition count used when a create request asks for the default (-1).
    pub default_num_partitions: i32,
    /// `default.replication.factor`: used when a create request asks for the default (-1).
    pub default_replication_factor: i16,
    /// TLS on the RPC connections (both ends), when the controller listener is SSL.
    pub tls: Option<Arc<dyn RpcTls>>,
}

impl QuorumConfig {
    /// A configuration with Kafka-like defaults for everything but identity and addresses.
    pub fn new(
        node_id: i32,
        listen_addr: SocketAddr,
        advertised_addr: String,
        voters: BTreeMap<i32, String>,
        data_dir: PathBuf,
    ) -> Self {
        QuorumConfig {
            node_id,
            listen_addr,
            advertised_addr,
            voters,
            data_dir,
            heartbeat_interval_ms: 200,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            broker_session_timeout_ms: 9000,
            broker_heartbeat_interval_ms: 2000,
            leader_imbalance_check_interval_ms: Some(300_000),
            unclean_leader_election_default: false,
            snapshot_after_logs: 1000,
            request_timeout_ms: 30_000,
            cluster_id: None,
            default_num_partitions: 1,
            default_replication_factor: 1,
            tls: None,
        }
    }

    /// Whether this node is one of the configured voters.
    pub fn is_voter(&self) -> bool {
        self.voters.contains_key(&self.node_id)
    }

    /// Checks the settings that would otherwise fail deep inside Raft.
    pub fn validate(&self) -> Result<(), QuorumError> {
        let invalid = |msg: String| Err(QuorumError::InvalidConfig(msg));
        if self.node_id < 0 {
            return invalid(format!("node id {} must not be negative", self.node_id));
        }
        if self.voters.is_empty() {
            return invalid("controller.quorum.voters is empty".to_string());
        }
        if let Some(id) = self.voters.keys().find(|id| **id < 0) {
            return invalid(format!("voter id {id} must not be negative"));
        }
        if self.heartbeat_interval_ms == 0 {
            return invalid("raft heartbeat interval must be positive".to_string());
        }
        if self.election_timeout_min_ms <= self.heartbeat_interval_ms {
            return invalid(format!(
                "election timeout min {}ms must exceed the heartbeat interval {}ms",
                self.election_timeout_min_ms, self.heartbeat_interval_ms
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return invalid(format!(
                "election timeout max {}ms must exceed min {}ms",
                self.election_timeout_max_ms, self.election_timeout_min_ms
            ));
        }
        if self.broker_heartbeat_interval_ms == 0
            || self.broker_session_timeout_ms <= self.broker_heartbeat_interval_ms
        {
            return invalid(format!(
                "broker.session.timeout.ms {} must exceed broker.heartbeat.interval.ms {} (> 0)",
                self.broker_session_timeout_ms, self.broker_heartbeat_interval_ms
            ));
        }
        if self.leader_imbalance_check_interval_ms == Some(0) {
            return invalid("leader imbalance check interval must be positive".to_string());
        }
        if self.snapshot_after_logs == 0 {
            return invalid("snapshot_after_logs must be positive".to_string());
        }
        if self.request_timeout_ms == 0 {
            return invalid("request timeout must be positive".to_string());
        }
        if self.default_num_partitions <= 0 {
            return invalid("num.partitions must be positive".to_string());
        }
        if self.default_replication_factor <= 0 {
            return invalid("default.replication.factor must be positive".to_string());
        }
        Ok(())
    }
}

/// The Kubernetes default voter set: StatefulSet pods with ordinals `0..count`, reached through
/// the headless Service, e.g. `0 -> rivulet-0.rivulet-headless:9093`.
pub fn ordinal_voters(
    statefulset: &str,
    headless_service: &str,
    port: u16,
    count: i32,
) -> BTreeMap<i32, String> {
    (0..count.max(0))
        .map(|i| (i, format!("{statefulset}-{i}.{headless_service}:{port}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_ordinal_voters() {
        let voters = ordinal_voters("rivulet", "rivulet-headless", 9093, 3);
        assert_eq!(voters, kafka_core::parse_voters("0@rivulet-0.rivulet-headless:9093,1@rivulet-1.rivulet-headless:9093,2@rivulet-2.rivulet-headless:9093").unwrap());
    }

    #[test]
    fn validates_timing() {
        let mut c = QuorumConfig::new(
            0,
            "127.0.0.1:9093".parse().unwrap(),
            "127.0.0.1:9093".into(),
            BTreeMap::from([(0, "127.0.0.1:9093".to_string())]),
            PathBuf::from("/tmp/x"),
        );
        assert!(c.validate().is_ok());
        assert!(c.is_voter());
        c.election_timeout_max_ms = c.election_timeout_min_ms;
        assert!(c.validate().is_err());
    }
}

//! Liveness, readiness and the state gauges refreshed before each metrics scrape.

use std::collections::BTreeMap;

use raft_controller::{BrokerState, NO_LEADER};
use tokio::sync::watch;

use crate::parts::Parts;

/// Why the broker is or is not ready to take traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: String,
}

/// Ready = every log dir online, registered with the quorum, not fenced, partition roles
/// applied, and every followed partition caught up with its leader.
pub fn readiness(
    parts: &Parts,
    lifecycle: &watch::Receiver<BrokerState>,
    roles_applied: &watch::Receiver<bool>,
) -> Readiness {
    let state = lifecycle.borrow().clone();
    let offline = parts.logs.offline_dirs();
    let (ready, reason) = if let Some((dir, why)) = offline.first() {
        (
            false,
            format!("log dir {} is offline: {why}", dir.display()),
        )
    } else if !state.registered {
        (false, "not registered with the metadata quorum".to_string())
    } else if state.fenced {
        (false, "fenced by the controller".to_string())
    } else if state.in_controlled_shutdown {
        (false, "shutting down".to_string())
    } else if !*roles_applied.borrow() {
        (false, "partition roles not applied yet".to_string())
    } else if !parts.replicas.followers_caught_up() {
        (
            false,
            format!(
                "followed partitions lag by up to {} records",
                parts.replicas.max_follower_lag()
            ),
        )
    } else {
        (true, "ready".to_string())
    };
    Readiness { ready, reason }
}

/// Refreshes the gauges that describe state rather than count events. Scrapes must not run
/// this concurrently (labelled families are reset and refilled); [`crate::http`] serialises them.
pub fn refresh_gauges(parts: &Parts) {
    let m = &parts.metrics;
    for listener in &parts.config.listeners {
        m.declare_listener(&listener.name);
    }
    let status = parts.quorum.status();
    m.raft_term.set(saturating_i64(status.term));
    m.raft_commit_index.set(saturating_i64(status.commit_index));
    m.raft_applied_index
        .set(saturating_i64(status.applied_index));
    m.raft_leader
        .set(status.leader.map(i64::from).unwrap_or(-1));
    refresh_controller_gauges(parts);
    refresh_partition_gauges(parts);
    m.replica_fetch_lag.set(parts.replicas.max_follower_lag());
    let offline = parts.logs.offline_dirs();
    m.offline_log_dirs.set(saturating_i64(offline.len()));
    for usage in parts.logs.dir_usage() {
        let dir = usage.path.display().to_string();
        let is_offline = offline.iter().any(|(path, _)| *path == usage.path);
        m.log_dir_offline
            .with_label_values(&[&dir])
            .set(i64::from(is_offline));
        m.log_dir_free
            .with_label_values(&[&dir])
            .set(saturating_i64(usage.free_bytes));
        m.log_dir_total
            .with_label_values(&[&dir])
            .set(saturating_i64(usage.total_bytes));
    }
    parts.groups.refresh_metrics();
}

/// Cluster-wide gauges, reported by the active controller only (0 on every other broker), so a
/// sum over the cluster counts each thing once and `activecontrollercount` sums to exactly 1.
fn refresh_controller_gauges(parts: &Parts) {
    let m = &parts.metrics;
    let is_controller = parts.quorum.is_controller();
    m.active_controller.set(i64::from(is_controller));
    if !is_controller {
        for gauge in [
            &m.offline_partitions,
            &m.active_brokers,
            &m.fenced_brokers,
            &m.global_topics,
            &m.global_partitions,
        ] {
            gauge.set(0);
        }
        return;
    }
    let image = parts.quorum.image();
    let partitions = || image.topics.values().flat_map(|t| t.partitions.iter());
    let leader_alive = |leader: i32| image.brokers.get(&leader).is_some_and(|b| !b.fenced);
    let offline = partitions()
        .filter(|p| p.leader == NO_LEADER || !leader_alive(p.leader))
        .count();
    let fenced = image.brokers.values().filter(|b| b.fenced).count();
    m.offline_partitions.set(saturating_i64(offline));
    m.active_brokers
        .set(saturating_i64(image.brokers.len() - fenced));
    m.fenced_brokers.set(saturating_i64(fenced));
    m.global_topics.set(saturating_i64(image.topics.len()));
    m.global_partitions
        .set(saturating_i64(partitions().count()));
}

/// Per-broker replica gauges: what this broker hosts and leads, and how replicated it is.
fn refresh_partition_gauges(parts: &Parts) {
    let m = &parts.metrics;
    let mut leaders = 0;
    let mut under_replicated = 0;
    let mut under_min_isr = 0;
    let mut at_min_isr = 0;
    m.log_size.reset();
    m.log_end_offset.reset();
    m.partition_under_replicated.reset();
    let partitions = parts.replicas.partitions();
    for p in &partitions {
        let log = p.log();
        let partition = p.tp.partition.to_string();
        let labels = [p.tp.topic.as_str(), partition.as_str()];
        m.log_size
            .with_label_values(&labels)
            .set(saturating_i64(log.size_bytes()));
        m.log_end_offset
            .with_label_values(&labels)
            .set(log.log_end_offset());
        let mut lagging = false;
        if p.is_leader() {
            leaders += 1;
            let a = p.assignment();
            let isr = i32::try_from(a.isr.len()).unwrap_or(i32::MAX);
            lagging = a.isr.len() < a.replicas.len();
            under_replicated += i64::from(lagging);
            under_min_isr += i64::from(isr < p.min_insync_replicas());
            at_min_isr += i64::from(isr == p.min_insync_replicas());
        }
        m.partition_under_replicated
            .with_label_values(&labels)
            .set(i64::from(lagging));
    }
    m.partition_count.set(saturating_i64(partitions.len()));
    m.leader_count.set(leaders);
    m.under_replicated.set(under_replicated);
    m.under_min_isr.set(under_min_isr);
    m.at_min_isr.set(at_min_isr);
}

fn saturating_i64<N: TryInto<i64>>(n: N) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Leaders per topic, for logs at shutdown.
pub fn leadership_summary(parts: &Parts) -> BTreeMap<String, usize> {
    parts.replicas.leader_counts()
}

//! Liveness, readiness and the state gauges refreshed before each metrics scrape.

use std::collections::BTreeMap;

use raft_controller::{BrokerState, NO_LEADER};
use tokio::sync::watch;

use crate::context::Context;

/// Why the broker is or is not ready to take traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: String,
}

/// Ready = registered with the quorum, not fenced, partition roles applied, and every
/// followed partition caught up with its leader.
pub fn readiness(ctx: &Context, lifecycle: &watch::Receiver<BrokerState>, roles_applied: &watch::Receiver<bool>) -> Readiness {
    let state = lifecycle.borrow().clone();
    let (ready, reason) = if !state.registered {
        (false, "not registered with the metadata quorum".to_string())
    } else if state.fenced {
        (false, "fenced by the controller".to_string())
    } else if state.in_controlled_shutdown {
        (false, "shutting down".to_string())
    } else if !*roles_applied.borrow() {
        (false, "partition roles not applied yet".to_string())
    } else if !ctx.replicas.followers_caught_up() {
        (false, format!("followed partitions lag by up to {} records", ctx.replicas.max_follower_lag()))
    } else {
        (true, "ready".to_string())
    };
    Readiness { ready, reason }
}

/// Refreshes the gauges that describe state rather than count events.
pub fn refresh_gauges(ctx: &Context) {
    let m = &ctx.metrics;
    let status = ctx.quorum.status();
    m.raft_term.set(status.term as i64);
    m.raft_commit_index.set(status.commit_index as i64);
    m.raft_applied_index.set(status.applied_index as i64);
    m.raft_leader.set(status.leader.map(i64::from).unwrap_or(-1));
    let is_controller = ctx.quorum.is_controller();
    m.active_controller.set(i64::from(is_controller));

    let image = ctx.quorum.image();
    let mut leaders = 0;
    let mut under_replicated = 0;
    let mut under_min_isr = 0;
    m.log_size.reset();
    m.log_end_offset.reset();
    let partitions = ctx.replicas.partitions();
    for p in &partitions {
        let log = p.log();
        let partition = p.tp.partition.to_string();
        m.log_size
            .with_label_values(&[&p.tp.topic, &partition])
            .set(log.size_bytes() as i64);
        m.log_end_offset
            .with_label_values(&[&p.tp.topic, &partition])
            .set(log.log_end_offset());
        if p.is_leader() {
            leaders += 1;
            let a = p.assignment();
            if a.isr.len() < a.replicas.len() {
                under_replicated += 1;
            }
            if (a.isr.len() as i32) < p.min_insync_replicas() {
                under_min_isr += 1;
            }
        }
    }
    m.partition_count.set(partitions.len() as i64);
    m.leader_count.set(leaders);
    m.under_replicated.set(under_replicated);
    m.under_min_isr.set(under_min_isr);
    let offline = if is_controller {
        image
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.leader == NO_LEADER)
            .count() as i64
    } else {
        0
    };
    m.offline_partitions.set(offline);
    m.replica_fetch_lag.set(ctx.replicas.max_follower_lag());
    for usage in ctx.logs.dir_usage() {
        let dir = usage.path.display().to_string();
        m.log_dir_free.with_label_values(&[&dir]).set(usage.free_bytes as i64);
        m.log_dir_total.with_label_values(&[&dir]).set(usage.total_bytes as i64);
    }
    ctx.groups.refresh_metrics();
}

/// Leaders per topic, for logs at shutdown.
pub fn leadership_summary(ctx: &Context) -> BTreeMap<String, usize> {
    ctx.replicas.leader_counts()
}

//! Repairing a replica whose log holds a corrupt batch (found by the read-time CRC check): the
//! read is refused with KAFKA_STORAGE_ERROR, and the replica gets the data again from a good
//! copy. A follower cuts its log before the batch and re-fetches from the leader; a leader first
//! resigns to another in-sync replica (ResignLeadership), then does the same as a follower.
//! With no other in-sync replica the leader keeps its log and keeps refusing the bad range:
//! nothing acknowledged is thrown away without a copy elsewhere.

use std::sync::Arc;

use raft_controller::{Quorum, ResignLeadership};
use tracing::{error, info, warn};

use super::partition::{Assignment, Corruption, Partition};
use crate::metrics::Metrics;

/// What a replica does about a corrupt batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RepairPlan {
    /// Follower: cut the log before the batch and fetch it again.
    Refetch,
    /// Leader with another eligible ISR member: hand leadership over, then re-fetch.
    Resign,
    /// Leader and the only usable copy: keep refusing reads of the corrupt range.
    Hold,
}

/// The plan for `node_id`'s replica with `assignment`; `eligible` says whether a broker may lead.
pub(crate) fn plan(
    node_id: i32,
    assignment: &Assignment,
    eligible: &dyn Fn(i32) -> bool,
) -> RepairPlan {
    if assignment.leader != node_id {
        return RepairPlan::Refetch;
    }
    if assignment.isr.iter().any(|r| *r != node_id && eligible(*r)) {
        RepairPlan::Resign
    } else {
        RepairPlan::Hold
    }
}

/// Everything a repair needs from the broker.
pub(crate) struct RepairContext {
    pub node_id: i32,
    pub broker_epoch: i64,
    pub quorum: Quorum,
    pub metrics: Arc<Metrics>,
}

/// Reports a corrupt batch found reading `partition` and starts its repair (once per batch:
/// later reads of the same range only get the error).
pub(crate) fn report(
    ctx: RepairContext,
    partition: &Arc<Partition>,
    corruption: Corruption,
    eligible: &dyn Fn(i32) -> bool,
) {
    if !partition.note_corruption(corruption.offset) {
        return;
    }
    ctx.metrics.log_corruptions.inc();
    let assignment = partition.assignment();
    let plan = plan(ctx.node_id, &assignment, eligible);
    error!(
        topic = %partition.tp.topic,
        partition = partition.tp.partition,
        segment = corruption.segment,
        position = corruption.position,
        offset = corruption.offset,
        leader = assignment.leader,
        plan = ?plan,
        "corrupt record batch in the log; refusing to serve it"
    );
    match plan {
        RepairPlan::Refetch => {
            let partition = partition.clone();
            tokio::task::spawn_blocking(move || refetch(&partition));
        }
        RepairPlan::Resign => {
            let request = ResignLeadership {
                broker_id: ctx.node_id,
                broker_epoch: ctx.broker_epoch,
                topic_id: partition.topic_id,
                partition: partition.tp.partition,
                leader_epoch: assignment.leader_epoch,
            };
            let partition = partition.clone();
            tokio::spawn(async move {
                match ctx.quorum.resign_leadership(request).await {
                    Ok(Ok(state)) => {
                        info!(partition = %partition.tp, leader = state.leader, epoch = state.leader_epoch,
                              "resigned leadership of a partition with a corrupt log; will re-fetch");
                        // The new image makes this replica a follower; the replica manager
                        // completes the repair when it applies it.
                    }
                    Ok(Err(e)) => {
                        warn!(partition = %partition.tp, error = %e, "leader resignation refused; keeping the corrupt range unreadable");
                    }
                    Err(e) => {
                        warn!(partition = %partition.tp, error = %e, "leader resignation could not reach the controller");
                    }
                }
            });
        }
        RepairPlan::Hold => {
            error!(
                topic = %partition.tp.topic,
                partition = partition.tp.partition,
                offset = corruption.offset,
                "no other in-sync replica holds this data; the corrupt range stays unreadable"
            );
        }
    }
}

/// Follower half of a repair: cut the log before the corrupt batch (the fetcher then fetches
/// from there).
pub(crate) fn refetch(partition: &Partition) {
    match partition.repair_as_follower() {
        Ok(Some(offset)) => {
            info!(partition = %partition.tp, truncated_to = offset, "cut corrupt batches; re-fetching them from the leader")
        }
        Ok(None) => {}
        Err(e) => error!(partition = %partition.tp, error = %e, "cutting corrupt batches failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(leader: i32, isr: &[i32]) -> Assignment {
        Assignment {
            leader,
            leader_epoch: 3,
            partition_epoch: 5,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn followers_refetch_leaders_resign_or_hold() {
        let all = |_: i32| true;
        assert_eq!(
            plan(2, &assignment(1, &[1, 2, 3]), &all),
            RepairPlan::Refetch
        );
        assert_eq!(plan(2, &assignment(1, &[1]), &all), RepairPlan::Refetch);
        assert_eq!(
            plan(1, &assignment(1, &[1, 2, 3]), &all),
            RepairPlan::Resign
        );
        assert_eq!(plan(1, &assignment(1, &[1]), &all), RepairPlan::Hold);
        let only_1 = |r: i32| r == 1;
        assert_eq!(
            plan(1, &assignment(1, &[1, 2, 3]), &only_1),
            RepairPlan::Hold
        );
    }
}

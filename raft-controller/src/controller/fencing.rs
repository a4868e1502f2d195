//! Fencing, unfencing and controlled shutdown as they change the image: which ISRs a broker
//! leaves, which leaderships move, and when a shutting-down broker may exit.

use std::collections::BTreeSet;

use tracing::{info, warn};

use crate::controller::election::{change_partition, leader_from_isr, unclean_leader};
use crate::image::{MetadataImage, PartitionState, NO_LEADER};

/// Fences `broker`: it leaves every ISR it is not the last member of, and every partition it
/// led gets a new leader from the remaining ISR (or none; or, where the topic allows unclean
/// election, any live replica).
pub(crate) fn fence(image: &mut MetadataImage, broker: i32) {
    let Some(reg) = image.brokers.get_mut(&broker) else {
        return;
    };
    if reg.fenced {
        return;
    }
    reg.fenced = true;
    reg.in_controlled_shutdown = false;
    reg.controlled_shutdown_offset = None;
    info!(
        broker,
        broker_epoch = reg.epoch,
        offset = image.offset,
        "broker fenced"
    );
    let eligible = image.eligible_brokers();
    for name in topics_involving(image, broker) {
        let unclean = image
            .topic(&name)
            .is_some_and(|t| image.unclean_election_allowed(t));
        let Some(topic) = image.topic_mut(&name) else {
            continue;
        };
        for p in topic
            .partitions
            .iter_mut()
            .filter(|p| p.isr.contains(&broker) || p.leader == broker)
        {
            let (leader, isr) = without_broker(p, broker, &eligible, unclean);
            let old_leader = p.leader;
            if change_partition(p, leader, isr) && old_leader != p.leader {
                log_leader_change(&name, p, old_leader, "broker fenced");
            }
        }
    }
}

/// Unfences `broker`; leaderless partitions whose ISR contains it (or, with unclean election
/// allowed, whose replicas do) elect a leader again.
pub(crate) fn unfence(image: &mut MetadataImage, broker: i32) {
    let Some(reg) = image.brokers.get_mut(&broker) else {
        return;
    };
    if !reg.fenced {
        return;
    }
    reg.fenced = false;
    info!(
        broker,
        broker_epoch = reg.epoch,
        offset = image.offset,
        "broker unfenced"
    );
    let eligible = image.eligible_brokers();
    let leaderless = topics_where(image, |p| {
        p.leader == NO_LEADER && p.replicas.contains(&broker)
    });
    for name in leaderless {
        let unclean = image
            .topic(&name)
            .is_some_and(|t| image.unclean_election_allowed(t));
        let Some(topic) = image.topic_mut(&name) else {
            continue;
        };
        for p in topic
            .partitions
            .iter_mut()
            .filter(|p| p.leader == NO_LEADER)
        {
            let (leader, isr) = if p.isr.contains(&broker) {
                match leader_from_isr(p, &p.isr, &eligible) {
                    Some(l) => (l, p.isr.clone()),
                    None => continue,
                }
            } else if unclean && p.replicas.contains(&broker) {
                (broker, vec![broker])
            } else {
                continue;
            };
            if change_partition(p, leader, isr) {
                log_leader_change(&name, p, NO_LEADER, "broker unfenced");
            }
        }
    }
}

/// Starts a controlled shutdown of `broker` at log index `index`: its leaderships move to other
/// eligible ISR members, and it leaves every ISR where others remain. Partitions where it is
/// the only possible leader stay as they are until it is fenced.
pub(crate) fn begin_controlled_shutdown(image: &mut MetadataImage, index: u64, broker: i32) {
    let Some(reg) = image.brokers.get_mut(&broker) else {
        return;
    };
    if reg.in_controlled_shutdown {
        return;
    }
    reg.in_controlled_shutdown = true;
    reg.controlled_shutdown_offset = Some(index);
    info!(
        broker,
        broker_epoch = reg.epoch,
        offset = index,
        "broker began controlled shutdown"
    );
    let eligible = image.eligible_brokers();
    for name in topics_involving(image, broker) {
        let Some(topic) = image.topic_mut(&name) else {
            continue;
        };
        for p in topic
            .partitions
            .iter_mut()
            .filter(|p| p.isr.contains(&broker))
        {
            let remaining: Vec<i32> = p.isr.iter().copied().filter(|r| *r != broker).collect();
            if remaining.is_empty() {
                continue;
            }
            let leader = if p.leader == broker {
                match leader_from_isr(p, &remaining, &eligible) {
                    Some(l) => l,
                    None => {
                        warn!(topic = %name, partition = p.partition, broker,
                              "no other eligible in-sync replica; leadership stays until the broker is fenced");
                        continue;
                    }
                }
            } else {
                p.leader
            };
            let old_leader = p.leader;
            if change_partition(p, leader, remaining) && old_leader != p.leader {
                log_leader_change(&name, p, old_leader, "controlled shutdown");
            }
        }
    }
}

/// Whether a broker in controlled shutdown that has applied metadata up to `applied_offset`
/// may exit: it saw its shutdown record and leads nothing that could move elsewhere.
pub(crate) fn shutdown_complete(image: &MetadataImage, broker: i32, applied_offset: u64) -> bool {
    let Some(reg) = image.broker(broker) else {
        return true;
    };
    if reg.fenced {
        return true;
    }
    let Some(cs_offset) = reg
        .controlled_shutdown_offset
        .filter(|_| reg.in_controlled_shutdown)
    else {
        return false;
    };
    if applied_offset < cs_offset {
        return false;
    }
    let eligible = image.eligible_brokers();
    !image
        .partitions_led_by(broker)
        .any(|(_, p)| p.isr.iter().any(|r| *r != broker && eligible.contains(r)))
}

/// New (leader, ISR) of a partition once `broker` is gone from it.
fn without_broker(
    p: &PartitionState,
    broker: i32,
    eligible: &BTreeSet<i32>,
    unclean: bool,
) -> (i32, Vec<i32>) {
    let remaining: Vec<i32> = p.isr.iter().copied().filter(|r| *r != broker).collect();
    let leader_stays = p.leader != broker && p.leader != NO_LEADER && eligible.contains(&p.leader);
    if remaining.is_empty() {
        // The last in-sync replica stays in the ISR so that it can come back as leader.
        if leader_stays {
            return (p.leader, p.isr.clone());
        }
        return match unclean.then(|| unclean_leader(p, eligible)).flatten() {
            Some(l) => (l, vec![l]),
            None => (NO_LEADER, p.isr.clone()),
        };
    }
    if leader_stays {
        return (p.leader, remaining);
    }
    if let Some(l) = leader_from_isr(p, &remaining, eligible) {
        return (l, remaining);
    }
    match unclean.then(|| unclean_leader(p, eligible)).flatten() {
        Some(l) => (l, vec![l]),
        None => (NO_LEADER, remaining),
    }
}

/// Names of topics with a partition that `broker` is in the ISR of, or leads.
fn topics_involving(image: &MetadataImage, broker: i32) -> Vec<String> {
    topics_where(image, |p| p.isr.contains(&broker) || p.leader == broker)
}

/// Names of topics with a partition matching `pred`.
fn topics_where(image: &MetadataImage, pred: impl Fn(&PartitionState) -> bool) -> Vec<String> {
    image
        .topics
        .values()
        .filter(|t| t.partitions.iter().any(&pred))
        .map(|t| t.name.clone())
        .collect()
}

fn log_leader_change(topic: &str, p: &PartitionState, old_leader: i32, reason: &'static str) {
    info!(topic, partition = p.partition, old_leader, leader = p.leader, leader_epoch = p.leader_epoch,
          partition_epoch = p.partition_epoch, isr = ?p.isr, reason, "partition leader changed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(isr: &[i32], leader: i32) -> PartitionState {
        PartitionState {
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    #[test]
    fn fenced_leader_is_replaced_from_isr() {
        let eligible = BTreeSet::from([2, 3]);
        assert_eq!(
            without_broker(&part(&[1, 2, 3], 1), 1, &eligible, false),
            (2, vec![2, 3])
        );
        assert_eq!(
            without_broker(&part(&[1, 3], 1), 1, &eligible, false),
            (3, vec![3])
        );
    }

    #[test]
    fn follower_leaves_isr_leader_stays() {
        let eligible = BTreeSet::from([1, 3]);
        assert_eq!(
            without_broker(&part(&[1, 2, 3], 1), 2, &eligible, false),
            (1, vec![1, 3])
        );
    }

    #[test]
    fn last_isr_member_stays_without_leader() {
        let eligible = BTreeSet::from([2, 3]);
        assert_eq!(
            without_broker(&part(&[1], 1), 1, &eligible, false),
            (NO_LEADER, vec![1])
        );
        assert_eq!(
            without_broker(&part(&[1], 1), 1, &eligible, true),
            (2, vec![2])
        );
        assert_eq!(
            without_broker(&part(&[1], 1), 1, &BTreeSet::new(), true),
            (NO_LEADER, vec![1])
        );
    }
}

//! Partition leader election: choosing a leader from the ISR (or, unclean, from any live
//! replica), applying a leader/ISR change with the epoch bumps, ElectLeaders, and detecting
//! preferred-leader imbalance for periodic rebalancing.

use std::collections::{BTreeMap, BTreeSet};

use tracing::info;

use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionState, TopicImage, NO_LEADER};
use crate::requests::{ElectionType, PartitionElection};

/// Kafka's `leader.imbalance.per.broker.percentage` default.
const LEADER_IMBALANCE_PERCENTAGE: usize = 10;

/// Sets a partition's leader and ISR, bumping the leader epoch if the leader changed and the
/// partition epoch if anything changed. Returns whether anything changed.
pub(crate) fn change_partition(p: &mut PartitionState, leader: i32, isr: Vec<i32>) -> bool {
    let leader_changed = p.leader != leader;
    if !leader_changed && p.isr == isr {
        return false;
    }
    if leader_changed {
        p.leader_epoch = p.leader_epoch.saturating_add(1);
    }
    p.partition_epoch = p.partition_epoch.saturating_add(1);
    p.leader = leader;
    p.isr = isr;
    true
}

/// The first replica, in assignment order, that is in `isr` and eligible.
pub(crate) fn leader_from_isr(
    p: &PartitionState,
    isr: &[i32],
    eligible: &BTreeSet<i32>,
) -> Option<i32> {
    p.replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && eligible.contains(r))
}

/// The first eligible replica in assignment order, in sync or not (unclean election).
pub(crate) fn unclean_leader(p: &PartitionState, eligible: &BTreeSet<i32>) -> Option<i32> {
    p.replicas.iter().copied().find(|r| eligible.contains(r))
}

/// Elects leaders for leaderless partitions whose topic allows unclean election (all topics,
/// or just `only_topic`). The new leader becomes the only ISR member.
pub(crate) fn elect_leaderless_unclean(image: &mut MetadataImage, only_topic: Option<&str>) {
    let eligible = image.eligible_brokers();
    let names: Vec<String> = image
        .topics
        .values()
        .filter(|t| only_topic.is_none_or(|only| only == t.name))
        .filter(|t| {
            image.unclean_election_allowed(t) && t.partitions.iter().any(|p| p.leader == NO_LEADER)
        })
        .map(|t| t.name.clone())
        .collect();
    for name in names {
        let Some(topic) = image.topic_mut(&name) else {
            continue;
        };
        for p in topic
            .partitions
            .iter_mut()
            .filter(|p| p.leader == NO_LEADER)
        {
            let candidate =
                leader_from_isr(p, &p.isr, &eligible).or_else(|| unclean_leader(p, &eligible));
            if let Some(leader) = candidate {
                let isr = if p.isr.contains(&leader) {
                    p.isr.clone()
                } else {
                    vec![leader]
                };
                change_partition(p, leader, isr);
                info!(topic = %name, partition = p.partition, leader, leader_epoch = p.leader_epoch,
                      "unclean leader election");
            }
        }
    }
}

/// Applies an ElectLeaders command: one outcome per listed partition.
pub(crate) fn apply_elect_leaders(
    image: &mut MetadataImage,
    kind: ElectionType,
    partitions: &[(String, i32)],
) -> Vec<PartitionElection> {
    let eligible = image.eligible_brokers();
    partitions
        .iter()
        .map(|(topic, partition)| {
            let result = elect_one(image, &eligible, kind, topic, *partition);
            PartitionElection {
                topic: topic.clone(),
                partition: *partition,
                result,
            }
        })
        .collect()
}

fn elect_one(
    image: &mut MetadataImage,
    eligible: &BTreeSet<i32>,
    kind: ElectionType,
    topic: &str,
    partition: i32,
) -> Result<i32, ControllerError> {
    let unknown = || ControllerError::UnknownTopicOrPartition(format!("{topic}-{partition}"));
    let index = usize::try_from(partition).map_err(|_| unknown())?;
    let t = image.topic_mut(topic).ok_or_else(unknown)?;
    let p = t.partitions.get_mut(index).ok_or_else(unknown)?;
    match kind {
        ElectionType::Preferred => {
            let preferred = *p
                .replicas
                .first()
                .ok_or(ControllerError::PreferredLeaderNotAvailable)?;
            if p.leader == preferred {
                return Err(ControllerError::ElectionNotNeeded);
            }
            if !p.isr.contains(&preferred) || !eligible.contains(&preferred) {
                return Err(ControllerError::PreferredLeaderNotAvailable);
            }
            let isr = p.isr.clone();
            change_partition(p, preferred, isr);
            info!(
                topic,
                partition,
                leader = preferred,
                leader_epoch = p.leader_epoch,
                "preferred leader elected"
            );
            Ok(preferred)
        }
        ElectionType::Unclean => {
            if p.leader != NO_LEADER {
                return Err(ControllerError::ElectionNotNeeded);
            }
            let leader = leader_from_isr(p, &p.isr, eligible)
                .or_else(|| unclean_leader(p, eligible))
                .ok_or(ControllerError::EligibleLeadersNotAvailable)?;
            let isr = if p.isr.contains(&leader) {
                p.isr.clone()
            } else {
                vec![leader]
            };
            change_partition(p, leader, isr);
            info!(
                topic,
                partition,
                leader,
                leader_epoch = p.leader_epoch,
                "unclean leader elected on request"
            );
            Ok(leader)
        }
    }
}

/// Whether a preferred election would move leadership of `p` to its preferred replica.
fn preferred_election_possible(p: &PartitionState, eligible: &BTreeSet<i32>) -> bool {
    p.replicas
        .first()
        .is_some_and(|&pref| p.leader != pref && p.isr.contains(&pref) && eligible.contains(&pref))
}

/// Partitions to move back to their preferred leader: as Kafka's auto rebalance, only for
/// preferred brokers whose share of not-led preferred partitions exceeds 10%.
pub(crate) fn imbalanced_partitions(image: &MetadataImage) -> Vec<(String, i32)> {
    let eligible = image.eligible_brokers();
    let mut preferred_total: BTreeMap<i32, usize> = BTreeMap::new();
    let mut movable: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    let mut not_led: BTreeMap<i32, usize> = BTreeMap::new();
    for t in image.topics.values() {
        collect_imbalance(
            t,
            &eligible,
            &mut preferred_total,
            &mut not_led,
            &mut movable,
        );
    }
    let mut out = Vec::new();
    for (broker, total) in preferred_total {
        let off = not_led.get(&broker).copied().unwrap_or(0);
        if off * 100 > total * LEADER_IMBALANCE_PERCENTAGE {
            out.extend(movable.remove(&broker).unwrap_or_default());
        }
    }
    out
}

fn collect_imbalance(
    t: &TopicImage,
    eligible: &BTreeSet<i32>,
    preferred_total: &mut BTreeMap<i32, usize>,
    not_led: &mut BTreeMap<i32, usize>,
    movable: &mut BTreeMap<i32, Vec<(String, i32)>>,
) {
    for p in &t.partitions {
        let Some(&pref) = p.replicas.first() else {
            continue;
        };
        *preferred_total.entry(pref).or_default() += 1;
        if p.leader != pref {
            *not_led.entry(pref).or_default() += 1;
            if preferred_election_possible(p, eligible) {
                movable
                    .entry(pref)
                    .or_default()
                    .push((t.name.clone(), p.partition));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionState {
        PartitionState {
            partition: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    #[test]
    fn epochs_bump_on_change_only() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        assert!(!change_partition(&mut p, 1, vec![1, 2, 3]));
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
        assert!(change_partition(&mut p, 1, vec![1, 2]));
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 1));
        assert!(change_partition(&mut p, 2, vec![2]));
        assert_eq!((p.leader_epoch, p.partition_epoch), (1, 2));
    }

    #[test]
    fn leader_choice_follows_replica_order() {
        let p = part(&[3, 1, 2], &[1, 2], 1);
        let eligible = BTreeSet::from([1, 2, 3]);
        assert_eq!(leader_from_isr(&p, &[1, 2], &eligible), Some(1));
        assert_eq!(leader_from_isr(&p, &[2], &eligible), Some(2));
        assert_eq!(leader_from_isr(&p, &[2], &BTreeSet::from([1])), None);
        assert_eq!(unclean_leader(&p, &eligible), Some(3));
    }
}

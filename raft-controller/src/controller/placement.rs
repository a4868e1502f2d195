//! Replica placement for new topics and partitions, after Kafka's assignment algorithm:
//! brokers are arranged so racks alternate, partition `p`'s first replica (its preferred leader)
//! rotates through that list from a random start so leaders are balanced, and the other replicas
//! follow at a per-round shift, skipping brokers whose rack (then whose id) is already used
//! while an unused one remains.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;

use crate::error::ControllerError;

/// A broker as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlacementBroker {
    pub(crate) id: i32,
    pub(crate) rack: Option<String>,
}

/// Where the placement starts; Kafka picks both at random for new topics.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlacementStart {
    /// Index in the arranged broker list of partition `first_partition`'s leader.
    pub(crate) start_index: usize,
    /// Shift between the first and second replica.
    pub(crate) replica_shift: usize,
    /// Partition id of the first partition placed (existing partition count when adding).
    pub(crate) first_partition: usize,
}

impl PlacementStart {
    /// A random start for a new topic over `broker_count` brokers.
    pub(crate) fn random(broker_count: usize) -> Self {
        let mut rng = rand::rng();
        let n = broker_count.max(1);
        PlacementStart {
            start_index: rng.random_range(0..n),
            replica_shift: rng.random_range(0..n),
            first_partition: 0,
        }
    }
}

/// Assigns `replication_factor` replicas to each of `partitions` partitions over `brokers`.
pub(crate) fn assign(
    brokers: &[PlacementBroker],
    partitions: usize,
    replication_factor: usize,
    start: PlacementStart,
) -> Result<Vec<Vec<i32>>, ControllerError> {
    if replication_factor == 0 {
        return Err(ControllerError::InvalidReplicationFactor(
            "Replication factor must be larger than 0.".into(),
        ));
    }
    if replication_factor > brokers.len() {
        return Err(ControllerError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {replication_factor} time(s): The target replication factor of \
             {replication_factor} cannot be reached because only {} broker(s) are registered.",
            brokers.len()
        )));
    }
    let arranged = arrange(brokers);
    let n = arranged.len();
    let racks: BTreeMap<i32, String> = arranged
        .iter()
        .map(|b| (b.id, b.rack.clone().unwrap_or_default()))
        .collect();
    let num_racks = racks.values().collect::<BTreeSet<_>>().len();
    let rack_aware = brokers.iter().any(|b| b.rack.is_some());
    let mut shift = start.replica_shift;
    let mut out = Vec::with_capacity(partitions);
    for partition_id in start.first_partition..start.first_partition + partitions {
        if partition_id > 0 && partition_id % n == 0 {
            shift += 1;
        }
        let first = (partition_id + start.start_index) % n;
        let leader = arranged[first].id;
        let mut replicas = vec![leader];
        if rack_aware {
            place_rack_aware(
                &arranged,
                &racks,
                num_racks,
                first,
                shift * num_racks,
                replication_factor,
                &mut replicas,
            );
        } else {
            for j in 0..replication_factor - 1 {
                replicas.push(arranged[replica_index(first, shift, j, n)].id);
            }
        }
        out.push(replicas);
    }
    Ok(out)
}

fn place_rack_aware(
    arranged: &[PlacementBroker],
    racks: &BTreeMap<i32, String>,
    num_racks: usize,
    first: usize,
    second_shift: usize,
    replication_factor: usize,
    replicas: &mut Vec<i32>,
) {
    let n = arranged.len();
    let rack_of = |id: i32| racks.get(&id).cloned().unwrap_or_default();
    let mut racks_used: BTreeSet<String> = BTreeSet::from([rack_of(replicas[0])]);
    let mut brokers_used: BTreeSet<i32> = BTreeSet::from([replicas[0]]);
    let mut k = 0;
    while replicas.len() < replication_factor && k < n * n + n {
        let broker = arranged[replica_index(first, second_shift, k, n)].id;
        let rack = rack_of(broker);
        let rack_ok = !racks_used.contains(&rack) || racks_used.len() == num_racks;
        let broker_ok = !brokers_used.contains(&broker) || brokers_used.len() == n;
        if rack_ok && broker_ok && !replicas.contains(&broker) {
            replicas.push(broker);
            racks_used.insert(rack);
            brokers_used.insert(broker);
        }
        k += 1;
    }
}

/// Position of the `j`-th follower replica of a partition whose leader is at `first`.
fn replica_index(first: usize, second_shift: usize, j: usize, n: usize) -> usize {
    let shift = 1 + (second_shift + j) % (n - 1).max(1);
    (first + shift) % n
}

/// Brokers sorted by id within each rack, racks interleaved: a1, b1, c1, a2, b2, ...
fn arrange(brokers: &[PlacementBroker]) -> Vec<PlacementBroker> {
    let mut by_rack: BTreeMap<String, Vec<PlacementBroker>> = BTreeMap::new();
    for b in brokers {
        by_rack
            .entry(b.rack.clone().unwrap_or_default())
            .or_default()
            .push(b.clone());
    }
    for list in by_rack.values_mut() {
        list.sort_by_key(|b| b.id);
        list.reverse();
    }
    let mut out = Vec::with_capacity(brokers.len());
    while out.len() < brokers.len() {
        for list in by_rack.values_mut() {
            if let Some(b) = list.pop() {
                out.push(b);
            }
        }
    }
    out
}

/// The position in the arranged list of `broker`, used to continue a topic's rotation when
/// partitions are added.
pub(crate) fn arranged_position(brokers: &[PlacementBroker], broker: i32) -> Option<usize> {
    arrange(brokers).iter().position(|b| b.id == broker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(racks: &[(i32, Option<&str>)]) -> Vec<PlacementBroker> {
        racks
            .iter()
            .map(|(id, rack)| PlacementBroker {
                id: *id,
                rack: rack.map(str::to_string),
            })
            .collect()
    }

    fn start(start_index: usize, replica_shift: usize) -> PlacementStart {
        PlacementStart {
            start_index,
            replica_shift,
            first_partition: 0,
        }
    }

    #[test]
    fn rack_aware_spreads_replicas_over_racks() {
        let bs = brokers(&[
            (0, Some("a")),
            (1, Some("a")),
            (2, Some("b")),
            (3, Some("b")),
            (4, Some("c")),
            (5, Some("c")),
        ]);
        let rack = |id: i32| bs.iter().find(|b| b.id == id).and_then(|b| b.rack.clone());
        for s in 0..6 {
            for shift in 0..6 {
                let a = assign(&bs, 12, 3, start(s, shift)).unwrap();
                for replicas in &a {
                    let distinct_racks: BTreeSet<_> = replicas.iter().map(|r| rack(*r)).collect();
                    assert_eq!(distinct_racks.len(), 3, "{replicas:?}");
                    let distinct: BTreeSet<_> = replicas.iter().collect();
                    assert_eq!(distinct.len(), 3);
                }
                let mut leaders = BTreeMap::new();
                for r in &a {
                    *leaders.entry(r[0]).or_insert(0) += 1;
                }
                assert!(
                    leaders.values().all(|c| *c == 2),
                    "leaders unbalanced: {leaders:?}"
                );
            }
        }
    }

    #[test]
    fn uneven_racks_still_use_distinct_brokers() {
        let bs = brokers(&[
            (0, Some("a")),
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
        ]);
        let a = assign(&bs, 8, 3, start(1, 2)).unwrap();
        for replicas in &a {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "{replicas:?}");
            assert!(
                replicas.contains(&3),
                "rack b must hold a replica: {replicas:?}"
            );
        }
    }

    #[test]
    fn rack_unaware_matches_kafka_round_robin() {
        let bs = brokers(&[(0, None), (1, None), (2, None), (3, None), (4, None)]);
        // Kafka's documented example: start index 0, shift 0 over brokers 0..4.
        let a = assign(&bs, 10, 3, start(0, 0)).unwrap();
        assert_eq!(a[0], vec![0, 1, 2]);
        assert_eq!(a[1], vec![1, 2, 3]);
        assert_eq!(a[4], vec![4, 0, 1]);
        assert_eq!(a[5], vec![0, 2, 3]);
        for r in &a {
            assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 3);
        }
    }

    #[test]
    fn rejects_too_high_replication_factor() {
        let bs = brokers(&[(0, None), (1, None)]);
        assert!(matches!(
            assign(&bs, 1, 3, start(0, 0)),
            Err(ControllerError::InvalidReplicationFactor(_))
        ));
        let a = assign(&bs[..1], 3, 1, start(0, 0)).unwrap();
        assert_eq!(a, vec![vec![0], vec![0], vec![0]]);
    }
}

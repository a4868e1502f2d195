//! A partition leader resigning (its copy of the log is damaged and must be re-fetched):
//! leadership moves to another eligible ISR member and the resigning replica leaves the ISR, so
//! it is not elected again before it has caught up. Refused when no other ISR member could
//! lead: the partition keeps its only intact-so-far copy as leader.

use std::collections::BTreeSet;

use tracing::{info, warn};

use crate::commands::{Applied, CommandResponse};
use crate::controller::election::{change_partition, leader_from_isr};
use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionState};
use crate::requests::ResignLeadership;

/// Applies a ResignLeadership; a stale or impossible request is rejected with the Kafka error.
pub(crate) fn apply_resign_leadership(
    image: &mut MetadataImage,
    req: &ResignLeadership,
) -> CommandResponse {
    let result = resign(image, req);
    if let Err(error) = &result {
        warn!(broker = req.broker_id, topic_id = %req.topic_id, partition = req.partition,
              leader_epoch = req.leader_epoch, %error, "leader resignation rejected");
    }
    result
}

fn resign(image: &mut MetadataImage, req: &ResignLeadership) -> CommandResponse {
    image.check_broker_epoch(req.broker_id, req.broker_epoch)?;
    let eligible = image.eligible_brokers();
    let (name, p) =
        image.led_partition_mut(req.broker_id, req.topic_id, req.partition, req.leader_epoch)?;
    let (leader, isr) = successor(p, req.broker_id, &eligible)
        .ok_or(ControllerError::EligibleLeadersNotAvailable)?;
    change_partition(p, leader, isr);
    info!(topic = %name, partition = p.partition, resigned = req.broker_id, leader,
          leader_epoch = p.leader_epoch, isr = ?p.isr, "leader resigned");
    Ok(Applied::Partition(p.clone()))
}

/// The leader and ISR after `resigning` gives up `p`: the first eligible other ISR member, in
/// assignment order, leads an ISR without the resigning replica.
fn successor(
    p: &PartitionState,
    resigning: i32,
    eligible: &BTreeSet<i32>,
) -> Option<(i32, Vec<i32>)> {
    let isr: Vec<i32> = p.isr.iter().copied().filter(|r| *r != resigning).collect();
    let others: BTreeSet<i32> = eligible
        .iter()
        .copied()
        .filter(|r| *r != resigning)
        .collect();
    leader_from_isr(p, &isr, &others).map(|leader| (leader, isr))
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
            leader_epoch: 4,
            partition_epoch: 7,
        }
    }

    #[test]
    fn leadership_goes_to_the_next_eligible_isr_member() {
        let all = BTreeSet::from([1, 2, 3]);
        assert_eq!(
            successor(&part(&[1, 2, 3], 1), 1, &all),
            Some((2, vec![2, 3]))
        );
        assert_eq!(successor(&part(&[1, 3], 1), 1, &all), Some((3, vec![3])));
        let without_2 = BTreeSet::from([1, 3]);
        assert_eq!(
            successor(&part(&[1, 2, 3], 1), 1, &without_2),
            Some((3, vec![2, 3]))
        );
    }

    #[test]
    fn no_other_eligible_isr_member_means_no_resignation() {
        let all = BTreeSet::from([1, 2, 3]);
        assert_eq!(successor(&part(&[1], 1), 1, &all), None);
        assert_eq!(
            successor(&part(&[1, 2], 1), 1, &BTreeSet::from([1, 3])),
            None
        );
    }

    #[test]
    fn applying_bumps_both_epochs() {
        let mut p = part(&[1, 2, 3], 1);
        let (leader, isr) = successor(&p, 1, &BTreeSet::from([1, 2, 3])).unwrap();
        assert!(change_partition(&mut p, leader, isr));
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 5, 8));
        assert_eq!(p.isr, vec![2, 3]);
    }
}

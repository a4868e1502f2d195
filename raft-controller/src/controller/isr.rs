//! ISR changes proposed by partition leaders (AlterPartition): accepted only from the current
//! leader, at the current leader epoch and partition epoch, for a valid new ISR.

use std::collections::BTreeSet;

use tracing::{info, warn};

use crate::commands::{Applied, CommandResponse};
use crate::controller::election::change_partition;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::requests::AlterPartition;

/// Applies an AlterPartition; a stale or invalid proposal is rejected with the Kafka error.
pub(crate) fn apply_alter_partition(
    image: &mut MetadataImage,
    req: &AlterPartition,
) -> CommandResponse {
    let result = alter(image, req);
    if let Err(error) = &result {
        warn!(broker = req.broker_id, topic_id = %req.topic_id, partition = req.partition,
              leader_epoch = req.leader_epoch, partition_epoch = req.partition_epoch,
              new_isr = ?req.new_isr, %error, "ISR change rejected");
    }
    result
}

fn alter(image: &mut MetadataImage, req: &AlterPartition) -> CommandResponse {
    image.check_broker_epoch(req.broker_id, req.broker_epoch)?;
    let eligible = image.eligible_brokers();
    let (name, p) =
        image.led_partition_mut(req.broker_id, req.topic_id, req.partition, req.leader_epoch)?;
    if req.partition_epoch != p.partition_epoch {
        return Err(ControllerError::InvalidUpdateVersion);
    }
    let mut seen = BTreeSet::new();
    for r in &req.new_isr {
        if !seen.insert(*r) {
            return Err(ControllerError::InvalidRequest(format!(
                "replica {r} is listed twice in the new ISR"
            )));
        }
        if !p.replicas.contains(r) {
            return Err(ControllerError::InvalidRequest(format!(
                "replica {r} is not assigned to the partition"
            )));
        }
        if !p.isr.contains(r) && !eligible.contains(r) {
            return Err(ControllerError::IneligibleReplica(format!(
                "replica {r} is fenced, shutting down or not registered"
            )));
        }
    }
    if !req.new_isr.contains(&p.leader) {
        return Err(ControllerError::InvalidRequest(
            "the new ISR does not contain the leader".into(),
        ));
    }
    let leader = p.leader;
    if change_partition(p, leader, req.new_isr.clone()) {
        info!(topic = %name, partition = p.partition, leader, partition_epoch = p.partition_epoch,
              isr = ?p.isr, "ISR changed");
    }
    Ok(Applied::Partition(p.clone()))
}

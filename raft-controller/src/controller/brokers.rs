//! Broker registration and heartbeats: applying a registration, and deciding what a heartbeat
//! asks of the controller (fence, unfence, start or finish a controlled shutdown).

use tracing::info;
use uuid::Uuid;

use crate::commands::{Applied, CommandResponse, MetadataOp};
use crate::controller::fencing;
use crate::error::ControllerError;
use crate::image::{BrokerRegistration, Endpoint, MetadataImage};
use crate::requests::{BrokerHeartbeat, HeartbeatReply};

/// Applies a registration at log index `index`. A retry by the same incarnation returns its
/// epoch unchanged; a new incarnation replaces the old registration (fencing it first), starts
/// fenced, and gets `index` as broker epoch.
pub(crate) fn apply_register(
    image: &mut MetadataImage,
    index: u64,
    broker_id: i32,
    incarnation_id: Uuid,
    rack: &Option<String>,
    endpoints: &[Endpoint],
) -> CommandResponse {
    if broker_id < 0 {
        return Err(ControllerError::InvalidRequest(format!(
            "invalid broker id {broker_id}"
        )));
    }
    if let Some(existing) = image.brokers.get(&broker_id) {
        if existing.incarnation_id == incarnation_id {
            return Ok(Applied::BrokerEpoch(existing.epoch));
        }
        if !existing.fenced {
            fencing::fence(image, broker_id);
        }
    }
    let epoch = i64::try_from(index)
        .map_err(|_| ControllerError::InvalidRequest("log index overflow".into()))?;
    image.brokers.insert(
        broker_id,
        BrokerRegistration {
            id: broker_id,
            incarnation_id,
            epoch,
            rack: rack.clone(),
            endpoints: endpoints.to_vec(),
            fenced: true,
            in_controlled_shutdown: false,
            controlled_shutdown_offset: None,
        },
    );
    info!(broker = broker_id, broker_epoch = epoch, incarnation = %incarnation_id, rack = ?rack, "broker registered");
    Ok(Applied::BrokerEpoch(epoch))
}

/// What the controller has to write in answer to a heartbeat, if anything.
pub(crate) fn heartbeat_action(
    image: &MetadataImage,
    hb: &BrokerHeartbeat,
) -> Result<Option<MetadataOp>, ControllerError> {
    let reg = image.check_broker_epoch(hb.broker_id, hb.broker_epoch)?;
    let (broker_id, broker_epoch) = (hb.broker_id, hb.broker_epoch);
    let op = if hb.want_fence {
        (!reg.fenced).then_some(MetadataOp::FenceBroker {
            broker_id,
            broker_epoch,
        })
    } else if hb.want_shutdown {
        if reg.fenced {
            None
        } else if !reg.in_controlled_shutdown {
            Some(MetadataOp::BeginControlledShutdown {
                broker_id,
                broker_epoch,
            })
        } else if fencing::shutdown_complete(image, broker_id, hb.current_metadata_offset) {
            // As in Kafka, a broker that completed its controlled shutdown is fenced.
            Some(MetadataOp::FenceBroker {
                broker_id,
                broker_epoch,
            })
        } else {
            None
        }
    } else if reg.fenced && is_caught_up(reg, hb) {
        Some(MetadataOp::UnfenceBroker {
            broker_id,
            broker_epoch,
        })
    } else {
        None
    };
    Ok(op)
}

/// The reply to a heartbeat, from the image after the heartbeat's action was applied.
pub(crate) fn heartbeat_reply(
    image: &MetadataImage,
    hb: &BrokerHeartbeat,
) -> Result<HeartbeatReply, ControllerError> {
    let reg = image.check_broker_epoch(hb.broker_id, hb.broker_epoch)?;
    Ok(HeartbeatReply {
        is_caught_up: is_caught_up(reg, hb),
        is_fenced: reg.fenced,
        should_shut_down: hb.want_shutdown && reg.fenced,
    })
}

/// A broker is caught up once it applied metadata up to its own registration.
fn is_caught_up(reg: &BrokerRegistration, hb: &BrokerHeartbeat) -> bool {
    i64::try_from(hb.current_metadata_offset).is_ok_and(|offset| offset >= reg.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(image: &mut MetadataImage, index: u64, id: i32) -> (Uuid, i64) {
        let inc = Uuid::new_v4();
        let Ok(Applied::BrokerEpoch(epoch)) = apply_register(image, index, id, inc, &None, &[])
        else {
            panic!("registration failed")
        };
        (inc, epoch)
    }

    fn hb(id: i32, epoch: i64, offset: u64) -> BrokerHeartbeat {
        BrokerHeartbeat {
            broker_id: id,
            broker_epoch: epoch,
            current_metadata_offset: offset,
            want_fence: false,
            want_shutdown: false,
        }
    }

    #[test]
    fn registration_is_idempotent_per_incarnation() {
        let mut image = MetadataImage::default();
        let (inc, epoch) = registered(&mut image, 5, 1);
        assert_eq!(epoch, 5);
        assert_eq!(
            apply_register(&mut image, 9, 1, inc, &None, &[]),
            Ok(Applied::BrokerEpoch(5))
        );
        let (_, epoch2) = registered(&mut image, 12, 1);
        assert_eq!(epoch2, 12);
        assert!(image.brokers[&1].fenced);
    }

    #[test]
    fn unfence_only_when_caught_up() {
        let mut image = MetadataImage::default();
        let (_, epoch) = registered(&mut image, 5, 1);
        assert_eq!(heartbeat_action(&image, &hb(1, epoch, 4)), Ok(None));
        assert_eq!(
            heartbeat_action(&image, &hb(1, epoch, 5)),
            Ok(Some(MetadataOp::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 5
            }))
        );
        assert_eq!(
            heartbeat_action(&image, &hb(1, epoch + 1, 5)),
            Err(ControllerError::StaleBrokerEpoch)
        );
        assert_eq!(
            heartbeat_action(&image, &hb(2, epoch, 5)),
            Err(ControllerError::BrokerIdNotRegistered(2))
        );
    }
}

//! Fetch from the closest replica (KIP-392): a consumer that says which rack it is in reads from
//! an in-sync replica in that rack, saving cross-zone traffic.

use raft_controller::MetadataImage;
use storage::TopicPartition;

/// The replica a consumer in `client_rack` should read `tp` from, or `None` to keep reading
/// from the leader (the leader is in that rack, or no in-sync replica is).
pub fn preferred_read_replica(
    image: &MetadataImage,
    tp: &TopicPartition,
    client_rack: &str,
    leader: i32,
) -> Option<i32> {
    let state = image.partition(&tp.topic, tp.partition)?;
    let rack_of = |id: i32| {
        image
            .brokers
            .get(&id)
            .filter(|b| !b.fenced && !b.in_controlled_shutdown)
            .and_then(|b| b.rack.as_deref())
    };
    if rack_of(leader) == Some(client_rack) {
        return None;
    }
    let candidates: Vec<i32> = state
        .isr
        .iter()
        .copied()
        .filter(|id| *id != leader && rack_of(*id) == Some(client_rack))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    // Spread partitions over the candidates deterministically.
    let spread = tp.partition.unsigned_abs() as usize % candidates.len();
    candidates.get(spread).copied()
}

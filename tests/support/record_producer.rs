//! Which idempotent producer wrote a record: a raw Fetch at the record's offset, decoded with
//! kafka-protocol, gives the producer id and epoch of its batch (librdkafka's consumer API does
//! not show them). Used to tell a broker that wrote a batch twice from a client that sent a
//! record again under a new producer epoch, which no broker can recognise as a repeat.

use std::io;
use std::net::SocketAddr;

use kafka_protocol::records::RecordBatchDecoder;

use super::raw::{consumer_fetch, RawConnection};

/// The producer id and epoch a record was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub id: i64,
    pub epoch: i16,
}

impl ProducerIdentity {
    /// True if `later` is this producer again under a higher epoch: a record it wrote under
    /// this identity and again under `later` was sent twice by the client (librdkafka re-sends
    /// messages whose fate it does not know after bumping its epoch, confluentinc/librdkafka
    /// #4953); sequences start again at 0 in a new epoch, so no broker can match the two.
    pub fn bumped_to(self, later: ProducerIdentity) -> bool {
        self.id == later.id && self.id >= 0 && later.epoch > self.epoch
    }
}

/// Fetches `offset` of `topic`/`partition` from `leader` and returns its batch's producer, or
/// None if the leader returned no record at that offset.
pub fn producer_of(
    leader: SocketAddr,
    topic: &str,
    partition: i32,
    offset: i64,
) -> io::Result<Option<ProducerIdentity>> {
    let request = consumer_fetch(topic, partition, offset, 0);
    let response = RawConnection::connect(leader).request(&request, 12)?;
    let data = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "partition not in response"))?;
    if data.error_code != 0 {
        return Err(io::Error::other(format!(
            "fetch of {topic}/{partition} at {offset}: error {}",
            data.error_code
        )));
    }
    let mut records = data.records.clone().unwrap_or_default();
    // The response may end in a partial batch; every whole batch before it decodes.
    while let Ok(set) = RecordBatchDecoder::decode(&mut records) {
        if let Some(r) = set.records.iter().find(|r| r.offset == offset) {
            return Ok(Some(ProducerIdentity {
                id: r.producer_id,
                epoch: r.producer_epoch,
            }));
        }
    }
    Ok(None)
}

//! Test-only record batch builder on top of kafka-protocol's independent encoder.

use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Compression, Record, TimestampType};

/// One record: key, value, timestamp.
pub(crate) type Rec = (Option<Vec<u8>>, Option<Vec<u8>>, i64);
/// A keyed record by reference: key, value (None = tombstone), timestamp.
pub(crate) type KeyedRec<'a> = (&'a [u8], Option<&'a [u8]>, i64);

/// What to put in a batch.
#[derive(Clone, Debug)]
pub(crate) struct BatchSpec {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
    pub compression: Compression,
    pub records: Vec<Rec>,
}

impl BatchSpec {
    /// Key-less records with the given values, timestamps 1000, 1001, ...
    pub(crate) fn values(values: &[&[u8]]) -> BatchSpec {
        BatchSpec::records(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| (None, Some(v.to_vec()), 1000 + i as i64))
                .collect(),
        )
    }

    /// Keyed records `(key, value-or-tombstone, timestamp)`.
    pub(crate) fn keyed(records: &[KeyedRec<'_>]) -> BatchSpec {
        BatchSpec::records(
            records
                .iter()
                .map(|(k, v, ts)| (Some(k.to_vec()), v.map(|v| v.to_vec()), *ts))
                .collect(),
        )
    }

    pub(crate) fn records(records: Vec<Rec>) -> BatchSpec {
        BatchSpec {
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            compression: Compression::None,
            records,
        }
    }

    /// Idempotent producer fields.
    pub(crate) fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> BatchSpec {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }
}

/// Encodes the batch with kafka-protocol.
pub(crate) fn batch(spec: &BatchSpec) -> Bytes {
    let records: Vec<Record> = spec
        .records
        .iter()
        .enumerate()
        .map(|(i, (key, value, ts))| Record {
            transactional: spec.transactional,
            control: spec.control,
            delete_horizon: false,
            partition_leader_epoch: spec.partition_leader_epoch,
            producer_id: spec.producer_id,
            producer_epoch: spec.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: spec.base_offset + i as i64,
            sequence: spec.base_sequence.wrapping_add(i as i32),
            timestamp: *ts,
            key: key.clone().map(Bytes::from),
            value: value.clone().map(Bytes::from),
            headers: IndexMap::new(),
        })
        .collect();
    crate::plain_batch::encode(&records, spec.compression).expect("encode test batch")
}

/// A transaction marker batch (commit when `commit`), as a coordinator writes it.
pub(crate) fn marker(producer_id: i64, epoch: i16, commit: bool, ts: i64) -> Bytes {
    let key = vec![0, 0, 0, u8::from(commit)];
    let value = vec![0, 0, 0, 0, 0, 5];
    batch(&BatchSpec {
        transactional: true,
        control: true,
        producer_id,
        producer_epoch: epoch,
        base_sequence: -1,
        ..BatchSpec::records(vec![(Some(key), Some(value), ts)])
    })
}

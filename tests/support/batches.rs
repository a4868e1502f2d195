//! Kafka v2 record batches built with kafka-protocol's encoder, for tests that send raw
//! produce requests.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// An idempotent producer's identity and the sequence of the batch's first record.
#[derive(Debug, Clone, Copy)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub first_sequence: i32,
}

/// One uncompressed batch of `count` records with keys `k<i>` (when `keyed`) and the given values.
pub fn batch(
    count: usize,
    keyed: bool,
    value: impl Fn(usize) -> Bytes,
    producer: Option<Producer>,
) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.map_or(-1, |p| p.id),
            producer_epoch: producer.map_or(-1, |p| p.epoch),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch only while offset - sequence is constant;
            // without a producer this gives base sequence -1.
            sequence: producer.map_or(-1, |p| p.first_sequence) + i as i32,
            timestamp: 1_700_000_000_000,
            key: keyed.then(|| Bytes::from(format!("k{i}"))),
            value: Some(value(i)),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

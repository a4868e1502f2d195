//! Shared helpers for the storage integration tests: record batches built with kafka-protocol's
//! encoder (independent of the code under test) and a decoder for what the log returns.

#![allow(dead_code)]

use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use storage::{Log, LogConfig, TopicPartition};

/// A record to produce: key, value (None = tombstone), timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
}

impl Rec {
    pub fn value(value: &[u8], timestamp: i64) -> Rec {
        Rec {
            key: None,
            value: Some(value.to_vec()),
            timestamp,
        }
    }

    pub fn keyed(key: &[u8], value: Option<&[u8]>, timestamp: i64) -> Rec {
        Rec {
            key: Some(key.to_vec()),
            value: value.map(|v| v.to_vec()),
            timestamp,
        }
    }
}

/// Producer fields of a batch.
#[derive(Clone, Copy, Debug)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub sequence: i32,
    pub transactional: bool,
}

/// Encodes one batch with kafka-protocol.
pub fn encode(
    base_offset: i64,
    leader_epoch: i32,
    records: &[Rec],
    producer: Option<Producer>,
    compression: Compression,
) -> Bytes {
    let p = producer.unwrap_or(Producer {
        id: -1,
        epoch: -1,
        sequence: -1,
        transactional: false,
    });
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: p.transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: leader_epoch,
            producer_id: p.id,
            producer_epoch: p.epoch,
            timestamp_type: TimestampType::Creation,
            offset: base_offset + i as i64,
            sequence: p.sequence.wrapping_add(i as i32),
            timestamp: r.timestamp,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

/// A produce batch of key-less values (offsets are assigned by the log).
pub fn values(values: &[&[u8]], timestamp: i64) -> Bytes {
    let recs: Vec<Rec> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Rec::value(v, timestamp + i as i64))
        .collect();
    encode(0, -1, &recs, None, Compression::None)
}

/// A batch of `n` records of `size` value bytes each.
pub fn sized(n: usize, size: usize, timestamp: i64) -> Bytes {
    let value = vec![b'x'; size];
    let vals: Vec<&[u8]> = (0..n).map(|_| value.as_slice()).collect();
    values(&vals, timestamp)
}

/// A decoded record as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Got {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub leader_epoch: i32,
    pub log_append_time: bool,
}

/// Decodes every batch in `bytes` with kafka-protocol (checks CRCs too).
pub fn decode(bytes: &Bytes) -> Vec<Got> {
    let mut buf = bytes.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).expect("decode batches");
    sets.into_iter()
        .flat_map(|s| s.records)
        .map(|r| Got {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            leader_epoch: r.partition_leader_epoch,
            log_append_time: r.timestamp_type == TimestampType::LogAppend,
        })
        .collect()
}

/// Everything readable in the log from its start, decoded.
pub fn read_all(log: &Log) -> Vec<Got> {
    let bytes = log
        .read_bytes(log.log_start_offset(), u32::MAX, i64::MAX)
        .expect("read log");
    decode(&bytes)
}

/// A small-segment config for tests.
pub fn small_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_index_bytes: 4096,
        index_interval_bytes: 128,
        retention_ms: -1,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

pub fn tp() -> TopicPartition {
    TopicPartition::new("events", 0)
}

pub fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir.join("events-0"), tp(), config).expect("open log")
}

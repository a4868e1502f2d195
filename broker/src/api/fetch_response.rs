//! FetchResponse encoding with record bytes left in the segment files.
//!
//! The generated encoder needs the records in memory; this one writes every field the same way
//! but, where a partition's records go, emits the length prefix and then the file regions as
//! separate chunks, so the connection can `sendfile` them. Its output is byte-for-byte what the
//! generated encoder produces (see the tests).

use bytes::{BufMut, BytesMut};
use kafka_core::ErrorCode;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::protocol::Encodable;
use storage::FileRegion;

use crate::server::response::{frame_prefix, Chunk, EncodeError, Response};

/// The record bytes of one partition, as file regions in log order.
#[derive(Debug, Clone, Default)]
pub struct FetchPartitionRecords {
    pub regions: Vec<FileRegion>,
}

impl FetchPartitionRecords {
    pub fn len(&self) -> usize {
        self.regions.iter().map(|r| r.len as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }
}

struct Writer {
    version: i16,
    chunks: Vec<Chunk>,
    buf: BytesMut,
}

fn err(version: i16, reason: impl Into<String>) -> EncodeError {
    EncodeError {
        version,
        reason: reason.into(),
    }
}

impl Writer {
    fn flexible(&self) -> bool {
        self.version >= 12
    }

    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    fn array_len(&mut self, len: usize) -> Result<(), EncodeError> {
        if self.flexible() {
            let n = u32::try_from(len + 1).map_err(|_| err(self.version, "array too long"))?;
            self.uvarint(n);
        } else {
            let n = i32::try_from(len).map_err(|_| err(self.version, "array too long"))?;
            self.buf.put_i32(n);
        }
        Ok(())
    }

    fn string(&mut self, s: &str) -> Result<(), EncodeError> {
        if self.flexible() {
            let n = u32::try_from(s.len() + 1).map_err(|_| err(self.version, "string too long"))?;
            self.uvarint(n);
        } else {
            let n = i16::try_from(s.len()).map_err(|_| err(self.version, "string too long"))?;
            self.buf.put_i16(n);
        }
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }

    fn bytes_len(&mut self, len: usize) -> Result<(), EncodeError> {
        if self.flexible() {
            let n = u32::try_from(len + 1).map_err(|_| err(self.version, "records too large"))?;
            self.uvarint(n);
        } else {
            let n = i32::try_from(len).map_err(|_| err(self.version, "records too large"))?;
            self.buf.put_i32(n);
        }
        Ok(())
    }

    fn structure<T: Encodable>(&mut self, value: &T) -> Result<(), EncodeError> {
        value
            .encode(&mut self.buf, self.version)
            .map_err(|e| err(self.version, e.to_string()))
    }

    fn tagged_struct<T: Encodable>(&mut self, tag: u32, value: &T) -> Result<(), EncodeError> {
        let size = value
            .compute_size(self.version)
            .map_err(|e| err(self.version, e.to_string()))?;
        self.uvarint(tag);
        let size = u32::try_from(size).map_err(|_| err(self.version, "tagged field too large"))?;
        self.uvarint(size);
        self.structure(value)
    }

    fn splice(&mut self, records: &FetchPartitionRecords) {
        if records.regions.is_empty() {
            return;
        }
        let head = self.buf.split().freeze();
        self.chunks.push(Chunk::Bytes(head));
        for r in &records.regions {
            self.chunks.push(Chunk::File(r.clone()));
        }
    }

    fn partition(
        &mut self,
        p: &PartitionData,
        records: Option<&FetchPartitionRecords>,
    ) -> Result<(), EncodeError> {
        let v = self.version;
        self.buf.put_i32(p.partition_index);
        self.buf.put_i16(p.error_code);
        self.buf.put_i64(p.high_watermark);
        self.buf.put_i64(p.last_stable_offset);
        if v >= 5 {
            self.buf.put_i64(p.log_start_offset);
        }
        match &p.aborted_transactions {
            None => {
                if self.flexible() {
                    self.uvarint(0);
                } else {
                    self.buf.put_i32(-1);
                }
            }
            Some(list) => {
                self.array_len(list.len())?;
                for t in list {
                    self.structure(t)?;
                }
            }
        }
        if v >= 11 {
            self.buf.put_i32(p.preferred_read_replica.0);
        } else if p.preferred_read_replica.0 != -1 {
            return Err(err(v, "preferred_read_replica needs v11+"));
        }
        match (records, &p.records) {
            (Some(file), _) if !file.is_empty() => {
                self.bytes_len(file.len())?;
                self.splice(file);
            }
            (_, Some(inline)) => {
                self.bytes_len(inline.len())?;
                self.buf.put_slice(inline);
            }
            (_, None) => {
                if records.is_some() {
                    self.bytes_len(0)?;
                } else if self.flexible() {
                    self.uvarint(0);
                } else {
                    self.buf.put_i32(-1);
                }
            }
        }
        if self.flexible() {
            let diverging = p.diverging_epoch != Default::default();
            let leader = p.current_leader != Default::default();
            let snapshot = p.snapshot_id != Default::default();
            let count = p.unknown_tagged_fields.len()
                + diverging as usize
                + leader as usize
                + snapshot as usize;
            self.uvarint(count as u32);
            if diverging {
                self.tagged_struct(0, &p.diverging_epoch)?;
            }
            if leader {
                self.tagged_struct(1, &p.current_leader)?;
            }
            if snapshot {
                self.tagged_struct(2, &p.snapshot_id)?;
            }
            if !p.unknown_tagged_fields.is_empty() {
                return Err(err(v, "unknown tagged fields are not emitted"));
            }
        }
        Ok(())
    }
}

/// Encodes `response`; `records[t][p]`, when present, supplies the records of partition `p` of
/// topic `t` as file regions (the partition's own `records` field is then ignored).
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    response: &FetchResponse,
    records: &[Vec<Option<FetchPartitionRecords>>],
) -> Result<Response, EncodeError> {
    let mut w = Writer {
        version,
        chunks: Vec::new(),
        buf: BytesMut::with_capacity(256),
    };
    if !(4..=18).contains(&version) {
        return Err(err(version, "fetch version out of range"));
    }
    w.buf.put_i32(response.throttle_time_ms);
    if version >= 7 {
        w.buf.put_i16(response.error_code);
        w.buf.put_i32(response.session_id);
    }
    w.array_len(response.responses.len())?;
    for (ti, topic) in response.responses.iter().enumerate() {
        if version <= 12 {
            w.string(topic.topic.0.as_str())?;
        }
        if version >= 13 {
            w.buf.put_slice(topic.topic_id.as_bytes());
        }
        w.array_len(topic.partitions.len())?;
        for (pi, p) in topic.partitions.iter().enumerate() {
            let file = records
                .get(ti)
                .and_then(|t| t.get(pi))
                .and_then(Option::as_ref);
            w.partition(p, file)?;
        }
        if w.flexible() {
            w.uvarint(0);
        }
    }
    if w.flexible() {
        if version >= 16 && !response.node_endpoints.is_empty() {
            let mut inner = Writer {
                version,
                chunks: Vec::new(),
                buf: BytesMut::new(),
            };
            inner.array_len(response.node_endpoints.len())?;
            for n in &response.node_endpoints {
                inner.structure(n)?;
            }
            w.uvarint(1);
            w.uvarint(0);
            w.uvarint(inner.buf.len() as u32);
            w.buf.put_slice(&inner.buf);
        } else {
            w.uvarint(0);
        }
    }
    let tail = w.buf.split().freeze();
    w.chunks.push(Chunk::Bytes(tail));
    let body_len: usize = w.chunks.iter().map(Chunk::len).sum();
    let prefix = frame_prefix::<FetchResponse>(version, correlation_id, body_len)?;
    let mut chunks = Vec::with_capacity(w.chunks.len() + 1);
    chunks.push(Chunk::Bytes(prefix.freeze()));
    chunks.extend(w.chunks.into_iter().filter(|c| !c.is_empty()));
    Ok(Response {
        chunks,
        error_code: ErrorCode::from_code(response.error_code),
        throttle: std::time::Duration::ZERO,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    };
    use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use std::io::Write;
    use std::sync::Arc;

    use crate::server::response::encode;

    fn flatten(r: &Response) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &r.chunks {
            match c {
                Chunk::Bytes(b) => out.extend_from_slice(b),
                Chunk::File(f) => out.extend_from_slice(&f.read_to_bytes().unwrap()),
            }
        }
        out
    }

    fn sample(version: i16, a: &Bytes, b: &Bytes) -> FetchResponse {
        let mut p0 = PartitionData::default()
            .with_partition_index(0)
            .with_high_watermark(100)
            .with_last_stable_offset(100)
            .with_log_start_offset(3)
            .with_records(Some(a.clone()));
        if version >= 12 {
            p0 = p0.with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(2))
                    .with_leader_epoch(7),
            );
        }
        let mut p1 = PartitionData::default()
            .with_partition_index(1)
            .with_error_code(0)
            .with_high_watermark(5)
            .with_last_stable_offset(5)
            .with_aborted_transactions(Some(vec![AbortedTransaction::default()
                .with_producer_id(ProducerId(9))
                .with_first_offset(4)]))
            .with_records(Some(b.clone()));
        if version >= 11 {
            p1 = p1.with_preferred_read_replica(BrokerId(1));
        }
        if version >= 12 {
            p1 = p1
                .with_diverging_epoch(EpochEndOffset::default().with_epoch(3).with_end_offset(42));
        }
        let p2 = PartitionData::default()
            .with_partition_index(2)
            .with_error_code(6)
            .with_records(Some(Bytes::new()));
        let mut topic = FetchableTopicResponse::default().with_partitions(vec![p0, p1, p2]);
        if version <= 12 {
            topic = topic.with_topic(TopicName(StrBytes::from_static_str("orders")));
        } else {
            topic = topic.with_topic_id(uuid::Uuid::from_u128(0x1234_5678));
        }
        let mut response = FetchResponse::default()
            .with_throttle_time_ms(0)
            .with_responses(vec![topic]);
        if version >= 7 {
            response = response.with_session_id(0);
        }
        if version >= 16 {
            response = response.with_node_endpoints(vec![NodeEndpoint::default()
                .with_node_id(BrokerId(2))
                .with_host(StrBytes::from_static_str("broker-2"))
                .with_port(9092)
                .with_rack(Some(StrBytes::from_static_str("b")))]);
        }
        response
    }

    #[test]
    fn matches_the_generated_encoder_byte_for_byte() {
        let a = Bytes::from(vec![0xAB; 1000]);
        let b = Bytes::from((0..300u32).map(|i| i as u8).collect::<Vec<u8>>());
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"junk").unwrap();
        file.write_all(&a).unwrap();
        file.write_all(&b).unwrap();
        let file = Arc::new(file);
        let region_a = FileRegion {
            file: file.clone(),
            position: 4,
            len: 600,
        };
        let region_a2 = FileRegion {
            file: file.clone(),
            position: 604,
            len: 400,
        };
        let region_b = FileRegion {
            file: file.clone(),
            position: 1004,
            len: 300,
        };
        for version in 4..=17i16 {
            let expected_response = sample(version, &a, &b);
            let expected =
                flatten(&encode(&expected_response, version, 11, ErrorCode::NONE).unwrap());

            let mut spliced = expected_response.clone();
            for t in &mut spliced.responses {
                for p in &mut t.partitions {
                    p.records = None;
                }
            }
            let records = vec![vec![
                Some(FetchPartitionRecords {
                    regions: vec![region_a.clone(), region_a2.clone()],
                }),
                Some(FetchPartitionRecords {
                    regions: vec![region_b.clone()],
                }),
                Some(FetchPartitionRecords::default()),
            ]];
            let ours = encode_fetch_response(version, 11, &spliced, &records).unwrap();
            assert!(ours.chunks.iter().any(|c| matches!(c, Chunk::File(_))));
            assert_eq!(flatten(&ours), expected, "fetch v{version}");
            assert_eq!(ours.len(), expected.len());
        }
    }
}

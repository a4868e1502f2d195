//! Batches the broker writes itself (internal topics such as `__consumer_offsets`): one
//! uncompressed v2 batch of keys and values, with no producer id, epoch or sequence, offsets
//! relative to 0 (the log assigns the real ones on append).

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};

use crate::error::{Result, StorageError};

/// Encodes `records` (key, value; a `None` value is a tombstone) as one batch stamped
/// `timestamp_ms`.
pub fn plain_batch(records: &[(Option<Bytes>, Option<Bytes>)], timestamp_ms: i64) -> Result<Bytes> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence stays the same;
            // the batch's base sequence is the first record's: NO_SEQUENCE (no producer).
            sequence: NO_SEQUENCE.wrapping_add(i as i32),
            timestamp: timestamp_ms,
            key: key.clone(),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    encode(&records, Compression::None)
}

/// Encodes `records` as v2 batches with kafka-protocol's encoder.
pub(crate) fn encode(records: &[Record], compression: Compression) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| StorageError::InvalidRecord(format!("encoding a batch failed: {e}")))?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchHeader;

    #[test]
    fn one_valid_batch_of_all_records() {
        let records = [
            (
                Some(Bytes::from_static(b"k1")),
                Some(Bytes::from_static(b"v1")),
            ),
            (Some(Bytes::from_static(b"k2")), None),
        ];
        let batch = plain_batch(&records, 1_700_000_000_000).unwrap();
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.records_count, 2);
        assert_eq!(header.producer_id, NO_PRODUCER_ID);
        assert_eq!(header.max_timestamp, 1_700_000_000_000);
        assert_eq!(header.size(), batch.len());
    }
}

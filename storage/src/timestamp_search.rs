//! Record-level timestamp search in a segment (ListOffsets by timestamp): the time index narrows
//! the start, then batches are read until one holds a record with a timestamp at or after the
//! target; compressed batches are decompressed for that.

use crate::batch_scan::BatchScan;
use crate::codec;
use crate::error::Result;
use crate::record::RecordIter;
use crate::segment::Segment;

/// A record found by timestamp: its timestamp, offset and the leader epoch of its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

/// The first record in `segment` with timestamp `>= target` and offset `>= start_offset`.
pub(crate) fn search(
    segment: &Segment,
    target: i64,
    start_offset: i64,
) -> Result<Option<TimestampOffset>> {
    let size = segment.size();
    let from = segment.timestamp_search_start(target, start_offset);
    let mut scan = BatchScan::new(segment.file(), from, size);
    while let Some(batch) = scan.next_batch()? {
        let h = batch.header;
        if h.max_timestamp < target || h.last_offset() < start_offset {
            continue;
        }
        let payload = codec::payload(&batch.bytes, &h)?;
        for record in RecordIter::new(&payload, h.records_count) {
            let record = record?;
            let offset = h.base_offset.saturating_add(i64::from(record.offset_delta));
            let timestamp = if h.timestamp_type_is_log_append() {
                h.max_timestamp
            } else {
                h.base_timestamp.saturating_add(record.timestamp_delta)
            };
            if timestamp >= target && offset >= start_offset {
                return Ok(Some(TimestampOffset {
                    timestamp,
                    offset,
                    leader_epoch: (h.partition_leader_epoch >= 0)
                        .then_some(h.partition_leader_epoch),
                }));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{check_batch, header_array, set_log_append_time, HEADER_SIZE};
    use crate::segment::AppendedBatch;
    use crate::test_batches::{batch, BatchSpec};

    fn append(segment: &Segment, bytes: &[u8]) {
        let h = check_batch(bytes).unwrap();
        segment
            .append(
                &[bytes],
                &[AppendedBatch {
                    base_offset: h.base_offset,
                    last_offset: h.last_offset(),
                    max_timestamp: h.max_timestamp,
                    size: bytes.len() as u32,
                }],
                0,
            )
            .unwrap();
    }

    #[test]
    fn create_time_is_per_record_and_log_append_time_per_batch() {
        let dir = tempfile::tempdir().unwrap();
        let segment = Segment::create(dir.path(), 0, 4096, None, 0).unwrap();
        let mut first = BatchSpec::keyed(&[(b"a", Some(b"1"), 500), (b"b", Some(b"2"), 300)]);
        first.partition_leader_epoch = 4;
        append(&segment, &batch(&first));
        let second = batch(&BatchSpec {
            base_offset: 2,
            ..BatchSpec::keyed(&[(b"c", Some(b"3"), 100), (b"d", Some(b"4"), 100)])
        });
        let mut head = header_array(&second);
        set_log_append_time(&mut head, 900, &second[HEADER_SIZE..]);
        let mut stamped = head.to_vec();
        stamped.extend_from_slice(&second[HEADER_SIZE..]);
        append(&segment, &stamped);
        let found = search(&segment, 400, 0).unwrap().unwrap();
        assert_eq!(
            (found.offset, found.timestamp, found.leader_epoch),
            (0, 500, Some(4))
        );
        let found = search(&segment, 501, 0).unwrap().unwrap();
        assert_eq!(
            (found.offset, found.timestamp, found.leader_epoch),
            (2, 900, None)
        );
        assert_eq!(search(&segment, 250, 1).unwrap().unwrap().offset, 1);
        assert_eq!(search(&segment, 901, 0).unwrap(), None);
    }
}

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
            let offset = h.base_offset + i64::from(record.offset_delta);
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

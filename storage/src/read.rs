//! Reading a partition log by offset: file regions of whole batches for `sendfile(2)`, or the
//! same bytes copied into one buffer.

use bytes::{Bytes, BytesMut};

use crate::error::{IoContext, Result, StorageError};
use crate::log::Log;
use crate::region::FileRegion;

/// What a read returns.
#[derive(Clone, Debug)]
pub struct ReadInfo {
    /// Whole batches only, in offset order; empty when there is nothing to read.
    pub regions: Vec<FileRegion>,
    /// Sum of the region lengths.
    pub size_bytes: u32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
}

impl Log {
    /// Regions for the batches starting with the one holding `start_offset`: whole batches,
    /// at most `max_bytes` (but the first batch whole even when larger, as Kafka does), only
    /// batches whose last offset is below `max_offset` (the high watermark for consumers,
    /// `i64::MAX` for none). `start_offset` at the log end (or at/after `max_offset`) reads
    /// nothing; before the log start or after the log end it is `OffsetOutOfRange`.
    pub fn read(&self, start_offset: i64, max_bytes: u32, max_offset: i64) -> Result<ReadInfo> {
        let log_end = self.log_end_offset();
        let log_start = self.log_start_offset();
        let mut info = ReadInfo {
            regions: Vec::new(),
            size_bytes: 0,
            log_start_offset: log_start,
            log_end_offset: log_end,
            high_watermark: self.high_watermark(),
        };
        if start_offset < log_start || start_offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                offset: start_offset,
                log_start,
                log_end,
            });
        }
        if start_offset == log_end || start_offset >= max_offset {
            return Ok(info);
        }
        let segments = self.segments();
        let from = segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        let mut remaining = u64::from(max_bytes);
        for (base, segment) in segments.range(from..) {
            let offset = start_offset.max(*base);
            let read = segment.read(offset, remaining, max_offset, info.regions.is_empty())?;
            if let Some(region) = read.region {
                let len = u64::from(region.len);
                remaining = remaining.saturating_sub(len);
                info.size_bytes = info.size_bytes.saturating_add(region.len);
                info.regions.push(region);
            }
            if !read.exhausted || remaining == 0 {
                break;
            }
        }
        Ok(info)
    }

    /// The same selection as [`Log::read`], copied into one buffer.
    pub fn read_bytes(&self, start_offset: i64, max_bytes: u32, max_offset: i64) -> Result<Bytes> {
        let info = self.read(start_offset, max_bytes, max_offset)?;
        let mut out = BytesMut::with_capacity(info.size_bytes as usize);
        for region in &info.regions {
            region
                .read_into(&mut out)
                .ctx(|| format!("read {} at {}", self.tp, region.position))?;
        }
        Ok(out.freeze())
    }
}

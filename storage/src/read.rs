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
    /// nothing; before the log start or after the log end it is `OffsetOutOfRange`. Bytes not
    /// appended by this process are verified (CRC and headers) on their first read: a read
    /// stops before a corrupt batch, and is `Corrupt` when it would start with one.
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
            let read = match segment.read(offset, remaining, max_offset, info.regions.is_empty()) {
                Ok(read) => read,
                // Serve the intact batches before a corrupt one; the next read reports it.
                Err(StorageError::Corrupt { .. }) if !info.regions.is_empty() => break,
                Err(err) => return Err(err),
            };
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

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::os::unix::fs::FileExt;
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::LogConfig;
    use crate::segment::{file_path, LOG_SUFFIX};
    use crate::test_batches::{batch, BatchSpec};
    use crate::TopicPartition;

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition: 0,
        }
    }

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        }
    }

    /// A log of 60 one-record batches in several segments, closed cleanly.
    fn written(dir: &Path) -> Vec<Bytes> {
        let log = Log::open(dir.to_path_buf(), tp(), config()).unwrap();
        let mut values = Vec::new();
        for i in 0..60 {
            let value = format!("value-{i:04}-{}", "x".repeat(60));
            let b = batch(&BatchSpec::values(&[value.as_bytes()]));
            log.append_as_leader(b, 0, 1_000).unwrap();
            values.push(Bytes::from(value));
        }
        assert!(log.num_segments() >= 3);
        log.close().unwrap();
        values
    }

    fn flip_last_byte_of_batch(dir: &Path, segment_base: i64, batch_index: usize) -> (i64, u64) {
        let log = Log::open(dir.to_path_buf(), tp(), config()).unwrap();
        let segment = Arc::clone(&log.segments()[&segment_base]);
        let mut scan = crate::batch_scan::HeaderScan::new(segment.file(), 0, segment.size());
        let mut found = None;
        for _ in 0..=batch_index {
            found = scan.next_header().unwrap();
        }
        let h = found.unwrap();
        drop(log);
        let path = file_path(dir, segment_base, LOG_SUFFIX);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let at = h.position + h.header.size() as u64 - 1;
        let mut byte = [0u8; 1];
        f.read_exact_at(&mut byte, at).unwrap();
        f.write_all_at(&[byte[0] ^ 0x20], at).unwrap();
        (h.header.base_offset, h.position)
    }

    #[test]
    fn a_flipped_byte_in_a_closed_segment_is_caught_on_read() {
        let dir = tempfile::tempdir().unwrap();
        written(dir.path());
        let second = Log::open(dir.path().to_path_buf(), tp(), config())
            .unwrap()
            .segment_base_offsets()[1];
        let (bad_offset, bad_position) = flip_last_byte_of_batch(dir.path(), second, 2);
        let log = Log::open(dir.path().to_path_buf(), tp(), config()).unwrap();
        log.set_high_watermark(log.log_end_offset());

        // Reading from the start serves every batch before the corrupt one, then stops.
        let mut next = 0;
        loop {
            match log.read(next, 300, i64::MAX) {
                Ok(info) => {
                    assert!(!info.regions.is_empty(), "stalled at {next}");
                    let bytes = log.read_bytes(next, 300, i64::MAX).unwrap();
                    next += crate::batch::BatchIter::new(&bytes).count() as i64;
                }
                Err(StorageError::Corrupt {
                    segment,
                    position,
                    offset,
                    ..
                }) => {
                    assert_eq!(
                        (segment, position, offset),
                        (second, bad_position, bad_offset)
                    );
                    break;
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(next, bad_offset);
        // The corrupt batch, and what follows it in its segment (reached only through it),
        // stay unreadable; later segments are verified on their own.
        for offset in [bad_offset, bad_offset + 1] {
            assert!(matches!(
                log.read(offset, u32::MAX, i64::MAX),
                Err(StorageError::Corrupt { offset, .. }) if offset == bad_offset
            ));
        }
        let third = log.segment_base_offsets()[2];
        assert!(!log.read(third, 300, i64::MAX).unwrap().regions.is_empty());
        // Truncating to the corrupt batch leaves a log that reads cleanly to its end.
        log.truncate_to(bad_offset).unwrap();
        assert_eq!(log.log_end_offset(), bad_offset);
        let all = log.read_bytes(0, u32::MAX, i64::MAX).unwrap();
        assert_eq!(
            crate::batch::BatchIter::new(&all).count() as i64,
            bad_offset
        );
    }

    #[test]
    fn closed_segments_are_verified_once() {
        let dir = tempfile::tempdir().unwrap();
        written(dir.path());
        let log = Log::open(dir.path().to_path_buf(), tp(), config()).unwrap();
        let first = Arc::clone(log.segments().values().next().unwrap());
        assert_eq!(first.verified_position(), 0);
        let info = log.read(0, u32::MAX, i64::MAX).unwrap();
        assert_eq!(first.verified_position(), first.size());
        // Bytes changed behind the log after verification are not checked again.
        let region = &info.regions[0];
        let at = region.position + u64::from(region.len) - 1;
        let f = OpenOptions::new()
            .write(true)
            .open(file_path(dir.path(), first.base_offset(), LOG_SUFFIX))
            .unwrap();
        f.write_all_at(&[0xff], at).unwrap();
        assert!(log.read(0, u32::MAX, i64::MAX).is_ok());
    }

    #[test]
    fn appended_bytes_count_as_verified() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path().to_path_buf(), tp(), config()).unwrap();
        log.append_as_leader(batch(&BatchSpec::values(&[&b"a"[..]])), 0, 1_000)
            .unwrap();
        let active = log.active_segment().unwrap();
        assert_eq!(active.verified_position(), active.size());
    }
}

//! Log compaction (`cleanup.policy=compact`), after Kafka's log cleaner. Only closed segments
//! wholly below the active segment, the high watermark, the first open transaction and
//! `min.compaction.lag.ms` are cleanable. The dirty part (from the cleaner checkpoint on) is
//! mapped key -> latest offset; then every cleanable segment keeps, per key, only records at or
//! after that offset. Offsets never change: a batch keeps its base and last offset, losing
//! records from its middle (its payload recompressed with the same codec when compressed).
//!
//! Tombstones (null values) stay for `delete.retention.ms` after their segment was first
//! cleaned (the cleaned file's modification time records when). Records without a key are
//! dropped, as Kafka does. Control batches (transaction markers) are always kept whole, and
//! transactional data records are compacted like any others (aborted ones are not removed
//! early). A batch emptied by cleaning is kept as an empty header when it is the last batch of
//! a producer still known to the producer state, so the producer's sequence survives.
//!
//! One segment is rewritten into one `.cleaned` segment, which becomes `.swap` once complete
//! and fsynced, and replaces the original under the writer lock; recovery finishes an
//! interrupted swap.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::info;

use crate::atomic_file::sync_dir;
use crate::batch::{
    header_array, set_count_and_max_timestamp, set_crc, set_length_and_attributes, HEADER_SIZE,
};
use crate::batch_scan::{BatchScan, ScannedBatch};
use crate::checkpoint::{read_single_offset, write_offsets};
use crate::codec;
use crate::config::LogConfig;
use crate::error::Result;
use crate::log::Log;
use crate::record::RecordIter;
use crate::recovery::{CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::segment::{AppendedBatch, Segment};

pub(crate) const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Distinct keys mapped per cleaning pass; further dirty segments wait for the next pass.
const OFFSET_MAP_MAX_KEYS: usize = 1 << 20;
/// Bytes buffered before writing to the cleaned segment.
const WRITE_BUFFER: usize = 1 << 20;

/// What [`Log::compact`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Segments replaced by a cleaned copy.
    pub segments_rewritten: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// Where the next pass's dirty section starts.
    pub first_dirty_offset: i64,
}

/// Offsets a batch may lose records below, by key hash.
type OffsetMap = HashMap<u128, i64>;

fn key_hash(key: &[u8]) -> u128 {
    let mut a = DefaultHasher::new();
    a.write(key);
    let mut b = DefaultHasher::new();
    b.write_u8(0x5a);
    b.write(key);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// What cleaning does to one batch.
enum Fate {
    Keep,
    Drop { removed: u64 },
    Replace { bytes: Bytes, removed: u64 },
}

struct CleanContext<'a> {
    map: &'a OffsetMap,
    retain_tombstones: bool,
    /// Last offset of each producer's last batch.
    producer_last_offsets: &'a HashMap<i64, i64>,
}

fn fate(batch: &ScannedBatch, ctx: &CleanContext<'_>) -> Result<Fate> {
    let h = batch.header;
    if h.is_control() {
        return Ok(Fate::Keep);
    }
    let payload = codec::payload(&batch.bytes, &h)?;
    let mut kept = Vec::new();
    let mut total = 0u64;
    for record in RecordIter::new(&payload, h.records_count) {
        let record = record?;
        total += 1;
        let offset = h.base_offset.saturating_add(i64::from(record.offset_delta));
        let keep = match record.key {
            None => false,
            Some(key) => {
                let latest = ctx.map.get(&key_hash(key)).is_none_or(|o| offset >= *o);
                latest && (record.has_value || ctx.retain_tombstones)
            }
        };
        if keep {
            kept.push(record);
        }
    }
    let removed = total - kept.len() as u64;
    if removed == 0 {
        return Ok(Fate::Keep);
    }
    let mut head = header_array(&batch.bytes);
    if kept.is_empty() {
        let last_of_producer = h.has_producer_id()
            && ctx.producer_last_offsets.get(&h.producer_id) == Some(&h.last_offset());
        if !last_of_producer {
            return Ok(Fate::Drop { removed });
        }
        set_count_and_max_timestamp(&mut head, 0, h.max_timestamp);
        set_length_and_attributes(&mut head, HEADER_SIZE, h.attributes & !0x07);
        set_crc(&mut head, &[]);
        return Ok(Fate::Replace {
            bytes: Bytes::copy_from_slice(&head),
            removed,
        });
    }
    let mut raw = Vec::with_capacity(kept.iter().map(|r| r.raw.len()).sum());
    for r in &kept {
        raw.extend_from_slice(r.raw);
    }
    let mut body = BytesMut::with_capacity(raw.len());
    codec::compress(h.compression(), &raw, &mut body)?;
    let max_timestamp = if h.timestamp_type_is_log_append() {
        h.max_timestamp
    } else {
        kept.iter()
            .map(|r| h.base_timestamp.saturating_add(r.timestamp_delta))
            .max()
            .unwrap_or(h.max_timestamp)
    };
    set_count_and_max_timestamp(&mut head, kept.len() as i32, max_timestamp);
    set_length_and_attributes(&mut head, HEADER_SIZE + body.len(), h.attributes);
    set_crc(&mut head, &body);
    let mut out = BytesMut::with_capacity(HEADER_SIZE + body.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&body);
    Ok(Fate::Replace {
        bytes: out.freeze(),
        removed,
    })
}

/// Maps keys of the dirty segments to their latest offsets. Returns the map and the offset
/// the mapped section ends at.
fn build_offset_map(dirty: &[(Arc<Segment>, i64)]) -> Result<(OffsetMap, i64)> {
    let mut map = OffsetMap::new();
    let mut end = dirty.first().map_or(0, |(s, _)| s.base_offset());
    for (segment, next_base) in dirty {
        let mut scan = BatchScan::new(segment.file(), 0, segment.size());
        while let Some(batch) = scan.next_batch()? {
            let h = batch.header;
            if h.is_control() {
                continue;
            }
            let payload = codec::payload(&batch.bytes, &h)?;
            for record in RecordIter::new(&payload, h.records_count) {
                let record = record?;
                if let Some(key) = record.key {
                    map.insert(
                        key_hash(key),
                        h.base_offset.saturating_add(i64::from(record.offset_delta)),
                    );
                }
            }
        }
        end = *next_base;
        if map.len() >= OFFSET_MAP_MAX_KEYS {
            break;
        }
    }
    Ok((map, end))
}

impl Log {
    fn cleaner_checkpoint(&self) -> Option<i64> {
        read_single_offset(&self.dir.join(CLEANER_CHECKPOINT))
            .ok()
            .flatten()
    }

    /// After a truncation to `end`, data from `end` on is new and must count as dirty.
    pub(crate) fn clamp_cleaner_checkpoint(&self, end: i64) -> Result<()> {
        match self.cleaner_checkpoint() {
            Some(offset) if offset > end => write_offsets(
                &self.dir.join(CLEANER_CHECKPOINT),
                &[(self.tp.clone(), end)],
            ),
            _ => Ok(()),
        }
    }

    /// Compacts the cleanable segments if the policy includes `compact` and the dirty ratio (or
    /// `max.compaction.lag.ms`) calls for it.
    pub fn compact(&self, now_ms: i64) -> Result<CompactionOutcome> {
        self.guarded(|| {
            let config = self.config();
            let mut outcome = CompactionOutcome {
                first_dirty_offset: self.log_start_offset(),
                ..CompactionOutcome::default()
            };
            if !config.cleanup_policy.compacts() || self.ensure_open().is_err() {
                return Ok(outcome);
            }
            let _cleaner = self.cleaner.lock();
            let truncations = self.truncations.load(Ordering::Acquire);
            let segments = self.segments();
            let log_start = self.log_start_offset();
            let (first_unstable, producer_last_offsets) = {
                let producers = self.producers.lock();
                let last: HashMap<i64, i64> = producers
                    .entries()
                    .iter()
                    .map(|e| (e.producer_id, e.last_offset()))
                    .collect();
                (producers.first_unstable_offset(), last)
            };
            let active_base = segments.keys().next_back().copied().unwrap_or(0);
            let mut uncleanable = active_base.min(self.high_watermark());
            if let Some(first) = first_unstable {
                uncleanable = uncleanable.min(first);
            }
            let bases: Vec<i64> = segments.keys().copied().collect();
            let mut cleanable: Vec<(Arc<Segment>, i64)> = Vec::new();
            for (i, segment) in segments.values().enumerate() {
                let next_base = bases.get(i + 1).copied().unwrap_or(i64::MAX);
                if next_base > uncleanable {
                    break;
                }
                if config.min_compaction_lag_ms > 0
                    && segment.largest_timestamp()
                        > now_ms.saturating_sub(config.min_compaction_lag_ms)
                {
                    break;
                }
                if next_base > log_start {
                    cleanable.push((Arc::clone(segment), next_base));
                }
            }
            let first_dirty = self
                .cleaner_checkpoint()
                .unwrap_or(log_start)
                .max(log_start);
            outcome.first_dirty_offset = first_dirty;
            let dirty: Vec<(Arc<Segment>, i64)> = cleanable
                .iter()
                .filter(|(_, next)| *next > first_dirty)
                .cloned()
                .collect();
            let Some((first_dirty_segment, _)) = dirty.first() else {
                return Ok(outcome);
            };
            let dirty_bytes: u64 = dirty.iter().map(|(s, _)| s.size()).sum();
            let total_bytes: u64 = cleanable.iter().map(|(s, _)| s.size()).sum();
            let ratio = if total_bytes == 0 {
                0.0
            } else {
                dirty_bytes as f64 / total_bytes as f64
            };
            let lag_due = config.max_compaction_lag_ms != i64::MAX
                && first_dirty_segment
                    .first_batch_timestamp()
                    .is_some_and(|t| {
                        t >= 0 && now_ms.saturating_sub(t) > config.max_compaction_lag_ms
                    });
            if ratio < config.min_cleanable_dirty_ratio && !lag_due {
                return Ok(outcome);
            }
            let (map, mapped_end) = build_offset_map(&dirty)?;
            for (segment, next_base) in cleanable
                .iter()
                .filter(|(s, _)| s.base_offset() < mapped_end)
            {
                let was_dirty = *next_base > first_dirty;
                let cleaned_at = if was_dirty {
                    now_ms
                } else {
                    segment.last_modified_ms().unwrap_or(now_ms)
                };
                let ctx = CleanContext {
                    map: &map,
                    retain_tombstones: now_ms.saturating_sub(cleaned_at)
                        < config.delete_retention_ms,
                    producer_last_offsets: &producer_last_offsets,
                };
                if !self.segment_changes(segment, &ctx)? {
                    if was_dirty {
                        segment.set_last_modified_ms(now_ms)?;
                    }
                    continue;
                }
                let cleaned = self.write_cleaned(segment, &ctx, &config, cleaned_at, now_ms)?;
                let removed = cleaned.1;
                let before = segment.size();
                let after = cleaned.0.size();
                if !self.swap_in(segment, cleaned.0, truncations, now_ms)? {
                    return Ok(outcome);
                }
                outcome.segments_rewritten += 1;
                outcome.bytes_before += before;
                outcome.bytes_after += after;
                outcome.records_removed += removed;
            }
            write_offsets(
                &self.dir.join(CLEANER_CHECKPOINT),
                &[(self.tp.clone(), mapped_end)],
            )?;
            outcome.first_dirty_offset = mapped_end;
            info!(
                partition = %self.tp,
                rewritten = outcome.segments_rewritten,
                bytes_before = outcome.bytes_before,
                bytes_after = outcome.bytes_after,
                records_removed = outcome.records_removed,
                first_dirty = mapped_end,
                "compacted log"
            );
            Ok(outcome)
        })
    }

    fn segment_changes(&self, segment: &Segment, ctx: &CleanContext<'_>) -> Result<bool> {
        let mut scan = BatchScan::new(segment.file(), 0, segment.size());
        while let Some(batch) = scan.next_batch()? {
            if !matches!(fate(&batch, ctx)?, Fate::Keep) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes the cleaned copy of `segment` as `.cleaned` files, fsynced. Returns it and the
    /// number of records removed.
    fn write_cleaned(
        &self,
        segment: &Segment,
        ctx: &CleanContext<'_>,
        config: &LogConfig,
        cleaned_at: i64,
        now_ms: i64,
    ) -> Result<(Segment, u64)> {
        let cleaned = Segment::create_named(
            &self.dir,
            segment.base_offset(),
            CLEANED_SUFFIX,
            config.segment_index_bytes,
            None,
            now_ms,
        )?;
        let mut removed = 0;
        let mut buffered: Vec<Bytes> = Vec::new();
        let mut metas: Vec<AppendedBatch> = Vec::new();
        let mut buffered_bytes = 0;
        let mut scan = BatchScan::new(segment.file(), 0, segment.size());
        while let Some(batch) = scan.next_batch()? {
            let bytes = match fate(&batch, ctx)? {
                Fate::Keep => batch.bytes,
                Fate::Drop { removed: n } => {
                    removed += n;
                    continue;
                }
                Fate::Replace { bytes, removed: n } => {
                    removed += n;
                    bytes
                }
            };
            let h = crate::batch::BatchHeader::parse(&bytes)?;
            metas.push(AppendedBatch {
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                max_timestamp: h.max_timestamp,
                size: bytes.len() as u32,
            });
            buffered_bytes += bytes.len();
            buffered.push(bytes);
            if buffered_bytes >= WRITE_BUFFER {
                let parts: Vec<&[u8]> = buffered.iter().map(|b| b.as_ref()).collect();
                cleaned.append(&parts, &metas, config.index_interval_bytes)?;
                buffered.clear();
                metas.clear();
                buffered_bytes = 0;
            }
        }
        let parts: Vec<&[u8]> = buffered.iter().map(|b| b.as_ref()).collect();
        cleaned.append(&parts, &metas, config.index_interval_bytes)?;
        cleaned.seal()?;
        cleaned.flush()?;
        cleaned.set_last_modified_ms(cleaned_at)?;
        Ok((cleaned, removed))
    }

    /// Replaces `old` with `cleaned` unless the log changed underneath (truncation, retention,
    /// close). Returns false when it gave up.
    fn swap_in(
        &self,
        old: &Arc<Segment>,
        cleaned: Segment,
        truncations: u64,
        now_ms: i64,
    ) -> Result<bool> {
        let _writer = self.writer.lock();
        let still_there = self
            .segments()
            .get(&old.base_offset())
            .is_some_and(|s| Arc::ptr_eq(s, old));
        if !still_there
            || self.truncations.load(Ordering::Acquire) != truncations
            || self.ensure_open().is_err()
        {
            cleaned.delete_files()?;
            return Ok(false);
        }
        cleaned.rename_to(&self.dir, SWAP_SUFFIX)?;
        sync_dir(&self.dir)?;
        self.retire_files(std::slice::from_ref(old), now_ms)?;
        cleaned.rename_to(&self.dir, "")?;
        sync_dir(&self.dir)?;
        let cleaned = Arc::new(cleaned);
        self.update_segments(|map| {
            map.insert(cleaned.base_offset(), cleaned);
        });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::check_batch;
    use crate::test_batches::{batch, BatchSpec};
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    fn scanned(spec: &BatchSpec) -> ScannedBatch {
        let bytes = batch(spec);
        ScannedBatch {
            header: check_batch(&bytes).unwrap(),
            bytes,
        }
    }

    fn decode(bytes: &Bytes) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
        let mut buf = bytes.clone();
        RecordBatchDecoder::decode(&mut buf)
            .unwrap()
            .records
            .into_iter()
            .map(|r| (r.offset, r.key, r.value))
            .collect()
    }

    fn spec(compression: Compression) -> BatchSpec {
        BatchSpec {
            base_offset: 100,
            compression,
            ..BatchSpec::keyed(&[
                (b"a", Some(b"1"), 10),
                (b"b", Some(b"2"), 30),
                (b"c", None, 20),
                (b"a", Some(b"3"), 15),
            ])
        }
    }

    #[test]
    fn rewrites_batches_keeping_offsets_for_every_codec() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let batch = scanned(&spec(compression));
            let mut map = OffsetMap::new();
            map.insert(key_hash(b"a"), 103);
            map.insert(key_hash(b"b"), 500);
            let last = HashMap::new();
            let ctx = CleanContext {
                map: &map,
                retain_tombstones: true,
                producer_last_offsets: &last,
            };
            let Fate::Replace { bytes, removed } = fate(&batch, &ctx).unwrap() else {
                panic!("expected a rewrite");
            };
            assert_eq!(removed, 2);
            let h = check_batch(&bytes).unwrap();
            assert_eq!((h.base_offset, h.last_offset()), (100, 103));
            assert_eq!(h.records_count, 2);
            assert_eq!(h.compression(), batch.header.compression());
            assert_eq!(h.max_timestamp, 20);
            let got = decode(&bytes);
            assert_eq!(got.len(), 2);
            assert_eq!((got[0].0, got[0].2.clone()), (102, None));
            assert_eq!(got[1].0, 103);
            assert_eq!(got[1].2.as_deref(), Some(&b"3"[..]));
        }
    }

    #[test]
    fn drops_expired_tombstones_and_keeps_control_batches() {
        let batch = scanned(&spec(Compression::None));
        let map = OffsetMap::new();
        let last = HashMap::new();
        let ctx = CleanContext {
            map: &map,
            retain_tombstones: false,
            producer_last_offsets: &last,
        };
        let Fate::Replace { removed, .. } = fate(&batch, &ctx).unwrap() else {
            panic!("expected a rewrite");
        };
        assert_eq!(removed, 1);
        let marker = crate::test_batches::marker(5, 0, true, 1);
        let control = ScannedBatch {
            header: check_batch(&marker).unwrap(),
            bytes: marker,
        };
        assert!(matches!(fate(&control, &ctx).unwrap(), Fate::Keep));
    }

    #[test]
    fn an_emptied_last_batch_of_a_producer_stays_as_an_empty_header() {
        let spec = BatchSpec {
            base_offset: 10,
            ..BatchSpec::keyed(&[(b"k", Some(b"v"), 5), (b"k", Some(b"w"), 6)])
        }
        .producer(9, 2, 40);
        let batch = scanned(&spec);
        let mut map = OffsetMap::new();
        map.insert(key_hash(b"k"), 50);
        let none = HashMap::new();
        let ctx = CleanContext {
            map: &map,
            retain_tombstones: true,
            producer_last_offsets: &none,
        };
        assert!(matches!(
            fate(&batch, &ctx).unwrap(),
            Fate::Drop { removed: 2 }
        ));
        let last = HashMap::from([(9, 11)]);
        let ctx = CleanContext {
            producer_last_offsets: &last,
            ..ctx
        };
        let Fate::Replace { bytes, .. } = fate(&batch, &ctx).unwrap() else {
            panic!("expected an empty batch");
        };
        let h = check_batch(&bytes).unwrap();
        assert_eq!(bytes.len(), HEADER_SIZE);
        assert_eq!(
            (h.records_count, h.base_offset, h.last_offset()),
            (0, 10, 11)
        );
        assert_eq!(
            (h.producer_id, h.base_sequence, h.last_sequence()),
            (9, 40, 41)
        );
        assert!(decode(&bytes).is_empty());
    }

    #[test]
    fn key_hashes_differ_for_different_keys() {
        assert_ne!(key_hash(b"a"), key_hash(b"b"));
        assert_ne!(key_hash(b""), key_hash(b"\0"));
        assert_eq!(key_hash(b"same"), key_hash(b"same"));
    }
}

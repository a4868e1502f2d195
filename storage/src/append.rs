//! Appending to a partition log: leader appends of one produced batch (validated, offsets and
//! epoch assigned by rewriting a copy of the 61-byte header, written together with the rest of
//! the untouched produced bytes in one gather write) and follower appends of batches exactly as
//! the leader stored them. Both roll segments as Kafka does and keep producer state and the
//! leader epoch cache current. Neither fsyncs: [`Log::flush_due`] tells the caller when
//! `flush.messages` wants a [`Log::flush`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{
    header_array, set_log_append_time, set_offset_and_epoch, verify_crc, BatchHeader, BatchIter,
    HEADER_SIZE,
};
use crate::config::{LogConfig, TimestampType};
use crate::error::{Result, StorageError};
use crate::log::Log;
use crate::producer_state::ProducerStateManager;
use crate::segment::{AppendedBatch, Segment};
use crate::validation::validate_produced;

/// What an append did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// The broker time stamped on the batch, -1 unless `message.timestamp.type=LogAppendTime`.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// Sum of the record counts of the appended batches.
    pub record_count: u32,
    pub size_bytes: u32,
    /// An idempotent duplicate: nothing was written, the offsets are the original ones.
    pub duplicate: bool,
}

/// A batch about to be written, with where its bytes are in the input.
#[derive(Debug)]
struct Pending {
    start: usize,
    header: BatchHeader,
}

impl Log {
    /// Leader append of the produce records of one partition: exactly one v2 batch. Validates
    /// it, checks idempotent producer epoch and sequence (a duplicate of one of the producer's
    /// last five batches returns the original offsets with `duplicate`), assigns offsets from
    /// the log end, stamps `leader_epoch` (and the log-append time when configured) and records
    /// the epoch in the leader epoch cache.
    pub fn append_as_leader(
        &self,
        records: Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.guarded(|| {
            let config = self.config();
            let header = validate_produced(&records, &config, now_ms)?;
            let log_append = config.message_timestamp_type == TimestampType::LogAppendTime;
            let writer = self.writer.lock();
            self.ensure_open()?;
            let mut producers = self.producers.lock();
            if let Some(dup) = producers.check(&header)? {
                return Ok(AppendInfo {
                    first_offset: dup.first_offset,
                    last_offset: dup.last_offset,
                    max_timestamp: dup.timestamp,
                    log_append_time: if log_append { dup.timestamp } else { -1 },
                    log_start_offset: self.log_start_offset(),
                    record_count: header.records_count as u32,
                    size_bytes: 0,
                    duplicate: true,
                });
            }
            let base = self.log_end_offset();
            let last = base + i64::from(header.last_offset_delta);
            let max_timestamp = if log_append {
                now_ms
            } else {
                header.max_timestamp
            };
            let mut head = header_array(&records);
            set_offset_and_epoch(&mut head, base, leader_epoch);
            if log_append {
                set_log_append_time(&mut head, now_ms, &records[HEADER_SIZE..]);
            }
            let size = records.len() as u64;
            let active = self.active_segment()?;
            let segment = if should_roll(&active, &config, 0, size, last, max_timestamp, now_ms) {
                self.roll_locked(base, &mut producers, now_ms)?
            } else {
                active
            };
            segment.append(
                &[&head, &records[HEADER_SIZE..]],
                &[AppendedBatch {
                    base_offset: base,
                    last_offset: last,
                    max_timestamp,
                    size: size as u32,
                }],
                config.index_interval_bytes,
            )?;
            self.log_end_offset.store(last + 1, Ordering::Release);
            let stored = BatchHeader {
                base_offset: base,
                partition_leader_epoch: leader_epoch,
                max_timestamp,
                ..header
            };
            producers.apply(&stored, max_timestamp);
            drop(producers);
            self.epochs.write().maybe_assign(leader_epoch, base)?;
            drop(writer);
            Ok(AppendInfo {
                first_offset: base,
                last_offset: last,
                max_timestamp,
                log_append_time: if log_append { now_ms } else { -1 },
                log_start_offset: self.log_start_offset(),
                record_count: header.records_count as u32,
                size_bytes: size as u32,
                duplicate: false,
            })
        })
    }

    /// Follower append of batches exactly as the leader stored them. The first must not start
    /// before the log end offset (`UnexpectedAppendOffset`); later offsets may skip ahead, as
    /// compacted leaders send. Every batch is CRC-checked; a trailing partial batch is ignored.
    pub fn append_as_follower(&self, records: Bytes) -> Result<AppendInfo> {
        self.guarded(|| {
            let config = self.config();
            let batches = check_replicated(&records, &config)?;
            let writer = self.writer.lock();
            self.ensure_open()?;
            let log_end = self.log_end_offset();
            let Some(first) = batches.first() else {
                return Ok(AppendInfo {
                    first_offset: log_end,
                    last_offset: log_end - 1,
                    max_timestamp: -1,
                    log_append_time: -1,
                    log_start_offset: self.log_start_offset(),
                    record_count: 0,
                    size_bytes: 0,
                    duplicate: false,
                });
            };
            if first.header.base_offset < log_end {
                return Err(StorageError::UnexpectedAppendOffset {
                    expected: log_end,
                    got: first.header.base_offset,
                });
            }
            let now_ms = crate::log::now_ms();
            let mut producers = self.producers.lock();
            let mut segment = self.active_segment()?;
            let mut run: Vec<&Pending> = Vec::new();
            let mut run_bytes = 0u64;
            for batch in &batches {
                let h = &batch.header;
                let size = h.size() as u64;
                if should_roll(
                    &segment,
                    &config,
                    run_bytes,
                    size,
                    h.last_offset(),
                    h.max_timestamp,
                    now_ms,
                ) {
                    self.write_run(&segment, &records, &run, &config, &mut producers)?;
                    run.clear();
                    run_bytes = 0;
                    segment = self.roll_locked(h.base_offset, &mut producers, now_ms)?;
                }
                run.push(batch);
                run_bytes += size;
            }
            self.write_run(&segment, &records, &run, &config, &mut producers)?;
            drop(producers);
            drop(writer);
            let last = batches.last().map_or(first, |b| b);
            Ok(AppendInfo {
                first_offset: first.header.base_offset,
                last_offset: last.header.last_offset(),
                max_timestamp: batches
                    .iter()
                    .map(|b| b.header.max_timestamp)
                    .max()
                    .unwrap_or(-1),
                log_append_time: -1,
                log_start_offset: self.log_start_offset(),
                record_count: batches.iter().map(|b| b.header.records_count as u32).sum(),
                size_bytes: batches.iter().map(|b| b.header.size() as u32).sum(),
                duplicate: false,
            })
        })
    }

    /// Writes a contiguous run of replicated batches to `segment` and publishes them.
    fn write_run(
        &self,
        segment: &Segment,
        records: &Bytes,
        run: &[&Pending],
        config: &LogConfig,
        producers: &mut ProducerStateManager,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return Ok(());
        };
        let end = last.start + last.header.size();
        let appended: Vec<AppendedBatch> = run
            .iter()
            .map(|b| AppendedBatch {
                base_offset: b.header.base_offset,
                last_offset: b.header.last_offset(),
                max_timestamp: b.header.max_timestamp,
                size: b.header.size() as u32,
            })
            .collect();
        segment.append(
            &[&records[first.start..end]],
            &appended,
            config.index_interval_bytes,
        )?;
        self.log_end_offset.store(
            last.header.last_offset().saturating_add(1),
            Ordering::Release,
        );
        let mut epochs = self.epochs.write();
        for b in run {
            producers.replay(&b.header);
            epochs.maybe_assign(b.header.partition_leader_epoch, b.header.base_offset)?;
        }
        Ok(())
    }

    /// Rolls to a new active segment starting at `base_offset` (no-op when the active segment
    /// is empty and already starts there), snapshotting producer state at the roll point.
    pub(crate) fn roll_locked(
        &self,
        base_offset: i64,
        producers: &mut ProducerStateManager,
        now_ms: i64,
    ) -> Result<Arc<Segment>> {
        let active = self.active_segment()?;
        if active.size() == 0 && active.base_offset() == base_offset {
            return Ok(active);
        }
        if base_offset < active.next_offset() {
            return Err(StorageError::UnexpectedAppendOffset {
                expected: active.next_offset(),
                got: base_offset,
            });
        }
        let config = self.config();
        active.seal()?;
        let segment = Arc::new(Segment::create(
            &self.dir,
            base_offset,
            config.segment_index_bytes,
            config.preallocate_bytes(),
            now_ms,
        )?);
        self.update_segments(|map| {
            map.insert(base_offset, Arc::clone(&segment));
        });
        producers.take_snapshot_deferred(base_offset)?;
        tracing::debug!(partition = %self.tp, base_offset, "rolled segment");
        Ok(segment)
    }

    /// Whether `flush.messages` calls for a [`Log::flush`] now. Appends never fsync
    /// themselves: the caller flushes, off its request threads and without holding its own
    /// locks, before it acknowledges.
    pub fn flush_due(&self) -> bool {
        let flush_messages = self.config.read().flush_messages;
        if flush_messages == i64::MAX {
            return false;
        }
        let unflushed = self.log_end_offset() - self.recovery.lock().offset;
        unflushed >= flush_messages
    }
}

/// Kafka's `shouldRoll` for a batch of `size` bytes ending at `last_offset`, with
/// `pending` bytes already headed for `segment` in the same append.
fn should_roll(
    segment: &Segment,
    config: &LogConfig,
    pending: u64,
    size: u64,
    last_offset: i64,
    max_timestamp: i64,
    now_ms: i64,
) -> bool {
    let used = segment.size() + pending;
    let jitter = roll_jitter(config, segment.base_offset());
    let too_old = config.segment_ms != i64::MAX
        && segment.time_waited_for_roll(now_ms, max_timestamp)
            > config.segment_ms.saturating_sub(jitter);
    (used > 0 && (used + size > config.segment_bytes || too_old || segment.indexes_full()))
        || !segment.can_hold_offset(last_offset)
}

/// A per-segment jitter in `[0, segment.jitter.ms)`, derived from the base offset so that
/// partitions created together do not all roll at once.
pub(crate) fn roll_jitter(config: &LogConfig, base_offset: i64) -> i64 {
    if config.segment_jitter_ms <= 0 {
        return 0;
    }
    let mut x = base_offset as u64 ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let range = config.segment_jitter_ms.min(config.segment_ms).max(1) as u64;
    (x % range) as i64
}

/// CRC-checks replicated batches and their offset order.
fn check_replicated(records: &Bytes, config: &LogConfig) -> Result<Vec<Pending>> {
    let mut out: Vec<Pending> = Vec::new();
    for item in BatchIter::new(records) {
        let (start, header) = item?;
        verify_crc(&records[start..start + header.size()], &header)?;
        if header.size() as u64 > config.segment_bytes {
            return Err(StorageError::RecordListTooLarge {
                size: header.size(),
                max: config.segment_bytes,
            });
        }
        if let Some(prev) = out.last() {
            if header.base_offset <= prev.header.last_offset() {
                return Err(StorageError::InvalidRecord(format!(
                    "replicated batch at offset {} does not follow offset {}",
                    header.base_offset,
                    prev.header.last_offset()
                )));
            }
        }
        out.push(Pending { start, header });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_batches::{batch, BatchSpec};

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let config = LogConfig {
            segment_jitter_ms: 1000,
            ..LogConfig::default()
        };
        let jitters: Vec<i64> = (0..200).map(|b| roll_jitter(&config, b * 977)).collect();
        assert!(jitters.iter().all(|j| (0..1000).contains(j)));
        assert!(jitters.iter().any(|j| *j != jitters[0]));
        assert_eq!(roll_jitter(&config, 5), roll_jitter(&config, 5));
        assert_eq!(roll_jitter(&LogConfig::default(), 5), 0);
    }

    #[test]
    fn replicated_batches_must_be_ordered_and_intact() {
        let at = |base: i64| {
            batch(&BatchSpec {
                base_offset: base,
                ..BatchSpec::values(&[b"a", b"b"])
            })
        };
        let config = LogConfig::default();
        let mut ok = at(0).to_vec();
        ok.extend_from_slice(&at(5));
        assert_eq!(
            check_replicated(&Bytes::from(ok), &config).unwrap().len(),
            2
        );
        let mut overlapping = at(0).to_vec();
        overlapping.extend_from_slice(&at(1));
        assert_eq!(
            check_replicated(&Bytes::from(overlapping), &config)
                .unwrap_err()
                .kafka_error_code()
                .code(),
            87
        );
        let mut corrupt = at(0).to_vec();
        let n = corrupt.len();
        corrupt[n - 1] ^= 1;
        assert_eq!(
            check_replicated(&Bytes::from(corrupt), &config)
                .unwrap_err()
                .kafka_error_code()
                .code(),
            2
        );
    }
}

//! Periodic and explicit upkeep of a partition log: rolling, flushing (explicit, by
//! `flush.messages` / `flush.ms`, and of rolled segments so the recovery point advances),
//! retention (deleting whole old segments) and producer id expiry.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::info;

use crate::append::roll_jitter;
use crate::atomic_file::{sync_dir, sync_file};
use crate::error::Result;
use crate::log::{now_ms, Log};
use crate::retention::{deletable_prefix, RetentionInput, SegmentSummary};
use crate::segment::Segment;

/// What [`Log::maintain`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceOutcome {
    /// A time-based roll happened.
    pub rolled: bool,
    /// Data was fsynced.
    pub flushed: bool,
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub expired_producers: usize,
    pub log_start_offset: i64,
}

impl Log {
    /// Starts a new active segment at the log end offset.
    pub fn roll(&self) -> Result<()> {
        self.guarded(|| {
            let _writer = self.writer.lock();
            self.ensure_open()?;
            let mut producers = self.producers.lock();
            self.roll_locked(self.log_end_offset(), &mut producers, now_ms())?;
            Ok(())
        })
    }

    /// fsyncs every segment up to the log end offset and advances the recovery point.
    pub fn flush(&self) -> Result<()> {
        self.guarded(|| {
            self.flush_upto(self.log_end_offset())?;
            Ok(())
        })
    }

    /// fsyncs the segments holding offsets in `[recovery point, upto)`. Returns whether it
    /// flushed anything.
    pub(crate) fn flush_upto(&self, upto: i64) -> Result<bool> {
        let (from, truncations) = {
            let r = self.recovery.lock();
            (r.offset, self.truncations.load(Ordering::Acquire))
        };
        if upto <= from {
            return Ok(false);
        }
        let segments = self.segments();
        let first = segments
            .range(..=from)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        for (_, segment) in segments.range(first..upto) {
            segment.flush()?;
        }
        let snapshots = self.producers.lock().take_unsynced(upto);
        if !snapshots.is_empty() {
            for path in &snapshots {
                sync_file(path)?;
            }
            sync_dir(&self.dir)?;
        }
        let mut r = self.recovery.lock();
        if self.truncations.load(Ordering::Acquire) == truncations && upto > r.offset {
            r.offset = upto.min(self.log_end_offset());
        }
        r.last_flush_ms = now_ms();
        Ok(true)
    }

    /// Periodic work: time-based roll (`segment.ms`), flushing rolled segments and by
    /// `flush.ms`, retention of whole segments, deleting retired files whose delay passed,
    /// producer id expiry, and persisting the recovery point.
    pub fn maintain(&self, now_ms: i64) -> Result<MaintenanceOutcome> {
        self.guarded(|| {
            let config = self.config();
            let mut outcome = MaintenanceOutcome::default();
            if self.ensure_open().is_err() {
                outcome.log_start_offset = self.log_start_offset();
                return Ok(outcome);
            }
            {
                let _writer = self.writer.lock();
                let active = self.active_segment()?;
                let jitter = roll_jitter(&config, active.base_offset());
                if active.size() > 0
                    && config.segment_ms != i64::MAX
                    && active.time_waited_for_roll(now_ms, now_ms)
                        > config.segment_ms.saturating_sub(jitter)
                {
                    let mut producers = self.producers.lock();
                    self.roll_locked(self.log_end_offset(), &mut producers, now_ms)?;
                    outcome.rolled = true;
                }
            }
            let active_base = self.active_segment()?.base_offset();
            outcome.flushed |= self.flush_upto(active_base)?;
            let since_flush = now_ms.saturating_sub(self.recovery.lock().last_flush_ms);
            if config.flush_ms != i64::MAX && since_flush >= config.flush_ms {
                outcome.flushed |= self.flush_upto(self.log_end_offset())?;
            }
            let (count, bytes) = self.delete_old_segments(now_ms)?;
            outcome.deleted_segments = count;
            outcome.deleted_bytes = bytes;
            self.delete_due_files(now_ms)?;
            outcome.expired_producers = self
                .producers
                .lock()
                .remove_expired(now_ms, config.producer_id_expiration_ms);
            self.persist_recovery_point()?;
            outcome.log_start_offset = self.log_start_offset();
            Ok(outcome)
        })
    }

    /// Retention: deletes the segments Kafka's rules allow, rolling first when every segment
    /// goes. Returns (segments, bytes) deleted.
    fn delete_old_segments(&self, now_ms: i64) -> Result<(usize, u64)> {
        let config = self.config();
        let _writer = self.writer.lock();
        let segments = self.segments();
        let summaries: Vec<SegmentSummary> = segments
            .values()
            .map(|s| SegmentSummary {
                base_offset: s.base_offset(),
                size: s.size(),
                largest_timestamp: s.largest_timestamp(),
            })
            .collect();
        let input = RetentionInput {
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
            high_watermark: self.high_watermark(),
            now_ms,
        };
        let (count, reasons) = deletable_prefix(&summaries, &config, input);
        if count == 0 {
            return Ok((0, 0));
        }
        let doomed: Vec<Arc<Segment>> = segments.values().take(count).cloned().collect();
        if count == segments.len() {
            let mut producers = self.producers.lock();
            self.roll_locked(self.log_end_offset(), &mut producers, now_ms)?;
        }
        let bytes: u64 = doomed.iter().map(|s| s.size()).sum();
        self.retire_segments(&doomed, now_ms)?;
        let first = self
            .segments()
            .keys()
            .next()
            .copied()
            .unwrap_or(input.log_end_offset);
        if first > self.log_start_offset() {
            self.advance_log_start(first)?;
        }
        info!(
            partition = %self.tp,
            segments = count,
            bytes,
            reasons = ?reasons,
            log_start = self.log_start_offset(),
            "deleted old segments"
        );
        Ok((count, bytes))
    }
}

//! One partition log: its segments, offsets (log start, log end, high watermark), producer
//! state and leader epochs; opening with recovery, truncation, timestamp lookup and clean close.
//! Appends, reads and periodic maintenance live in their own modules as further `impl Log`
//! blocks.
//!
//! Concurrency: one writer at a time (the `writer` lock) appends, rolls, truncates and deletes;
//! readers never take it. They snapshot the segment map (an `Arc` swapped on change) and read
//! each segment's committed prefix, so they only ever see whole batches. Lock order: writer,
//! producers, epochs, segments, recovery point.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use tracing::{info, warn};

use crate::atomic_file::{sync_dir, write_atomically};
use crate::batch_scan::HeaderScan;
use crate::checkpoint::{read_single_offset, write_offsets};
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::leader_epoch::LeaderEpochCache;
use crate::log_dir::LogDir;
use crate::partition_metadata;
use crate::producer_state::{ProducerEntry, ProducerStateManager};
use crate::recovery::{load_segments, LoadOptions, SegmentMap, DELETED_SUFFIX};
use crate::segment::Segment;
use crate::timestamp_search::{self, TimestampOffset};
use crate::TopicPartition;

/// Per-partition marker written by a clean close; holds the log end offset at that time.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
pub(crate) const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub(crate) const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";

/// Durability bookkeeping: everything below `offset` has been fsynced.
#[derive(Debug)]
pub(crate) struct RecoveryPoint {
    pub offset: i64,
    pub persisted: i64,
    pub last_flush_ms: i64,
}

/// A segment taken out of the log, deleted once `delete_at_ms` passes.
#[derive(Debug)]
pub(crate) struct PendingDelete {
    pub segment: Arc<Segment>,
    pub delete_at_ms: i64,
}

/// One partition log. `Send + Sync`; share it as `Arc<Log>`.
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) tp: TopicPartition,
    pub(crate) config: RwLock<LogConfig>,
    pub(crate) segments: RwLock<Arc<SegmentMap>>,
    pub(crate) log_start_offset: AtomicI64,
    pub(crate) log_end_offset: AtomicI64,
    pub(crate) high_watermark: AtomicI64,
    pub(crate) writer: Mutex<()>,
    pub(crate) producers: Mutex<ProducerStateManager>,
    pub(crate) epochs: RwLock<LeaderEpochCache>,
    pub(crate) recovery: Mutex<RecoveryPoint>,
    /// Bumped by every truncation so background work started before it can tell.
    pub(crate) truncations: AtomicU64,
    pub(crate) topic_id: Mutex<Option<[u8; 16]>>,
    pub(crate) cleaner: Mutex<()>,
    pub(crate) pending_deletes: Mutex<Vec<PendingDelete>>,
    pub(crate) closed: AtomicBool,
    /// The directory this log lives in; an I/O error in any write takes it offline.
    pub(crate) log_dir: Arc<LogDir>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("topic_partition", &self.tp)
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .field("high_watermark", &self.high_watermark())
            .finish()
    }
}

/// Wall clock in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn read_checkpoint_or_warn(path: &Path) -> Option<i64> {
    read_single_offset(path).unwrap_or_else(|err| {
        warn!(path = %path.display(), error = %err, "ignoring unreadable checkpoint");
        None
    })
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering it if it was not closed cleanly.
    pub fn open(dir: PathBuf, tp: TopicPartition, config: LogConfig) -> Result<Log> {
        let parent = dir.parent().unwrap_or(&dir).to_path_buf();
        Log::open_in(dir, tp, config, LogDir::standalone(&parent))
    }

    /// [`Log::open`] for a log in one of a manager's directories, which an I/O error takes
    /// offline.
    pub(crate) fn open_in(
        dir: PathBuf,
        tp: TopicPartition,
        config: LogConfig,
        log_dir: Arc<LogDir>,
    ) -> Result<Log> {
        log_dir.ensure_online()?;
        let result = Log::open_unchecked(dir, tp, config, Arc::clone(&log_dir));
        log_dir.check(result)
    }

    fn open_unchecked(
        dir: PathBuf,
        tp: TopicPartition,
        config: LogConfig,
        log_dir: Arc<LogDir>,
    ) -> Result<Log> {
        fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        let now = now_ms();
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean_end: Option<i64> = fs::read_to_string(&marker)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let recovery_point =
            read_checkpoint_or_warn(&dir.join(RECOVERY_POINT_CHECKPOINT)).unwrap_or(0);
        let options = LoadOptions {
            clean: clean_end.is_some(),
            recovery_point,
            index_bytes: config.segment_index_bytes,
            index_interval: config.index_interval_bytes,
            now_ms: now,
        };
        let mut loaded = load_segments(&dir, options)?;
        let loaded_end = loaded
            .segments
            .values()
            .next_back()
            .map(|s| s.next_offset());
        if clean_end.is_some() && loaded_end.is_some() && loaded_end != clean_end {
            warn!(partition = %tp, expected = ?clean_end, found = ?loaded_end, "clean shutdown marker disagrees with the log; recovering");
            drop(loaded);
            loaded = load_segments(
                &dir,
                LoadOptions {
                    clean: false,
                    ..options
                },
            )?;
        }
        let clean = clean_end.is_some() && !loaded.recovered;
        let mut segments = loaded.segments;
        let checkpointed_start = read_checkpoint_or_warn(&dir.join(LOG_START_CHECKPOINT));
        if segments.is_empty() {
            let base = checkpointed_start.unwrap_or(0).max(0);
            let segment = Segment::create(
                &dir,
                base,
                config.segment_index_bytes,
                config.preallocate_bytes(),
                now,
            )?;
            segments.insert(base, Arc::new(segment));
        }
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let mut log_end = segments.values().next_back().map_or(0, |s| s.next_offset());
        let mut log_start = checkpointed_start.unwrap_or(first_base).max(first_base);
        if log_start > log_end {
            warn!(partition = %tp, log_start, log_end, "log ends before its start offset; starting empty at the log start");
            for segment in segments.values() {
                segment.delete_files()?;
            }
            segments.clear();
            let segment = Segment::create(
                &dir,
                log_start,
                config.segment_index_bytes,
                config.preallocate_bytes(),
                now,
            )?;
            segments.insert(log_start, Arc::new(segment));
            log_end = log_start;
        }
        log_start = log_start.min(log_end);

        let mut producers = ProducerStateManager::new(&dir)?;
        let from = producers.reload(log_end)?.unwrap_or(first_base);
        replay_producers(&segments, from, &mut producers)?;
        let mut epochs = LeaderEpochCache::load(&dir);
        epochs.truncate_from_end(log_end)?;
        epochs.truncate_from_start(log_start)?;
        let topic_id = partition_metadata::read(&dir).unwrap_or_else(|err| {
            warn!(partition = %tp, error = %err, "ignoring unreadable partition metadata");
            None
        });
        let recovery_offset = if clean {
            log_end
        } else {
            recovery_point.min(log_end)
        };
        if marker.exists() {
            fs::remove_file(&marker).ctx(|| format!("remove {}", marker.display()))?;
            sync_dir(&dir)?;
        }
        info!(partition = %tp, log_start, log_end, segments = segments.len(), clean, "opened log");
        Ok(Log {
            dir,
            tp,
            config: RwLock::new(config),
            segments: RwLock::new(Arc::new(segments)),
            log_start_offset: AtomicI64::new(log_start),
            log_end_offset: AtomicI64::new(log_end),
            high_watermark: AtomicI64::new(log_start),
            writer: Mutex::new(()),
            producers: Mutex::new(producers),
            epochs: RwLock::new(epochs),
            recovery: Mutex::new(RecoveryPoint {
                offset: recovery_offset,
                persisted: recovery_point,
                last_flush_ms: now,
            }),
            truncations: AtomicU64::new(0),
            topic_id: Mutex::new(topic_id),
            cleaner: Mutex::new(()),
            pending_deletes: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            log_dir,
        })
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        self.config.read().clone()
    }

    /// Replaces the config; size and index limits apply from the next segment.
    pub fn update_config(&self, config: LogConfig) {
        *self.config.write() = config;
    }

    /// Topic id recorded in `partition.metadata`.
    pub fn topic_id(&self) -> Option<[u8; 16]> {
        *self.topic_id.lock()
    }

    /// Records the topic id in `partition.metadata`.
    pub fn set_topic_id(&self, id: [u8; 16]) -> Result<()> {
        self.guarded(|| {
            let mut current = self.topic_id.lock();
            if *current != Some(id) {
                partition_metadata::write(&self.dir, &id)?;
                *current = Some(id);
            }
            Ok(())
        })
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Sets the high watermark, clamped to `[log start, log end]`.
    pub fn set_high_watermark(&self, hw: i64) {
        let clamped = hw.min(self.log_end_offset()).max(self.log_start_offset());
        self.high_watermark.store(clamped, Ordering::Release);
    }

    /// The high watermark, lowered to the first offset of an open transaction if there is one
    /// (what `read_committed` consumers may read up to).
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        match self.producers.lock().first_unstable_offset() {
            Some(first) => first.min(hw),
            None => hw,
        }
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments().values().map(|s| s.size()).sum()
    }

    pub fn num_segments(&self) -> usize {
        self.segments().len()
    }

    /// Base offsets of the segments, ascending.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments().keys().copied().collect()
    }

    /// Offset below which the log is known to be on disk (fsynced).
    pub fn recovery_point(&self) -> i64 {
        self.recovery.lock().offset
    }

    pub(crate) fn segments(&self) -> Arc<SegmentMap> {
        Arc::clone(&self.segments.read())
    }

    pub(crate) fn active_segment(&self) -> Result<Arc<Segment>> {
        self.segments()
            .values()
            .next_back()
            .cloned()
            .ok_or_else(|| StorageError::LogClosed(self.tp.to_string()))
    }

    pub(crate) fn update_segments(&self, f: impl FnOnce(&mut SegmentMap)) {
        let mut guard = self.segments.write();
        let mut map = SegmentMap::clone(&guard);
        f(&mut map);
        *guard = Arc::new(map);
    }

    pub(crate) fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::LogClosed(self.tp.to_string()));
        }
        self.log_dir.ensure_online()
    }

    /// Whether this log's directory went offline after an I/O error (reads and writes of it
    /// then answer `KAFKA_STORAGE_ERROR`).
    pub fn is_offline(&self) -> bool {
        self.log_dir.failure().is_some()
    }

    /// Runs a write, taking the log dir offline if it fails with a log-dir failure
    /// ([`crate::is_log_dir_failure`]).
    pub(crate) fn guarded<T>(&self, write: impl FnOnce() -> Result<T>) -> Result<T> {
        self.log_dir.check(write())
    }

    pub(crate) fn persist_log_start(&self, offset: i64) -> Result<()> {
        write_offsets(
            &self.dir.join(LOG_START_CHECKPOINT),
            &[(self.tp.clone(), offset)],
        )
    }

    /// Writes the recovery point checkpoint if it moved since the last write.
    pub(crate) fn persist_recovery_point(&self) -> Result<()> {
        let offset = {
            let r = self.recovery.lock();
            if r.offset == r.persisted {
                return Ok(());
            }
            r.offset
        };
        write_offsets(
            &self.dir.join(RECOVERY_POINT_CHECKPOINT),
            &[(self.tp.clone(), offset)],
        )?;
        let mut r = self.recovery.lock();
        r.persisted = offset;
        Ok(())
    }

    /// Takes segments out of the log: dropped from the segment map, their files renamed
    /// `*.deleted` now and removed after `file.delete.delay.ms` (readers holding regions keep
    /// their open files meanwhile).
    pub(crate) fn retire_segments(&self, doomed: &[Arc<Segment>], now_ms: i64) -> Result<()> {
        self.update_segments(|map| {
            for segment in doomed {
                if map
                    .get(&segment.base_offset())
                    .is_some_and(|s| Arc::ptr_eq(s, segment))
                {
                    map.remove(&segment.base_offset());
                }
            }
        });
        self.retire_files(doomed, now_ms)
    }

    /// Renames the files of segments no longer in the map and schedules their deletion.
    pub(crate) fn retire_files(&self, doomed: &[Arc<Segment>], now_ms: i64) -> Result<()> {
        let delay = self.config.read().file_delete_delay_ms;
        let mut pending = self.pending_deletes.lock();
        for segment in doomed {
            segment.rename_to(&self.dir, DELETED_SUFFIX)?;
            pending.push(PendingDelete {
                segment: Arc::clone(segment),
                delete_at_ms: now_ms.saturating_add(delay),
            });
        }
        Ok(())
    }

    /// Deletes retired segment files whose delay has passed (all of them with `i64::MAX`).
    pub(crate) fn delete_due_files(&self, now_ms: i64) -> Result<()> {
        let due: Vec<PendingDelete> = {
            let mut pending = self.pending_deletes.lock();
            let (due, keep) = pending.drain(..).partition(|p| p.delete_at_ms <= now_ms);
            *pending = keep;
            due
        };
        for p in due {
            p.segment.delete_files()?;
        }
        Ok(())
    }

    /// Truncates the log so that `offset` is the next offset to be written (everything from the
    /// batch holding `offset` on is removed). Followers call this after a leader change.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        self.guarded(|| {
            if offset < 0 {
                return Err(StorageError::OffsetOutOfRange {
                    offset,
                    log_start: self.log_start_offset(),
                    log_end: self.log_end_offset(),
                });
            }
            let _writer = self.writer.lock();
            self.ensure_open()?;
            if offset >= self.log_end_offset() {
                // Nothing to cut, but an epoch entry may start at the log end: a replica that became
                // leader and was replaced before it appended anything. Left in place, its fetches
                // keep naming that epoch and the new leader keeps answering with a divergence.
                return self.epochs.write().truncate_from_end(self.log_end_offset());
            }
            let segments = self.segments();
            if segments.keys().next().is_some_and(|first| *first > offset) {
                return self.truncate_fully_locked(offset);
            }
            self.truncations.fetch_add(1, Ordering::AcqRel);
            let now = now_ms();
            let doomed: Vec<Arc<Segment>> = segments
                .range(offset.saturating_add(1)..)
                .map(|(_, s)| Arc::clone(s))
                .collect();
            self.retire_segments(&doomed, now)?;
            let active = self.active_segment()?;
            active.truncate_to(offset, now)?;
            active.unseal(self.config.read().segment_index_bytes)?;
            let new_end = active.next_offset();
            self.log_end_offset.store(new_end, Ordering::Release);
            if self.log_start_offset() > new_end {
                self.log_start_offset.store(new_end, Ordering::Release);
                self.persist_log_start(new_end)?;
            }
            if self.high_watermark() > new_end {
                self.high_watermark.store(new_end, Ordering::Release);
            }
            {
                let mut r = self.recovery.lock();
                r.offset = r.offset.min(new_end);
            }
            self.persist_recovery_point()?;
            self.rebuild_producer_state(new_end)?;
            self.epochs.write().truncate_from_end(new_end)?;
            self.clamp_cleaner_checkpoint(new_end)?;
            info!(partition = %self.tp, offset, log_end = new_end, "truncated log");
            Ok(())
        })
    }

    /// Deletes everything and restarts the log, empty, at `offset`.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<()> {
        self.guarded(|| {
            let _writer = self.writer.lock();
            self.ensure_open()?;
            self.truncate_fully_locked(offset)
        })
    }

    fn truncate_fully_locked(&self, offset: i64) -> Result<()> {
        self.truncations.fetch_add(1, Ordering::AcqRel);
        let now = now_ms();
        let config = self.config();
        let doomed: Vec<Arc<Segment>> = self.segments().values().cloned().collect();
        self.retire_files(&doomed, now)?;
        let fresh = Arc::new(Segment::create(
            &self.dir,
            offset,
            config.segment_index_bytes,
            config.preallocate_bytes(),
            now,
        )?);
        self.update_segments(|map| {
            map.clear();
            map.insert(offset, fresh);
        });
        self.log_start_offset.store(offset, Ordering::Release);
        self.log_end_offset.store(offset, Ordering::Release);
        self.high_watermark.store(offset, Ordering::Release);
        {
            let mut r = self.recovery.lock();
            r.offset = offset;
        }
        self.producers.lock().clear()?;
        self.epochs.write().clear()?;
        self.clamp_cleaner_checkpoint(offset)?;
        self.persist_log_start(offset)?;
        self.persist_recovery_point()?;
        info!(partition = %self.tp, offset, "truncated log fully");
        Ok(())
    }

    /// Reloads producer state from the latest snapshot at or below `end` and replays the log.
    pub(crate) fn rebuild_producer_state(&self, end: i64) -> Result<()> {
        let segments = self.segments();
        let first = segments.keys().next().copied().unwrap_or(0);
        let mut producers = self.producers.lock();
        let from = producers.reload(end)?.unwrap_or(first);
        replay_producers(&segments, from, &mut producers)
    }

    /// Advances the log start offset to `offset` (DeleteRecords). Segments wholly below it are
    /// removed by [`Log::maintain`]. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        self.guarded(|| {
            let _writer = self.writer.lock();
            self.ensure_open()?;
            let hw = self.high_watermark();
            if offset > hw || offset < 0 {
                return Err(StorageError::OffsetOutOfRange {
                    offset,
                    log_start: self.log_start_offset(),
                    log_end: hw,
                });
            }
            if offset > self.log_start_offset() {
                self.advance_log_start(offset)?;
            }
            Ok(self.log_start_offset())
        })
    }

    pub(crate) fn advance_log_start(&self, offset: i64) -> Result<()> {
        self.persist_log_start(offset)?;
        self.log_start_offset.store(offset, Ordering::Release);
        if self.high_watermark() < offset {
            self.high_watermark.store(offset, Ordering::Release);
        }
        self.epochs.write().truncate_from_start(offset)?;
        self.producers.lock().prune_snapshots(offset)?;
        Ok(())
    }

    /// ListOffsets by timestamp: the first record with timestamp `>= timestamp`.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        let log_start = self.log_start_offset();
        for segment in self.segments().values() {
            if segment.largest_timestamp() < timestamp || segment.next_offset() <= log_start {
                continue;
            }
            if let Some(found) = timestamp_search::search(segment, timestamp, log_start)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP: the record with the largest timestamp (earliest such offset).
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>> {
        let segments = self.segments();
        let mut best: Option<(&Arc<Segment>, i64)> = None;
        for segment in segments.values() {
            let max = segment.max_timestamp();
            if max >= 0 && best.is_none_or(|(_, b)| max > b) {
                best = Some((segment, max));
            }
        }
        let Some((segment, max)) = best else {
            return Ok(None);
        };
        timestamp_search::search(segment, max, self.log_start_offset())
    }

    /// Latest leader epoch in the epoch cache.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.read().latest_epoch()
    }

    /// Records that `epoch` starts at `start_offset` (a new leader calls this with its LEO).
    pub fn assign_epoch_start_offset(&self, epoch: i32, start_offset: i64) -> Result<()> {
        self.guarded(|| self.epochs.write().assign(epoch, start_offset))
    }

    /// OffsetForLeaderEpoch: Kafka's `endOffsetFor` (largest epoch <= `epoch`, its end offset).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs
            .read()
            .end_offset_for(epoch, self.log_end_offset())
    }

    /// (epoch, start offset) entries of the epoch cache.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.epochs.read().entries()
    }

    /// Producers known to this partition.
    pub fn producers(&self) -> Vec<ProducerEntry> {
        self.producers.lock().entries()
    }

    /// Flushes everything, trims the active segment's indexes, snapshots producer state and
    /// writes the clean shutdown marker. Later appends fail with `LogClosed`.
    /// In an offline directory nothing is written (no clean marker: the next start recovers
    /// the log).
    pub fn close(&self) -> Result<()> {
        let _writer = self.writer.lock();
        if self.closed.swap(true, Ordering::AcqRel) || self.is_offline() {
            return Ok(());
        }
        self.guarded(|| self.close_locked())
    }

    fn close_locked(&self) -> Result<()> {
        let log_end = self.log_end_offset();
        self.flush_upto(log_end)?;
        self.active_segment()?.seal()?;
        self.producers.lock().take_snapshot(log_end)?;
        self.persist_recovery_point()?;
        self.persist_log_start(self.log_start_offset())?;
        self.delete_due_files(i64::MAX)?;
        write_atomically(
            &self.dir.join(CLEAN_SHUTDOWN_FILE),
            format!("{log_end}\n").as_bytes(),
        )?;
        info!(partition = %self.tp, log_end, "closed log");
        Ok(())
    }

    /// Closes the log and removes its directory.
    pub(crate) fn delete_dir(&self, renamed: &Path) -> Result<()> {
        let _writer = self.writer.lock();
        self.closed.store(true, Ordering::Release);
        fs::remove_dir_all(renamed).ctx(|| format!("delete {}", renamed.display()))
    }
}

/// Feeds every batch from `from` on to the producer state.
pub(crate) fn replay_producers(
    segments: &SegmentMap,
    from: i64,
    producers: &mut ProducerStateManager,
) -> Result<()> {
    let start_base = segments
        .range(..=from)
        .next_back()
        .map_or(i64::MIN, |(base, _)| *base);
    for segment in segments.range(start_base..).map(|(_, s)| s) {
        let size = segment.size();
        let position = match segment.find_batch(from)? {
            Some(b) => b.position,
            None => continue,
        };
        let mut scan = HeaderScan::new(segment.file(), position, size);
        while let Some(h) = scan.next_header()? {
            if h.header.base_offset >= from {
                producers.replay(&h.header);
            }
        }
    }
    Ok(())
}

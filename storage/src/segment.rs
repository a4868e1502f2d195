//! One log segment: a `.log` file of record batches named by its base offset, with its offset
//! and time indexes. The log's single writer appends with positional writes; readers only ever
//! see the committed prefix, published after each write together with the positions of the
//! most recent batches (so reads near the log end need no index lookup or scan). Bytes this
//! process appended count as verified; a read reaching past the verified position checks the
//! batches it would serve first (`verification`).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use parking_lot::Mutex;

use crate::batch_scan::{HeaderScan, ScannedHeader};
use crate::error::{IoContext, Result, StorageError};
use crate::offset_index::OffsetIndex;
use crate::region::FileRegion;
use crate::time_index::TimeIndex;
use crate::vectored_write::write_all_vectored_at;
use crate::verification::{verify, Verified};

/// How many of the latest batches a segment remembers the position of.
const RECENT_BATCHES: usize = 128;

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// `<dir>/<20-digit base offset><suffix>`, Kafka's file naming.
pub(crate) fn file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

/// Where a batch sits in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchPosition {
    pub base_offset: i64,
    pub last_offset: i64,
    pub position: u64,
    pub size: u32,
}

impl From<ScannedHeader> for BatchPosition {
    fn from(s: ScannedHeader) -> Self {
        BatchPosition {
            base_offset: s.header.base_offset,
            last_offset: s.header.last_offset(),
            position: s.position,
            size: s.header.size() as u32,
        }
    }
}

/// What the writer appends: one batch's offsets, max timestamp and size, in write order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AppendedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub size: u32,
}

/// Result of reading from one segment.
#[derive(Debug)]
pub(crate) struct SegmentRead {
    /// Whole batches read, if any.
    pub region: Option<FileRegion>,
    /// Whether the read stopped only because the segment ran out of batches.
    pub exhausted: bool,
}

impl SegmentRead {
    /// Where the region read ends (0 when nothing was read).
    fn end(&self) -> u64 {
        self.region
            .as_ref()
            .map_or(0, |r| r.position + u64::from(r.len))
    }
}

/// State published by the writer and read under a short lock.
#[derive(Debug)]
struct State {
    size: u64,
    next_offset: i64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    rolling_base_timestamp: Option<i64>,
    created_ms: i64,
    bytes_since_last_index_entry: u64,
    recent: VecDeque<BatchPosition>,
    verified: Verified,
}

/// One segment of a partition log.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log: Arc<File>,
    log_path: Mutex<PathBuf>,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    state: Mutex<State>,
    /// Held while verifying, so concurrent readers check each range once.
    verifying: Mutex<()>,
}

fn open_log_file(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)
        .ctx(|| format!("open segment {}", path.display()))
}

impl Segment {
    /// Creates an empty segment at `base_offset`, replacing any files of that name.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        index_bytes: u64,
        preallocate_bytes: Option<u64>,
        now_ms: i64,
    ) -> Result<Segment> {
        Segment::create_named(dir, base_offset, "", index_bytes, preallocate_bytes, now_ms)
    }

    /// Creates an empty segment whose file names carry `suffix` after the usual extension
    /// (`.cleaned` while the cleaner writes a replacement).
    pub(crate) fn create_named(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
        index_bytes: u64,
        preallocate_bytes: Option<u64>,
        now_ms: i64,
    ) -> Result<Segment> {
        let name = |ext: &str| file_path(dir, base_offset, &format!("{ext}{suffix}"));
        let log_path = name(LOG_SUFFIX);
        let log = open_log_file(&log_path, true)?;
        if let Some(bytes) = preallocate_bytes {
            log.set_len(bytes)
                .ctx(|| format!("preallocate {}", log_path.display()))?;
        }
        let offset_index = OffsetIndex::create(&name(INDEX_SUFFIX), base_offset, index_bytes)?;
        let time_index = TimeIndex::create(&name(TIME_INDEX_SUFFIX), base_offset, index_bytes)?;
        Ok(Segment::assemble(
            base_offset,
            log,
            log_path,
            offset_index,
            time_index,
            now_ms,
        ))
    }

    fn assemble(
        base_offset: i64,
        log: File,
        log_path: PathBuf,
        offset_index: OffsetIndex,
        time_index: TimeIndex,
        now_ms: i64,
    ) -> Segment {
        Segment {
            base_offset,
            log: Arc::new(log),
            log_path: Mutex::new(log_path),
            offset_index,
            time_index,
            state: Mutex::new(State {
                size: 0,
                next_offset: base_offset,
                max_timestamp: -1,
                offset_of_max_timestamp: base_offset,
                rolling_base_timestamp: None,
                created_ms: now_ms,
                bytes_since_last_index_entry: 0,
                recent: VecDeque::with_capacity(RECENT_BATCHES),
                verified: Verified::start(base_offset),
            }),
            verifying: Mutex::new(()),
        }
    }

    /// Opens a segment written before a clean shutdown: trusts its trimmed indexes and reads
    /// only the batch headers after the last index entry. Any inconsistency is an error, on
    /// which the caller recovers the segment instead.
    pub(crate) fn open_clean(dir: &Path, base_offset: i64, now_ms: i64) -> Result<Segment> {
        let log_path = file_path(dir, base_offset, LOG_SUFFIX);
        let log = open_log_file(&log_path, false)?;
        let size = log
            .metadata()
            .ctx(|| format!("stat {}", log_path.display()))?
            .len();
        let offset_index = OffsetIndex::open(
            &file_path(dir, base_offset, INDEX_SUFFIX),
            base_offset,
            size,
        )?;
        let time_index =
            TimeIndex::open(&file_path(dir, base_offset, TIME_INDEX_SUFFIX), base_offset)?;
        let segment =
            Segment::assemble(base_offset, log, log_path, offset_index, time_index, now_ms);
        segment.load_tail(size)?;
        Ok(segment)
    }

    /// Opens the `.log` file of a segment whose indexes are to be rebuilt: fresh empty indexes
    /// preallocated to `index_bytes`, size zero until the caller re-indexes the batches.
    pub(crate) fn open_for_recovery(
        dir: &Path,
        base_offset: i64,
        index_bytes: u64,
        now_ms: i64,
    ) -> Result<Segment> {
        let log_path = file_path(dir, base_offset, LOG_SUFFIX);
        let log = open_log_file(&log_path, false)?;
        let offset_index = OffsetIndex::create(
            &file_path(dir, base_offset, INDEX_SUFFIX),
            base_offset,
            index_bytes,
        )?;
        let time_index = TimeIndex::create(
            &file_path(dir, base_offset, TIME_INDEX_SUFFIX),
            base_offset,
            index_bytes,
        )?;
        Ok(Segment::assemble(
            base_offset,
            log,
            log_path,
            offset_index,
            time_index,
            now_ms,
        ))
    }

    /// Rebuilds the published state for a log of `size` valid bytes from the indexes and the
    /// headers after the last offset index entry.
    fn load_tail(&self, size: u64) -> Result<()> {
        let (max_timestamp, offset_of_max) = match self.time_index.last_entry() {
            Some(e) => (e.timestamp, e.offset),
            None => (-1, self.base_offset),
        };
        let start = self
            .offset_index
            .last_entry()
            .map_or(0, |e| e.position)
            .min(size);
        let (created_ms, verified) = {
            let state = self.state.lock();
            (state.created_ms, state.verified)
        };
        let mut state = State {
            size,
            next_offset: self.base_offset,
            max_timestamp,
            offset_of_max_timestamp: offset_of_max,
            rolling_base_timestamp: None,
            created_ms,
            bytes_since_last_index_entry: size - start,
            recent: VecDeque::with_capacity(RECENT_BATCHES),
            verified,
        };
        if size > 0 {
            let mut first = HeaderScan::new(&self.log, 0, size);
            if let Some(h) = first.next_header()? {
                state.rolling_base_timestamp = Some(h.header.max_timestamp);
            }
        }
        let mut scan = HeaderScan::new(&self.log, start, size);
        let mut expected = self.base_offset;
        while let Some(h) = scan.next_header()? {
            if h.header.base_offset < expected || !self.can_hold_offset(h.header.last_offset()) {
                return Err(StorageError::CorruptMessage(format!(
                    "batch at position {} of segment {} has offsets {}..{} out of place",
                    h.position,
                    self.base_offset,
                    h.header.base_offset,
                    h.header.last_offset()
                )));
            }
            if h.header.max_timestamp > state.max_timestamp {
                state.max_timestamp = h.header.max_timestamp;
                state.offset_of_max_timestamp = h.header.last_offset();
            }
            expected = h.header.last_offset().saturating_add(1);
            state.next_offset = expected;
            push_recent(&mut state.recent, h.into());
        }
        if state.verified.position >= size {
            // Truncated at a batch boundary inside the verified prefix.
            state.verified = Verified {
                position: size,
                next_offset: state.next_offset,
            };
        }
        *self.state.lock() = state;
        Ok(())
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn file(&self) -> &Arc<File> {
        &self.log
    }

    /// Committed bytes.
    pub(crate) fn size(&self) -> u64 {
        self.state.lock().size
    }

    /// Offset after the last batch (the base offset when empty).
    pub(crate) fn next_offset(&self) -> i64 {
        self.state.lock().next_offset
    }

    /// Largest batch max timestamp, or -1 when no batch has one.
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.state.lock().max_timestamp
    }

    /// (largest timestamp, last offset of the first batch that reached it).
    #[cfg(test)]
    pub(crate) fn max_timestamp_and_offset(&self) -> (i64, i64) {
        let state = self.state.lock();
        (state.max_timestamp, state.offset_of_max_timestamp)
    }

    /// Kafka's `largestTimestamp`: the max timestamp, or the file's modification time when no
    /// batch carries a timestamp.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        let max = self.max_timestamp();
        if max >= 0 {
            return max;
        }
        self.last_modified_ms().unwrap_or(0)
    }

    pub(crate) fn last_modified_ms(&self) -> Option<i64> {
        let modified = self.log.metadata().ok()?.modified().ok()?;
        let ms = modified.duration_since(UNIX_EPOCH).ok()?.as_millis();
        i64::try_from(ms).ok()
    }

    pub(crate) fn set_last_modified_ms(&self, ms: i64) -> Result<()> {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        self.log
            .set_modified(at)
            .ctx(|| format!("set mtime of segment {}", self.base_offset))
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> PathBuf {
        self.log_path.lock().clone()
    }

    /// Position to start a timestamp search from: the batch of the time index entry at or
    /// below `target`, but not before `start_offset`.
    pub(crate) fn timestamp_search_start(&self, target: i64, start_offset: i64) -> u64 {
        let entry = self.time_index.lookup(target);
        let from = entry.offset.max(start_offset);
        self.offset_index.lookup(from).position.min(self.size())
    }

    /// Max timestamp of the first batch (the segment's time-roll reference), if any.
    pub(crate) fn first_batch_timestamp(&self) -> Option<i64> {
        self.state.lock().rolling_base_timestamp
    }

    /// Whether a batch with `last_offset` can be stored with a 32-bit relative offset.
    pub(crate) fn can_hold_offset(&self, last_offset: i64) -> bool {
        let rel = last_offset - self.base_offset;
        (0..=i64::from(i32::MAX)).contains(&rel)
    }

    /// Whether either index has no room for another entry.
    pub(crate) fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// Kafka's time-based roll test: how long this segment has been collecting batches,
    /// measured on batch timestamps when the segment has them, else by wall clock.
    pub(crate) fn time_waited_for_roll(&self, now_ms: i64, batch_max_timestamp: i64) -> i64 {
        let state = self.state.lock();
        match state.rolling_base_timestamp {
            Some(t) if t >= 0 => batch_max_timestamp.saturating_sub(t),
            _ => now_ms.saturating_sub(state.created_ms),
        }
    }

    /// Writes `parts` (the concatenation of `batches`, in order) after the committed bytes,
    /// indexes the batches every `index_interval` bytes and publishes them.
    pub(crate) fn append(
        &self,
        parts: &[&[u8]],
        batches: &[AppendedBatch],
        index_interval: u64,
    ) -> Result<()> {
        let start = self.size();
        write_all_vectored_at(&self.log, parts, start).ctx(|| {
            format!(
                "append {} batches to {}",
                batches.len(),
                self.log_path.lock().display()
            )
        })?;
        self.index_appended(start, batches, index_interval)
    }

    /// Indexes and publishes batches already written at `start`.
    pub(crate) fn index_appended(
        &self,
        start: u64,
        batches: &[AppendedBatch],
        index_interval: u64,
    ) -> Result<()> {
        let mut cursor = {
            let state = self.state.lock();
            IndexCursor {
                position: start,
                max_timestamp: state.max_timestamp,
                offset_of_max_timestamp: state.offset_of_max_timestamp,
                bytes_since_last_index_entry: state.bytes_since_last_index_entry,
            }
        };
        let mut positions = Vec::with_capacity(batches.len());
        for batch in batches {
            if batch.max_timestamp > cursor.max_timestamp {
                cursor.max_timestamp = batch.max_timestamp;
                cursor.offset_of_max_timestamp = batch.last_offset;
            }
            if cursor.bytes_since_last_index_entry > index_interval {
                self.offset_index
                    .append(batch.last_offset, cursor.position)?;
                self.time_index.maybe_append(
                    cursor.max_timestamp,
                    cursor.offset_of_max_timestamp,
                    false,
                )?;
                cursor.bytes_since_last_index_entry = 0;
            }
            positions.push(BatchPosition {
                base_offset: batch.base_offset,
                last_offset: batch.last_offset,
                position: cursor.position,
                size: batch.size,
            });
            cursor.position += u64::from(batch.size);
            cursor.bytes_since_last_index_entry += u64::from(batch.size);
        }
        let mut state = self.state.lock();
        if state.rolling_base_timestamp.is_none() {
            state.rolling_base_timestamp = batches.first().map(|b| b.max_timestamp);
        }
        state.max_timestamp = cursor.max_timestamp;
        state.offset_of_max_timestamp = cursor.offset_of_max_timestamp;
        state.bytes_since_last_index_entry = cursor.bytes_since_last_index_entry;
        for p in positions {
            state.next_offset = p.last_offset.saturating_add(1);
            push_recent(&mut state.recent, p);
        }
        if state.verified.position == start {
            // Appended batches were validated by the writer (or by recovery).
            state.verified = Verified {
                position: cursor.position,
                next_offset: state.next_offset,
            };
        }
        state.size = cursor.position;
        Ok(())
    }

    /// The first batch whose last offset is `>= offset`, if the segment has one.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<BatchPosition>> {
        let size = {
            let state = self.state.lock();
            if let Some(found) = search_recent(&state.recent, offset) {
                return Ok(found);
            }
            state.size
        };
        let from = self.offset_index.lookup(offset).position.min(size);
        let mut scan = HeaderScan::new(&self.log, from, size);
        while let Some(h) = scan.next_header()? {
            if h.header.last_offset() >= offset {
                return Ok(Some(h.into()));
            }
        }
        Ok(None)
    }

    /// Reads whole batches starting with the one holding `start_offset`: at most `max_bytes`
    /// (the first batch whole regardless when `min_one`), none with last offset `>= max_offset`.
    pub(crate) fn read(
        &self,
        start_offset: i64,
        max_bytes: u64,
        max_offset: i64,
        min_one: bool,
    ) -> Result<SegmentRead> {
        let (size, next_offset) = {
            let state = self.state.lock();
            if let Some(Some(_)) = search_recent(&state.recent, start_offset) {
                let read = self.read_recent(&state, start_offset, max_bytes, max_offset, min_one);
                if read.end() <= state.verified.position {
                    return Ok(read);
                }
                drop(state);
                return self.verified_read(read);
            }
            (state.size, state.next_offset)
        };
        let Some(first) = self.find_batch(start_offset)? else {
            return Ok(SegmentRead {
                region: None,
                exhausted: true,
            });
        };
        if first.position + u64::from(first.size) > size {
            // Appended after this read took its view of the segment.
            return Ok(SegmentRead {
                region: None,
                exhausted: true,
            });
        }
        let nothing = SegmentRead {
            region: None,
            exhausted: false,
        };
        if first.last_offset >= max_offset || (u64::from(first.size) > max_bytes && !min_one) {
            return Ok(nothing);
        }
        let mut limit = size;
        if max_offset < next_offset {
            if let Some(stop) = self.find_batch(max_offset)? {
                limit = limit.min(stop.position);
            }
        }
        let budget_end = first
            .position
            .saturating_add(max_bytes.max(u64::from(first.size)));
        let end = if budget_end >= limit {
            limit
        } else {
            self.last_boundary_at_most(first, budget_end, limit)?
        };
        self.verified_read(SegmentRead {
            region: Some(self.region(first.position, end - first.position)),
            exhausted: end >= size,
        })
    }

    /// `read` once its bytes are verified; cut short before a corrupt batch, or the
    /// `Corrupt` error when the first batch read is the corrupt one.
    fn verified_read(&self, read: SegmentRead) -> Result<SegmentRead> {
        let Some(region) = &read.region else {
            return Ok(read);
        };
        match self.verify_to(read.end()) {
            Ok(()) => Ok(read),
            Err(StorageError::Corrupt { position, .. }) if position > region.position => {
                Ok(SegmentRead {
                    region: Some(self.region(region.position, position - region.position)),
                    exhausted: false,
                })
            }
            Err(err) => Err(err),
        }
    }

    /// Verifies the batches up to `end` (a batch boundary) not verified yet.
    pub(crate) fn verify_to(&self, end: u64) -> Result<()> {
        let _verifying = self.verifying.lock();
        let from = self.state.lock().verified;
        if from.position >= end {
            return Ok(());
        }
        let max_offset = self.base_offset.saturating_add(i64::from(i32::MAX));
        let outcome = verify(&self.log, self.base_offset, max_offset, from, end);
        {
            let mut state = self.state.lock();
            // A truncation meanwhile resets the position itself; keep its answer then.
            if state.verified == from && outcome.verified.position <= state.size {
                state.verified = outcome.verified;
            }
        }
        match outcome.error {
            None => Ok(()),
            Some(err) => Err(err),
        }
    }

    /// Bytes known to be intact (tests check that verification happens once).
    #[cfg(test)]
    pub(crate) fn verified_position(&self) -> u64 {
        self.state.lock().verified.position
    }

    fn read_recent(
        &self,
        state: &State,
        start_offset: i64,
        max_bytes: u64,
        max_offset: i64,
        min_one: bool,
    ) -> SegmentRead {
        let from = state
            .recent
            .partition_point(|b| b.last_offset < start_offset);
        let mut len = 0u64;
        let mut position = None;
        let mut exhausted = true;
        for b in state.recent.iter().skip(from) {
            let fits = len + u64::from(b.size) <= max_bytes || (len == 0 && min_one);
            if b.last_offset >= max_offset || !fits {
                exhausted = false;
                break;
            }
            position.get_or_insert(b.position);
            len += u64::from(b.size);
        }
        SegmentRead {
            region: position.map(|p| self.region(p, len)),
            exhausted,
        }
    }

    /// End of the last whole batch that ends at or before `budget_end` (at least `first`).
    fn last_boundary_at_most(
        &self,
        first: BatchPosition,
        budget_end: u64,
        limit: u64,
    ) -> Result<u64> {
        let mut boundary = first.position + u64::from(first.size);
        let jump = self
            .offset_index
            .lookup_position(budget_end)
            .map_or(0, |e| e.position);
        if jump > boundary && jump <= limit {
            boundary = jump;
        }
        let mut scan = HeaderScan::new(&self.log, boundary, limit);
        while let Some(h) = scan.next_header()? {
            let end = h.position + h.header.size() as u64;
            if end > budget_end {
                break;
            }
            boundary = end;
        }
        Ok(boundary)
    }

    fn region(&self, position: u64, len: u64) -> FileRegion {
        FileRegion {
            file: Arc::clone(&self.log),
            position,
            len: u32::try_from(len).unwrap_or(u32::MAX),
        }
    }

    /// Removes every batch from the one holding `offset` on. Returns the bytes removed.
    pub(crate) fn truncate_to(&self, offset: i64, now_ms: i64) -> Result<u64> {
        let Some(cut) = self.find_batch(offset)? else {
            return Ok(0);
        };
        let size = self.size();
        self.offset_index.truncate_to(cut.base_offset);
        self.time_index.truncate_to(cut.base_offset);
        self.log
            .set_len(cut.position)
            .ctx(|| format!("truncate segment {}", self.base_offset))?;
        if cut.position == 0 {
            self.state.lock().created_ms = now_ms;
        }
        self.load_tail(cut.position)?;
        Ok(size - cut.position)
    }

    /// Prepares a segment that stops taking appends: records the final time index entry,
    /// trims both indexes to their entries and the log file to its committed size, and drops
    /// the tail cache (only the active segment keeps one).
    pub(crate) fn seal(&self) -> Result<()> {
        let (max_ts, offset_of_max, size) = {
            let mut state = self.state.lock();
            state.recent = VecDeque::new();
            (
                state.max_timestamp,
                state.offset_of_max_timestamp,
                state.size,
            )
        };
        self.time_index.maybe_append(max_ts, offset_of_max, true)?;
        self.offset_index.trim()?;
        self.time_index.trim()?;
        let len = self
            .log
            .metadata()
            .ctx(|| format!("stat segment {}", self.base_offset))?
            .len();
        if len != size {
            self.log
                .set_len(size)
                .ctx(|| format!("trim segment {}", self.base_offset))?;
        }
        Ok(())
    }

    /// Makes a loaded segment writable again: indexes grow back to `index_bytes`.
    pub(crate) fn unseal(&self, index_bytes: u64) -> Result<()> {
        self.offset_index.resize(index_bytes)?;
        self.time_index.resize(index_bytes)
    }

    /// fsyncs the log file and msyncs the indexes.
    pub(crate) fn flush(&self) -> Result<()> {
        self.log
            .sync_data()
            .ctx(|| format!("fsync segment {}", self.base_offset))?;
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// Clears the indexes before re-indexing every batch (recovery).
    pub(crate) fn reset_indexes(&self) {
        self.offset_index.reset();
        self.time_index.reset();
        let mut state = self.state.lock();
        state.size = 0;
        state.next_offset = self.base_offset;
        state.max_timestamp = -1;
        state.offset_of_max_timestamp = self.base_offset;
        state.rolling_base_timestamp = None;
        state.bytes_since_last_index_entry = 0;
        state.recent.clear();
        state.verified = Verified::start(self.base_offset);
    }

    /// Cuts the log file to `size` bytes (recovery of a torn tail).
    pub(crate) fn truncate_file(&self, size: u64) -> Result<()> {
        self.log
            .set_len(size)
            .ctx(|| format!("truncate segment {}", self.base_offset))
    }

    /// Renames all three files to `<dir>/<base><ext><suffix>` (`suffix` empty for the plain
    /// names). The index files go first and the log last, so a `.swap` log file on disk means
    /// its indexes were renamed before it.
    pub(crate) fn rename_to(&self, dir: &Path, suffix: &str) -> Result<()> {
        let name = |ext: &str| file_path(dir, self.base_offset, &format!("{ext}{suffix}"));
        self.offset_index.rename(&name(INDEX_SUFFIX))?;
        self.time_index.rename(&name(TIME_INDEX_SUFFIX))?;
        let mut log_path = self.log_path.lock();
        let target = name(LOG_SUFFIX);
        fs::rename(&*log_path, &target)
            .ctx(|| format!("rename {} to {}", log_path.display(), target.display()))?;
        *log_path = target;
        Ok(())
    }

    /// Removes the files of this segment.
    pub(crate) fn delete_files(&self) -> Result<()> {
        let log_path = self.log_path.lock().clone();
        match fs::remove_file(&log_path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(StorageError::io(
                    format!("delete {}", log_path.display()),
                    err,
                ))
            }
            _ => {}
        }
        self.offset_index.delete()?;
        self.time_index.delete()
    }
}

struct IndexCursor {
    position: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    bytes_since_last_index_entry: u64,
}

fn push_recent(recent: &mut VecDeque<BatchPosition>, batch: BatchPosition) {
    if recent.len() == RECENT_BATCHES {
        recent.pop_front();
    }
    recent.push_back(batch);
}

/// `Some(answer)` when the remembered tail batches decide where `offset` is: the first batch
/// ending at or after it, or `Some(None)` past the last batch. `None` when the offset is older.
fn search_recent(recent: &VecDeque<BatchPosition>, offset: i64) -> Option<Option<BatchPosition>> {
    let front = recent.front()?;
    if offset < front.base_offset {
        return None;
    }
    let i = recent.partition_point(|b| b.last_offset < offset);
    Some(recent.get(i).copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::check_batch;
    use crate::test_batches::{batch, BatchSpec};
    use bytes::Bytes;

    fn batch_at(base: i64, n: usize, value_len: usize, ts: i64) -> Bytes {
        let value = vec![b'x'; value_len];
        let values: Vec<&[u8]> = (0..n).map(|_| value.as_slice()).collect();
        let mut spec = BatchSpec::values(&values);
        spec.base_offset = base;
        for (i, r) in spec.records.iter_mut().enumerate() {
            r.2 = ts + i as i64;
        }
        batch(&spec)
    }

    fn append(seg: &Segment, b: &Bytes) {
        let h = check_batch(b).unwrap();
        seg.append(
            &[b],
            &[AppendedBatch {
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                max_timestamp: h.max_timestamp,
                size: b.len() as u32,
            }],
            1000,
        )
        .unwrap();
    }

    fn filled(dir: &Path, batches: usize) -> (Segment, Vec<Bytes>) {
        let seg = Segment::create(dir, 100, 64 * 1024, None, 0).unwrap();
        let mut all = Vec::new();
        for i in 0..batches {
            let b = batch_at(100 + i as i64 * 3, 3, 200, 10_000 + i as i64 * 10);
            append(&seg, &b);
            all.push(b);
        }
        (seg, all)
    }

    #[test]
    fn find_batch_uses_index_scan_and_recent_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, all) = filled(dir.path(), 400);
        assert_eq!(seg.next_offset(), 100 + 400 * 3);
        assert!(seg.offset_index.entries() > 10);
        let mut pos = 0u64;
        for (i, b) in all.iter().enumerate() {
            for off in [0, 2] {
                let found = seg.find_batch(100 + i as i64 * 3 + off).unwrap().unwrap();
                assert_eq!(found.position, pos);
                assert_eq!(found.size as usize, b.len());
            }
            pos += b.len() as u64;
        }
        assert_eq!(seg.find_batch(100 + 400 * 3).unwrap(), None);
        assert_eq!(seg.find_batch(0).unwrap().unwrap().position, 0);
    }

    #[test]
    fn reads_respect_budget_max_offset_and_min_one() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, all) = filled(dir.path(), 400);
        let size = all[0].len() as u64;
        for start in [100i64, 100 + 3 * 150, 100 + 3 * 399] {
            let first = ((start - 100) / 3) as usize;
            let r = seg.read(start, size * 5 + 10, i64::MAX, true).unwrap();
            let region = r.region.unwrap();
            assert_eq!(region.position, first as u64 * size);
            let expect = (400 - first).min(5) as u64 * size;
            assert_eq!(u64::from(region.len), expect);
            let r = seg.read(start, 1, i64::MAX, true).unwrap();
            assert_eq!(u64::from(r.region.unwrap().len), size);
            assert!(seg
                .read(start, 1, i64::MAX, false)
                .unwrap()
                .region
                .is_none());
            let r = seg.read(start, u64::MAX, start + 7, true).unwrap();
            let want = (400 - first).min(2) as u64 * size;
            assert_eq!(u64::from(r.region.unwrap().len), want);
        }
        let all_read = seg.read(100, u64::MAX, i64::MAX, true).unwrap();
        assert!(all_read.exhausted);
        assert_eq!(u64::from(all_read.region.unwrap().len), seg.size());
        let bytes = seg.read(100 + 3 * 10, size * 2, i64::MAX, true).unwrap();
        let got = bytes.region.unwrap().read_to_bytes().unwrap();
        assert_eq!(&got[..all[10].len()], &all[10][..]);
        assert_eq!(&got[all[10].len()..], &all[11][..]);
    }

    #[test]
    fn truncate_and_clean_reopen_restore_state() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, all) = filled(dir.path(), 300);
        let removed = seg.truncate_to(100 + 3 * 200 + 1, 0).unwrap();
        assert_eq!(removed, all[0].len() as u64 * 100);
        assert_eq!(seg.next_offset(), 100 + 3 * 200);
        assert_eq!(seg.max_timestamp(), 10_000 + 199 * 10 + 2);
        append(&seg, &batch_at(700, 1, 10, 50_000));
        assert_eq!(seg.next_offset(), 701);
        seg.seal().unwrap();
        let expect_size = seg.size();
        drop(seg);
        let again = Segment::open_clean(dir.path(), 100, 0).unwrap();
        assert_eq!(again.size(), expect_size);
        assert_eq!(again.next_offset(), 701);
        assert_eq!(again.max_timestamp_and_offset(), (50_000, 700));
        assert_eq!(again.find_batch(650).unwrap().unwrap().base_offset, 649);
    }

    #[test]
    fn time_roll_uses_first_batch_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 0, 1024, None, 5).unwrap();
        assert_eq!(seg.time_waited_for_roll(105, 0), 100);
        append(&seg, &batch_at(0, 1, 1, 1000));
        assert_eq!(seg.time_waited_for_roll(1_000_000, 1500), 500);
    }

    #[test]
    fn preallocated_file_is_trimmed_on_seal() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 0, 1024, Some(1 << 20), 0).unwrap();
        append(&seg, &batch_at(0, 1, 1, 1000));
        assert_eq!(fs::metadata(seg.path()).unwrap().len(), 1 << 20);
        seg.seal().unwrap();
        assert_eq!(fs::metadata(seg.path()).unwrap().len(), seg.size());
    }
}

//! Idempotent and transactional producer state of one partition, after Kafka's
//! ProducerStateManager: per producer id the epoch, the last five batches' sequence and offset
//! ranges (for duplicate detection), the first offset of an open transaction; Kafka's sequence
//! and epoch checks; `<offset>.snapshot` files written on roll and close and reloaded on open.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::atomic_file::{write_atomically, write_replacing};
use crate::batch::{increment_sequence, BatchHeader};
use crate::error::{IoContext, Result, StorageError};

/// Batches remembered per producer for duplicate detection (Kafka's NUM_BATCHES_TO_RETAIN).
pub(crate) const BATCHES_TO_RETAIN: usize = 5;
pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_MAGIC: &[u8; 4] = b"RVPS";
const SNAPSHOT_VERSION: u16 = 1;
const NO_PRODUCER_EPOCH: i16 = -1;
const NO_SEQUENCE: i32 = -1;

/// One batch an idempotent producer wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// What the partition knows about one producer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Max timestamp of the producer's last batch or marker.
    pub last_timestamp: i64,
    /// First offset of the producer's open transaction, if one is open.
    pub current_txn_first_offset: Option<i64>,
    /// The last batches, oldest first, at most five.
    pub batches: Vec<ProducerBatch>,
}

impl ProducerEntry {
    fn empty(producer_id: i64) -> ProducerEntry {
        ProducerEntry {
            producer_id,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_timestamp: -1,
            current_txn_first_offset: None,
            batches: Vec::new(),
        }
    }

    /// Sequence of the last record written, or -1.
    pub fn last_sequence(&self) -> i32 {
        self.batches.last().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// Offset of the last record written, or -1.
    pub fn last_offset(&self) -> i64 {
        self.batches.last().map_or(-1, |b| b.last_offset)
    }

    fn update_epoch(&mut self, epoch: i16) {
        if self.producer_epoch != epoch {
            self.producer_epoch = epoch;
            self.batches.clear();
        }
    }
}

/// Producer state of one partition.
#[derive(Debug)]
pub(crate) struct ProducerStateManager {
    dir: PathBuf,
    producers: HashMap<i64, ProducerEntry>,
    snapshots: BTreeSet<i64>,
    /// Snapshots written without fsync (on roll), synced by the next flush.
    unsynced: BTreeSet<i64>,
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    i64::from(next_seq) == i64::from(last_seq) + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

impl ProducerStateManager {
    /// Starts empty, remembering the snapshot files found in `dir`.
    pub(crate) fn new(dir: &Path) -> Result<ProducerStateManager> {
        let mut snapshots = BTreeSet::new();
        for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
            let entry = entry.ctx(|| format!("list {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(offset) = name
                .strip_suffix(SNAPSHOT_SUFFIX)
                .and_then(|n| n.parse::<i64>().ok())
            {
                snapshots.insert(offset);
            }
        }
        Ok(ProducerStateManager {
            dir: dir.to_path_buf(),
            producers: HashMap::new(),
            snapshots,
            unsynced: BTreeSet::new(),
        })
    }

    /// Leader-side checks for a data batch, Kafka's `checkProducerEpoch` and `checkSequence`.
    /// Returns the original batch when this one duplicates one of the last five.
    pub(crate) fn check(&self, header: &BatchHeader) -> Result<Option<ProducerBatch>> {
        if !header.has_producer_id() {
            return Ok(None);
        }
        let pid = header.producer_id;
        let epoch = header.producer_epoch;
        let Some(entry) = self.producers.get(&pid) else {
            return Ok(None);
        };
        if epoch == entry.producer_epoch && !header.is_control() {
            let last_seq = header.last_sequence();
            if let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == header.base_sequence && b.last_seq == last_seq)
            {
                return Ok(Some(*dup));
            }
        }
        if epoch < entry.producer_epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: pid,
                current: entry.producer_epoch,
                got: epoch,
            });
        }
        if header.is_control() {
            return Ok(None);
        }
        let first_seq = header.base_sequence;
        if epoch != entry.producer_epoch {
            if first_seq != 0 && entry.producer_epoch != NO_PRODUCER_EPOCH {
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: pid,
                    expected: 0,
                    got: first_seq,
                });
            }
        } else {
            let last_seq = entry.last_sequence();
            if entry.producer_epoch != NO_PRODUCER_EPOCH && !in_sequence(last_seq, first_seq) {
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: pid,
                    expected: increment_sequence(last_seq, 1),
                    got: first_seq,
                });
            }
        }
        Ok(None)
    }

    /// Records a written batch (data or transaction marker) at its final offsets.
    pub(crate) fn apply(&mut self, header: &BatchHeader, max_timestamp: i64) {
        if !header.has_producer_id() {
            return;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry::empty(header.producer_id));
        entry.update_epoch(header.producer_epoch);
        entry.last_timestamp = max_timestamp;
        if header.is_control() {
            entry.current_txn_first_offset = None;
            return;
        }
        if entry.batches.len() == BATCHES_TO_RETAIN {
            entry.batches.remove(0);
        }
        entry.batches.push(ProducerBatch {
            first_seq: header.base_sequence,
            last_seq: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: max_timestamp,
        });
        if header.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(header.base_offset);
        }
    }

    /// Smallest first offset of an open transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.producers
            .values()
            .filter_map(|e| e.current_txn_first_offset)
            .min()
    }

    /// All producers, by id.
    pub(crate) fn entries(&self) -> Vec<ProducerEntry> {
        let mut all: Vec<_> = self.producers.values().cloned().collect();
        all.sort_by_key(|e| e.producer_id);
        all
    }

    /// Forgets producers idle for `expiration_ms` without an open transaction.
    pub(crate) fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Writes the current state as `<offset>.snapshot`, atomically and fsynced.
    pub(crate) fn take_snapshot(&mut self, offset: i64) -> Result<()> {
        let bytes = encode(&self.entries());
        write_atomically(&snapshot_path(&self.dir, offset), &bytes)?;
        self.snapshots.insert(offset);
        self.unsynced.remove(&offset);
        Ok(())
    }

    /// Writes the current state as `<offset>.snapshot` without waiting for the disk (the roll
    /// path); [`ProducerStateManager::take_unsynced`] hands it to the next flush. A snapshot
    /// lost or torn by a crash fails its checksum and an older one is used instead.
    pub(crate) fn take_snapshot_deferred(&mut self, offset: i64) -> Result<()> {
        let bytes = encode(&self.entries());
        write_replacing(&snapshot_path(&self.dir, offset), &bytes)?;
        self.snapshots.insert(offset);
        self.unsynced.insert(offset);
        Ok(())
    }

    /// Paths of snapshots at or below `upto` still waiting for an fsync, now considered synced.
    pub(crate) fn take_unsynced(&mut self, upto: i64) -> Vec<PathBuf> {
        let due: Vec<i64> = self.unsynced.range(..=upto).copied().collect();
        for offset in &due {
            self.unsynced.remove(offset);
        }
        due.into_iter()
            .map(|offset| snapshot_path(&self.dir, offset))
            .collect()
    }

    /// Replaces the state with the latest readable snapshot at or below `upto`, deleting
    /// snapshots above it. Returns the offset replay must start from (None: the log start).
    pub(crate) fn reload(&mut self, upto: i64) -> Result<Option<i64>> {
        self.producers.clear();
        let above: Vec<i64> = self
            .snapshots
            .range(upto.saturating_add(1)..)
            .copied()
            .collect();
        for offset in above {
            self.delete_snapshot(offset)?;
        }
        while let Some(&offset) = self.snapshots.iter().next_back() {
            let path = snapshot_path(&self.dir, offset);
            match fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| decode(&b))
            {
                Ok(entries) => {
                    self.producers = entries.into_iter().map(|e| (e.producer_id, e)).collect();
                    return Ok(Some(offset));
                }
                Err(reason) => {
                    warn!(path = %path.display(), %reason, "discarding unreadable producer snapshot");
                    self.delete_snapshot(offset)?;
                }
            }
        }
        Ok(None)
    }

    /// Feeds a batch read back from the log during replay.
    pub(crate) fn replay(&mut self, header: &BatchHeader) {
        self.apply(header, header.max_timestamp);
    }

    /// Clears the state and deletes every snapshot.
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.producers.clear();
        let all: Vec<i64> = self.snapshots.iter().copied().collect();
        for offset in all {
            self.delete_snapshot(offset)?;
        }
        Ok(())
    }

    /// Deletes snapshots no longer needed once the log starts at `log_start`: all below the
    /// latest one at or below it.
    pub(crate) fn prune_snapshots(&mut self, log_start: i64) -> Result<()> {
        let Some(&keep) = self.snapshots.range(..=log_start).next_back() else {
            return Ok(());
        };
        let old: Vec<i64> = self.snapshots.range(..keep).copied().collect();
        for offset in old {
            self.delete_snapshot(offset)?;
        }
        Ok(())
    }

    /// Offsets of the snapshot files on disk.
    #[cfg(test)]
    pub(crate) fn snapshot_offsets(&self) -> Vec<i64> {
        self.snapshots.iter().copied().collect()
    }

    fn delete_snapshot(&mut self, offset: i64) -> Result<()> {
        self.snapshots.remove(&offset);
        self.unsynced.remove(&offset);
        let path = snapshot_path(&self.dir, offset);
        match fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(StorageError::io(
                format!("delete snapshot {}", path.display()),
                err,
            )),
            _ => Ok(()),
        }
    }
}

fn encode(entries: &[ProducerEntry]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + entries.len() * 64);
    body.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        body.extend_from_slice(&e.producer_id.to_be_bytes());
        body.extend_from_slice(&e.producer_epoch.to_be_bytes());
        body.extend_from_slice(&e.last_timestamp.to_be_bytes());
        body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        body.push(e.batches.len() as u8);
        for b in &e.batches {
            body.extend_from_slice(&b.first_seq.to_be_bytes());
            body.extend_from_slice(&b.last_seq.to_be_bytes());
            body.extend_from_slice(&b.first_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
            body.extend_from_slice(&b.timestamp.to_be_bytes());
        }
    }
    let mut out = Vec::with_capacity(10 + body.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let end = self.pos + N;
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| "snapshot is truncated".to_string())?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }
}

fn decode(bytes: &[u8]) -> std::result::Result<Vec<ProducerEntry>, String> {
    if bytes.len() < 10 || &bytes[..4] != SNAPSHOT_MAGIC {
        return Err("not a producer snapshot".to_string());
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != SNAPSHOT_VERSION {
        return Err(format!("unknown snapshot version {version}"));
    }
    let crc = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[10..];
    if crc32c::crc32c(body) != crc {
        return Err("snapshot checksum mismatch".to_string());
    }
    let mut r = Reader { buf: body, pos: 0 };
    let count = u32::from_be_bytes(r.take()?);
    let mut entries = Vec::new();
    for _ in 0..count {
        let producer_id = i64::from_be_bytes(r.take()?);
        let producer_epoch = i16::from_be_bytes(r.take()?);
        let last_timestamp = i64::from_be_bytes(r.take()?);
        let txn = i64::from_be_bytes(r.take()?);
        let [n] = r.take::<1>()?;
        let mut batches = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            batches.push(ProducerBatch {
                first_seq: i32::from_be_bytes(r.take()?),
                last_seq: i32::from_be_bytes(r.take()?),
                first_offset: i64::from_be_bytes(r.take()?),
                last_offset: i64::from_be_bytes(r.take()?),
                timestamp: i64::from_be_bytes(r.take()?),
            });
        }
        entries.push(ProducerEntry {
            producer_id,
            producer_epoch,
            last_timestamp,
            current_txn_first_offset: (txn >= 0).then_some(txn),
            batches,
        });
    }
    if r.pos != body.len() {
        return Err("trailing bytes in snapshot".to_string());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::check_batch;
    use crate::test_batches::{batch, marker, BatchSpec};

    fn header(pid: i64, epoch: i16, seq: i32, n: usize, base_offset: i64) -> BatchHeader {
        let values: Vec<&[u8]> = (0..n).map(|_| &b"v"[..]).collect();
        let mut spec = BatchSpec::values(&values).producer(pid, epoch, seq);
        spec.base_offset = base_offset;
        check_batch(&batch(&spec)).unwrap()
    }

    fn manager() -> (tempfile::TempDir, ProducerStateManager) {
        let dir = tempfile::tempdir().unwrap();
        let m = ProducerStateManager::new(dir.path()).unwrap();
        (dir, m)
    }

    #[test]
    fn unknown_producer_accepts_any_sequence() {
        let (_d, m) = manager();
        assert_eq!(m.check(&header(7, 0, 42, 1, 0)).unwrap(), None);
    }

    #[test]
    fn same_epoch_needs_next_sequence() {
        let (_d, mut m) = manager();
        let h = header(7, 0, 0, 3, 0);
        m.apply(&h, 1);
        assert!(m.check(&header(7, 0, 3, 1, 3)).unwrap().is_none());
        match m.check(&header(7, 0, 5, 1, 3)) {
            Err(StorageError::OutOfOrderSequence { expected, got, .. }) => {
                assert_eq!((expected, got), (3, 5))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let (_d, mut m) = manager();
        m.apply(&header(7, 0, i32::MAX - 1, 2, 0), 1);
        assert_eq!(m.producers[&7].last_sequence(), i32::MAX);
        assert!(m.check(&header(7, 0, 0, 1, 2)).unwrap().is_none());
        assert!(m.check(&header(7, 0, 1, 1, 2)).is_err());
    }

    #[test]
    fn new_epoch_requires_sequence_zero_and_old_epoch_is_fenced() {
        let (_d, mut m) = manager();
        m.apply(&header(7, 3, 0, 2, 0), 1);
        assert!(matches!(
            m.check(&header(7, 4, 5, 1, 2)),
            Err(StorageError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert!(m.check(&header(7, 4, 0, 1, 2)).unwrap().is_none());
        assert!(matches!(
            m.check(&header(7, 2, 2, 1, 2)),
            Err(StorageError::InvalidProducerEpoch {
                current: 3,
                got: 2,
                ..
            })
        ));
    }

    #[test]
    fn entry_without_epoch_accepts_new_epoch_at_any_sequence() {
        let (_d, mut m) = manager();
        let mut h = header(7, -1, 0, 1, 0);
        h.producer_epoch = NO_PRODUCER_EPOCH;
        m.apply(&h, 1);
        assert!(m.check(&header(7, 5, 9, 1, 1)).unwrap().is_none());
    }

    #[test]
    fn duplicates_of_last_five_return_original_offsets() {
        let (_d, mut m) = manager();
        for i in 0..7 {
            m.apply(&header(7, 0, i * 2, 2, 100 + i as i64 * 2), 50 + i as i64);
        }
        assert_eq!(m.producers[&7].batches.len(), BATCHES_TO_RETAIN);
        let dup = m.check(&header(7, 0, 6, 2, 0)).unwrap().unwrap();
        assert_eq!((dup.first_offset, dup.last_offset), (106, 107));
        assert!(matches!(
            m.check(&header(7, 0, 2, 2, 0)),
            Err(StorageError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            m.check(&header(7, 0, 6, 1, 0)),
            Err(StorageError::OutOfOrderSequence { .. })
        ));
    }

    #[test]
    fn transactions_track_first_unstable_offset_and_block_expiry() {
        let (_d, mut m) = manager();
        let mut spec = BatchSpec::values(&[b"a"]).producer(9, 1, 0);
        spec.transactional = true;
        spec.base_offset = 40;
        m.apply(&check_batch(&batch(&spec)).unwrap(), 1000);
        m.apply(&header(8, 0, 0, 1, 41), 1000);
        assert_eq!(m.first_unstable_offset(), Some(40));
        assert_eq!(m.remove_expired(10_000_000, 100), 1);
        assert_eq!(m.entries().len(), 1);
        let commit = check_batch(&marker(9, 1, true, 2000)).unwrap();
        m.apply(&commit, 2000);
        assert_eq!(m.first_unstable_offset(), None);
        assert_eq!(m.remove_expired(2050, 100), 0);
        assert_eq!(m.remove_expired(2100, 100), 1);
    }

    #[test]
    fn snapshots_round_trip_prune_and_skip_corrupt_files() {
        let (dir, mut m) = manager();
        m.apply(&header(1, 0, 0, 2, 0), 10);
        m.take_snapshot(2).unwrap();
        m.apply(&header(2, 3, 0, 1, 2), 11);
        m.take_snapshot(3).unwrap();
        m.apply(&header(3, 0, 0, 1, 3), 12);
        m.take_snapshot(4).unwrap();
        let mut fresh = ProducerStateManager::new(dir.path()).unwrap();
        assert_eq!(fresh.snapshot_offsets(), vec![2, 3, 4]);
        let bytes = fs::read(snapshot_path(dir.path(), 3)).unwrap();
        let mut broken = bytes.clone();
        let last = broken.len() - 1;
        broken[last] ^= 1;
        fs::write(snapshot_path(dir.path(), 3), broken).unwrap();
        assert_eq!(fresh.reload(3).unwrap(), Some(2));
        assert_eq!(fresh.entries().len(), 1);
        assert_eq!(fresh.snapshot_offsets(), vec![2]);
        fresh.take_snapshot(5).unwrap();
        fresh.take_snapshot(9).unwrap();
        fresh.prune_snapshots(6).unwrap();
        assert_eq!(fresh.snapshot_offsets(), vec![5, 9]);
        fresh.take_snapshot_deferred(12).unwrap();
        assert_eq!(fresh.take_unsynced(11), Vec::<PathBuf>::new());
        assert_eq!(fresh.take_unsynced(12), vec![snapshot_path(dir.path(), 12)]);
        assert!(fresh.take_unsynced(12).is_empty());
        let mut again = ProducerStateManager::new(dir.path()).unwrap();
        assert_eq!(again.reload(12).unwrap(), Some(12));
        fresh.clear().unwrap();
        assert!(fresh.snapshot_offsets().is_empty());
        assert_eq!(fresh.reload(100).unwrap(), None);
    }
}

//! Sparse time index of one segment (Kafka's `.timeindex`): 12-byte entries of (max timestamp
//! so far, offset relative to the segment base of the batch that first reached it).

use std::path::Path;

use crate::error::{Result, StorageError};
use crate::index_file::{be_i64, be_u32, first_at_least, largest_at_most, IndexFile};

const ENTRY_SIZE: usize = 12;

/// A timestamp and the offset it was first seen at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimestampOffsetEntry {
    pub timestamp: i64,
    pub offset: i64,
}

/// The time index of a segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    file: IndexFile,
}

fn timestamp(entry: &[u8]) -> i64 {
    be_i64(entry, 0)
}

fn relative(entry: &[u8]) -> i64 {
    i64::from(be_u32(entry, 8))
}

impl TimeIndex {
    pub(crate) fn create(path: &Path, base_offset: i64, max_bytes: u64) -> Result<TimeIndex> {
        Ok(TimeIndex {
            base_offset,
            file: IndexFile::create(path, ENTRY_SIZE, max_bytes)?,
        })
    }

    /// Opens a trimmed time index and checks it is ordered at its ends.
    pub(crate) fn open(path: &Path, base_offset: i64) -> Result<TimeIndex> {
        let index = TimeIndex {
            base_offset,
            file: IndexFile::open(path, ENTRY_SIZE)?,
        };
        let ok = index.file.with_entries(|entries| {
            let n = entries.len() / ENTRY_SIZE;
            if n == 0 {
                return true;
            }
            let (first, last) = (&entries[..ENTRY_SIZE], &entries[(n - 1) * ENTRY_SIZE..]);
            timestamp(last) >= timestamp(first)
                && relative(last) >= relative(first)
                && relative(last) <= i64::from(i32::MAX)
        });
        if !ok {
            return Err(StorageError::CorruptMessage(format!(
                "time index of segment {base_offset} is out of order"
            )));
        }
        Ok(index)
    }

    fn entry(&self, entry: &[u8]) -> TimestampOffsetEntry {
        TimestampOffsetEntry {
            timestamp: timestamp(entry),
            offset: self.base_offset.saturating_add(relative(entry)),
        }
    }

    /// The entry with the largest timestamp `<= target`, or (-1, base offset).
    pub(crate) fn lookup(&self, target: i64) -> TimestampOffsetEntry {
        self.file.with_entries(|entries| {
            match largest_at_most(entries, ENTRY_SIZE, timestamp, target) {
                Some(i) => self.entry(&entries[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE]),
                None => TimestampOffsetEntry {
                    timestamp: -1,
                    offset: self.base_offset,
                },
            }
        })
    }

    /// The last entry, or None when empty.
    pub(crate) fn last_entry(&self) -> Option<TimestampOffsetEntry> {
        self.file.with_entries(|entries| {
            let n = entries.len() / ENTRY_SIZE;
            (n > 0).then(|| self.entry(&entries[(n - 1) * ENTRY_SIZE..]))
        })
    }

    /// Appends (timestamp, offset) if the timestamp is newer than the last entry. With
    /// `grow`, a full file is extended instead of refusing (the final entry on roll/close).
    /// Returns false when the entry was refused because the index is full.
    pub(crate) fn maybe_append(&self, ts: i64, offset: i64, grow: bool) -> Result<bool> {
        if let Some(last) = self.last_entry() {
            if ts <= last.timestamp || offset <= last.offset {
                return Ok(true);
            }
        } else if ts < 0 {
            return Ok(true);
        }
        let rel = u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX);
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..8].copy_from_slice(&ts.to_be_bytes());
        entry[8..].copy_from_slice(&rel.to_be_bytes());
        self.file.append(&entry, grow)
    }

    /// Removes the entries for offsets `>= offset`.
    pub(crate) fn truncate_to(&self, offset: i64) {
        let keep = self.file.with_entries(|entries| {
            first_at_least(entries, ENTRY_SIZE, relative, offset - self.base_offset)
        });
        self.file.truncate_entries(keep);
    }

    pub(crate) fn reset(&self) {
        self.file.truncate_entries(0);
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    pub(crate) fn resize(&self, max_bytes: u64) -> Result<()> {
        self.file.resize(max_bytes)
    }

    pub(crate) fn trim(&self) -> Result<()> {
        self.file.trim()
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.file.flush()
    }

    pub(crate) fn rename(&self, to: &Path) -> Result<()> {
        self.file.rename(to)
    }

    pub(crate) fn delete(&self) -> Result<()> {
        self.file.delete()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_only_newer_timestamps_and_looks_up_floor() {
        let dir = tempfile::tempdir().unwrap();
        let idx = TimeIndex::create(&dir.path().join("a.timeindex"), 50, 36).unwrap();
        assert_eq!(idx.lookup(10).offset, 50);
        idx.maybe_append(1000, 55, false).unwrap();
        idx.maybe_append(900, 60, false).unwrap();
        idx.maybe_append(2000, 70, false).unwrap();
        idx.maybe_append(3000, 80, false).unwrap();
        assert!(idx.is_full());
        assert!(!idx.maybe_append(4000, 90, false).unwrap());
        assert!(idx.maybe_append(4000, 90, true).unwrap());
        assert_eq!(idx.lookup(999).timestamp, -1);
        assert_eq!(idx.lookup(1500).offset, 55);
        assert_eq!(idx.lookup(2000).offset, 70);
        assert_eq!(idx.last_entry().unwrap().timestamp, 4000);
        idx.truncate_to(71);
        assert_eq!(idx.last_entry().unwrap().offset, 70);
        idx.trim().unwrap();
        drop(idx);
        let again = TimeIndex::open(&dir.path().join("a.timeindex"), 50).unwrap();
        assert_eq!(again.last_entry().unwrap().timestamp, 2000);
    }
}

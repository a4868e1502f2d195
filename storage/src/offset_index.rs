//! Sparse offset index of one segment (Kafka's `.index`): 8-byte entries of (offset relative
//! to the segment base, file position of the batch whose last offset that is).

use std::path::Path;

use crate::error::{Result, StorageError};
use crate::index_file::{be_u32, first_at_least, largest_at_most, IndexFile};

const ENTRY_SIZE: usize = 8;

/// One offset index entry, in absolute terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OffsetPosition {
    pub offset: i64,
    pub position: u64,
}

/// The offset index of a segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    file: IndexFile,
}

fn relative(entry: &[u8]) -> i64 {
    i64::from(be_u32(entry, 0))
}

fn position(entry: &[u8]) -> i64 {
    i64::from(be_u32(entry, 4))
}

impl OffsetIndex {
    pub(crate) fn create(path: &Path, base_offset: i64, max_bytes: u64) -> Result<OffsetIndex> {
        Ok(OffsetIndex {
            base_offset,
            file: IndexFile::create(path, ENTRY_SIZE, max_bytes)?,
        })
    }

    /// Opens a trimmed index and checks it against the segment it belongs to.
    pub(crate) fn open(path: &Path, base_offset: i64, log_size: u64) -> Result<OffsetIndex> {
        let index = OffsetIndex {
            base_offset,
            file: IndexFile::open(path, ENTRY_SIZE)?,
        };
        index.sanity_check(log_size)?;
        Ok(index)
    }

    fn sanity_check(&self, log_size: u64) -> Result<()> {
        self.file.with_entries(|entries| {
            let n = entries.len() / ENTRY_SIZE;
            if n == 0 {
                return Ok(());
            }
            let last = &entries[(n - 1) * ENTRY_SIZE..];
            let first = &entries[..ENTRY_SIZE];
            if relative(last) < relative(first)
                || position(last) < position(first)
                || position(last) as u64 >= log_size.max(1)
                || relative(last) > i64::from(i32::MAX)
            {
                return Err(StorageError::CorruptMessage(format!(
                    "offset index of segment {} does not fit its log",
                    self.base_offset
                )));
            }
            Ok(())
        })
    }

    fn entry(&self, entry: &[u8]) -> OffsetPosition {
        OffsetPosition {
            offset: self.base_offset.saturating_add(relative(entry)),
            position: position(entry) as u64,
        }
    }

    /// The entry with the largest offset `<= target`, or (base offset, 0).
    pub(crate) fn lookup(&self, target: i64) -> OffsetPosition {
        self.file.with_entries(|entries| {
            match largest_at_most(entries, ENTRY_SIZE, relative, target - self.base_offset) {
                Some(i) => self.entry(&entries[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE]),
                None => OffsetPosition {
                    offset: self.base_offset,
                    position: 0,
                },
            }
        })
    }

    /// The entry with the largest position `<= target_position`, or None.
    pub(crate) fn lookup_position(&self, target_position: u64) -> Option<OffsetPosition> {
        let target = i64::try_from(target_position).unwrap_or(i64::MAX);
        self.file.with_entries(|entries| {
            largest_at_most(entries, ENTRY_SIZE, position, target)
                .map(|i| self.entry(&entries[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE]))
        })
    }

    /// The last entry, or None when the index is empty.
    pub(crate) fn last_entry(&self) -> Option<OffsetPosition> {
        self.file.with_entries(|entries| {
            let n = entries.len() / ENTRY_SIZE;
            (n > 0).then(|| self.entry(&entries[(n - 1) * ENTRY_SIZE..]))
        })
    }

    /// Appends an entry for a batch whose last offset is `offset`, at `position`. Entries that
    /// would not keep the index strictly increasing are skipped. Returns false when full.
    pub(crate) fn append(&self, offset: i64, position: u64) -> Result<bool> {
        if let Some(last) = self.last_entry() {
            if offset <= last.offset {
                return Ok(true);
            }
        }
        let rel = u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX);
        let pos = u32::try_from(position).unwrap_or(u32::MAX);
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..4].copy_from_slice(&rel.to_be_bytes());
        entry[4..].copy_from_slice(&pos.to_be_bytes());
        self.file.append(&entry, false)
    }

    /// Removes the entries for offsets `>= offset`.
    pub(crate) fn truncate_to(&self, offset: i64) {
        let keep = self.file.with_entries(|entries| {
            first_at_least(entries, ENTRY_SIZE, relative, offset - self.base_offset)
        });
        self.file.truncate_entries(keep);
    }

    /// Removes every entry.
    pub(crate) fn reset(&self) {
        self.file.truncate_entries(0);
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.file.entries()
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
    fn lookup_finds_floor_entries() {
        let dir = tempfile::tempdir().unwrap();
        let idx = OffsetIndex::create(&dir.path().join("a.index"), 100, 1024).unwrap();
        assert_eq!(
            idx.lookup(150),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        idx.append(109, 4000).unwrap();
        idx.append(120, 8100).unwrap();
        idx.append(120, 9000).unwrap();
        idx.append(135, 12_500).unwrap();
        assert_eq!(idx.entries(), 3);
        assert_eq!(idx.lookup(99).position, 0);
        assert_eq!(idx.lookup(108).position, 0);
        assert_eq!(idx.lookup(109).position, 4000);
        assert_eq!(idx.lookup(134).position, 8100);
        assert_eq!(idx.lookup(1000).offset, 135);
        assert_eq!(idx.lookup_position(8099).unwrap().offset, 109);
        assert_eq!(idx.lookup_position(3999), None);
        idx.truncate_to(120);
        assert_eq!(idx.entries(), 1);
        assert_eq!(idx.last_entry().unwrap().offset, 109);
    }

    #[test]
    fn reopen_checks_against_log_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.index");
        let idx = OffsetIndex::create(&path, 0, 1024).unwrap();
        idx.append(10, 5000).unwrap();
        idx.trim().unwrap();
        drop(idx);
        assert!(OffsetIndex::open(&path, 0, 6000).is_ok());
        assert!(OffsetIndex::open(&path, 0, 5000).is_err());
    }
}

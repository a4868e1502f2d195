//! A file of fixed-size big-endian index entries mapped with memmap2: preallocated while its
//! segment is active, trimmed to the written entries when the segment is rolled or closed, and
//! binary-searched (last few KiB first, as Kafka does, to stay in warm pages).
//!
//! A preallocated file is sparse. Storing into a hole of a mapping on a full file system raises
//! SIGBUS instead of returning an error, so the blocks under each page are reserved with
//! `posix_fallocate` before the first entry lands on it: a full disk then fails the append with
//! ENOSPC, which takes the log dir offline like any other I/O error.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};
use parking_lot::RwLock;

use crate::error::{IoContext, Result, StorageError};

/// Entries in the last this-many bytes are searched first.
const WARM_BYTES: usize = 8192;

/// Blocks are reserved under the mapping this many bytes at a time.
const RESERVE_BYTES: usize = 4096;

/// The mmap'd entries of one index file.
#[derive(Debug)]
pub(crate) struct IndexFile {
    entry_size: usize,
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    file: File,
    mmap: Option<MmapMut>,
    entries: usize,
    /// The first this-many bytes of the file have blocks allocated (no holes).
    reserved: usize,
}

impl Inner {
    fn capacity(&self, entry_size: usize) -> usize {
        self.mmap.as_ref().map_or(0, |m| m.len() / entry_size)
    }

    fn set_len(&mut self, len: usize) -> Result<()> {
        self.mmap = None;
        let path = &self.path;
        self.file
            .set_len(len as u64)
            .ctx(|| format!("resize index {}", path.display()))?;
        self.mmap = map(&self.file, len, path)?;
        self.reserved = self.reserved.min(len);
        Ok(())
    }

    /// Makes sure the blocks under `[0, end)` are allocated, reserving a page at a time.
    fn reserve(&mut self, end: usize) -> Result<()> {
        if end <= self.reserved {
            return Ok(());
        }
        let len = self.mmap.as_ref().map_or(0, |m| m.len());
        let upto = end.div_ceil(RESERVE_BYTES) * RESERVE_BYTES;
        let upto = upto.min(len).max(end);
        let (offset, length) = (self.reserved, upto - self.reserved);
        let (Ok(offset), Ok(length)) =
            (libc::off_t::try_from(offset), libc::off_t::try_from(length))
        else {
            return Err(StorageError::io(
                format!("reserve index {}", self.path.display()),
                io::Error::from(io::ErrorKind::InvalidInput),
            ));
        };
        // SAFETY: the descriptor is open for writing for as long as `self.file` lives.
        let rc = unsafe { libc::posix_fallocate(self.file.as_raw_fd(), offset, length) };
        if rc != 0 {
            return Err(StorageError::io(
                format!("reserve index {}", self.path.display()),
                io::Error::from_raw_os_error(rc),
            ));
        }
        self.reserved = upto;
        Ok(())
    }
}

fn map(file: &File, len: usize, path: &Path) -> Result<Option<MmapMut>> {
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the index file belongs to this log directory and is only resized through this
    // struct, which drops the mapping before changing the file length; nothing else truncates it.
    let mmap = unsafe { MmapOptions::new().len(len).map_mut(file) }
        .ctx(|| format!("mmap index {}", path.display()))?;
    Ok(Some(mmap))
}

fn round_down(bytes: u64, entry_size: usize) -> usize {
    let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    bytes / entry_size * entry_size
}

impl IndexFile {
    /// Creates (or empties) an index file preallocated to `max_bytes`.
    pub(crate) fn create(path: &Path, entry_size: usize, max_bytes: u64) -> Result<IndexFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .ctx(|| format!("create index {}", path.display()))?;
        let mut inner = Inner {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entries: 0,
            reserved: 0,
        };
        inner.set_len(round_down(max_bytes, entry_size))?;
        Ok(IndexFile {
            entry_size,
            inner: RwLock::new(inner),
        })
    }

    /// Opens a trimmed index file: every entry-sized slot in it is an entry.
    pub(crate) fn open(path: &Path, entry_size: usize) -> Result<IndexFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .ctx(|| format!("open index {}", path.display()))?;
        let len = file
            .metadata()
            .ctx(|| format!("stat index {}", path.display()))?
            .len();
        if len % entry_size as u64 != 0 {
            return Err(StorageError::CorruptMessage(format!(
                "index {} has size {len}, not a multiple of {entry_size}",
                path.display()
            )));
        }
        let len = usize::try_from(len).map_err(|_| {
            StorageError::CorruptMessage(format!("index {} is too large", path.display()))
        })?;
        let mmap = map(&file, len, path)?;
        Ok(IndexFile {
            entry_size,
            inner: RwLock::new(Inner {
                path: path.to_path_buf(),
                file,
                mmap,
                entries: len / entry_size,
                reserved: len,
            }),
        })
    }

    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.inner.read().entries
    }

    pub(crate) fn is_full(&self) -> bool {
        let inner = self.inner.read();
        inner.entries >= inner.capacity(self.entry_size)
    }

    /// Runs `f` over the bytes of the written entries (read-locked).
    pub(crate) fn with_entries<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let inner = self.inner.read();
        let used = inner.entries * self.entry_size;
        match &inner.mmap {
            Some(mmap) => f(&mmap[..used]),
            None => f(&[]),
        }
    }

    /// Appends one entry; returns false (and writes nothing) when the file is full and `grow`
    /// is false. With `grow`, a full file is extended by one entry first.
    pub(crate) fn append(&self, entry: &[u8], grow: bool) -> Result<bool> {
        let mut inner = self.inner.write();
        if inner.entries >= inner.capacity(self.entry_size) {
            if !grow {
                return Ok(false);
            }
            let len = (inner.entries + 1) * self.entry_size;
            inner.set_len(len)?;
        }
        let at = inner.entries * self.entry_size;
        inner.reserve(at + self.entry_size)?;
        if let Some(mmap) = inner.mmap.as_mut() {
            mmap[at..at + self.entry_size].copy_from_slice(entry);
        }
        inner.entries += 1;
        Ok(true)
    }

    /// Keeps only the first `entries` entries.
    pub(crate) fn truncate_entries(&self, entries: usize) {
        let mut inner = self.inner.write();
        inner.entries = inner.entries.min(entries);
    }

    /// Resizes the file to hold `max_bytes` worth of entries (never fewer than written).
    pub(crate) fn resize(&self, max_bytes: u64) -> Result<()> {
        let mut inner = self.inner.write();
        let len = round_down(max_bytes, self.entry_size).max(inner.entries * self.entry_size);
        if inner.mmap.as_ref().map_or(0, |m| m.len()) != len {
            inner.set_len(len)?;
        }
        Ok(())
    }

    /// Shrinks the file to exactly the written entries.
    pub(crate) fn trim(&self) -> Result<()> {
        self.resize(0)
    }

    /// Writes dirty pages to disk.
    pub(crate) fn flush(&self) -> Result<()> {
        let inner = self.inner.read();
        if let Some(mmap) = &inner.mmap {
            mmap.flush()
                .ctx(|| format!("flush index {}", inner.path.display()))?;
        }
        Ok(())
    }

    /// Renames the file (the mapping stays valid).
    pub(crate) fn rename(&self, to: &Path) -> Result<()> {
        let mut inner = self.inner.write();
        fs::rename(&inner.path, to)
            .ctx(|| format!("rename {} to {}", inner.path.display(), to.display()))?;
        inner.path = to.to_path_buf();
        Ok(())
    }

    /// Removes the file from the directory.
    pub(crate) fn delete(&self) -> Result<()> {
        let inner = self.inner.read();
        match fs::remove_file(&inner.path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(StorageError::io(
                format!("delete {}", inner.path.display()),
                err,
            )),
            _ => Ok(()),
        }
    }
}

/// Index of the last entry whose key is `<= target` in `entries` (sorted by key), or None.
/// Searches the warm tail first when the target falls inside it.
pub(crate) fn largest_at_most(
    entries: &[u8],
    entry_size: usize,
    key: impl Fn(&[u8]) -> i64,
    target: i64,
) -> Option<usize> {
    let n = entries.len() / entry_size;
    if n == 0 {
        return None;
    }
    let at = |i: usize| key(&entries[i * entry_size..(i + 1) * entry_size]);
    if at(0) > target {
        return None;
    }
    let warm = (WARM_BYTES / entry_size).max(1);
    let mut lo = if n > warm && at(n - warm) <= target {
        n - warm
    } else {
        0
    };
    let mut hi = n - 1;
    while lo < hi {
        let mid = hi - (hi - lo) / 2;
        if at(mid) <= target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// Index of the first entry whose key is `>= target`, or `n` when there is none.
pub(crate) fn first_at_least(
    entries: &[u8],
    entry_size: usize,
    key: impl Fn(&[u8]) -> i64,
    target: i64,
) -> usize {
    let n = entries.len() / entry_size;
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if key(&entries[mid * entry_size..(mid + 1) * entry_size]) < target {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

pub(crate) fn be_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_be_bytes(b)
}

pub(crate) fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(e: &[u8]) -> i64 {
        i64::from(be_u32(e, 0))
    }

    fn entries(keys: &[u32]) -> Vec<u8> {
        keys.iter().flat_map(|k| k.to_be_bytes()).collect()
    }

    #[test]
    fn searches_agree_with_linear_scan() {
        let keys: Vec<u32> = (0..5000).map(|i| i * 3 + 1).collect();
        let buf = entries(&keys);
        for target in [-5i64, 0, 1, 2, 3, 4, 7000, 14_998, 14_999, 20_000] {
            let want = keys.iter().rposition(|k| i64::from(*k) <= target);
            assert_eq!(largest_at_most(&buf, 4, key, target), want, "{target}");
            let want_first = keys
                .iter()
                .position(|k| i64::from(*k) >= target)
                .unwrap_or(keys.len());
            assert_eq!(first_at_least(&buf, 4, key, target), want_first, "{target}");
        }
        assert_eq!(largest_at_most(&[], 4, key, 10), None);
    }

    #[test]
    fn preallocates_appends_trims_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        let idx = IndexFile::create(&path, 4, 4 * 3 + 2).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 12);
        for k in [1u32, 2, 3] {
            assert!(idx.append(&k.to_be_bytes(), false).unwrap());
        }
        assert!(idx.is_full());
        assert!(!idx.append(&4u32.to_be_bytes(), false).unwrap());
        assert!(idx.append(&4u32.to_be_bytes(), true).unwrap());
        idx.truncate_entries(2);
        idx.trim().unwrap();
        idx.flush().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 8);
        drop(idx);
        let again = IndexFile::open(&path, 4).unwrap();
        assert_eq!(again.entries(), 2);
        again.with_entries(|e| assert_eq!(e, entries(&[1, 2]).as_slice()));
        again.resize(40).unwrap();
        assert_eq!(again.entries(), 2);
        assert!(!again.is_full());
    }

    #[test]
    fn blocks_are_reserved_under_written_pages_only() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        let idx = IndexFile::create(&path, 8, 1 << 20).unwrap();
        let allocated = || fs::metadata(&path).unwrap().blocks() * 512;
        assert_eq!(allocated(), 0, "a fresh preallocated index is sparse");
        assert!(idx.append(&[1; 8], false).unwrap());
        let first = allocated();
        assert!(first >= RESERVE_BYTES as u64, "{first}");
        assert!(first < 1 << 20, "{first}");
        for _ in 0..RESERVE_BYTES / 8 {
            assert!(idx.append(&[2; 8], false).unwrap());
        }
        assert!(allocated() >= 2 * RESERVE_BYTES as u64);
    }

    #[test]
    fn odd_sized_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        fs::write(&path, [0u8; 7]).unwrap();
        assert!(IndexFile::open(&path, 4).is_err());
    }
}

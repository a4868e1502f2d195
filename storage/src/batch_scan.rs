//! Sequential reading of batches from a segment file with chunked positional reads: headers
//! only (offset translation, tail loading, producer-state replay) or whole batches (recovery,
//! compaction, timestamp search).

use std::fs::File;
use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};

use crate::batch::{BatchHeader, HEADER_SIZE};
use crate::error::{IoContext, Result, StorageError};

/// Bytes read at a time when walking headers of small batches.
const HEADER_CHUNK: usize = 16 * 1024;
/// First read of a header walk, before the batch sizes are known.
const FIRST_HEADER_READ: usize = 4096;
/// Batches at least this large are walked by reading just their headers.
const LARGE_BATCH: usize = 4096;
/// Bytes read at a time when reading whole batches.
const BATCH_CHUNK: usize = 1024 * 1024;

/// A batch header and where its batch starts in the file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScannedHeader {
    pub position: u64,
    pub header: BatchHeader,
}

/// Walks batch headers in `[start, end)` of a file.
pub(crate) struct HeaderScan<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
    buf_len: usize,
    read_size: usize,
}

impl<'f> HeaderScan<'f> {
    pub(crate) fn new(file: &'f File, start: u64, end: u64) -> HeaderScan<'f> {
        HeaderScan {
            file,
            pos: start,
            end,
            buf: Vec::new(),
            buf_start: 0,
            buf_len: 0,
            read_size: FIRST_HEADER_READ,
        }
    }

    /// The next header; `Ok(None)` at `end`. A header or batch that does not fit before `end`
    /// is `CorruptMessage`.
    pub(crate) fn next_header(&mut self) -> Result<Option<ScannedHeader>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        if self.end - self.pos < HEADER_SIZE as u64 {
            return Err(StorageError::CorruptMessage(format!(
                "partial batch header at position {}",
                self.pos
            )));
        }
        let in_buf = self.pos >= self.buf_start
            && self.pos + HEADER_SIZE as u64 <= self.buf_start + self.buf_len as u64;
        if !in_buf {
            let len = self.read_size.min((self.end - self.pos) as usize);
            self.buf.resize(len, 0);
            self.file
                .read_exact_at(&mut self.buf[..len], self.pos)
                .ctx(|| format!("read batch header at {}", self.pos))?;
            self.buf_start = self.pos;
            self.buf_len = len;
        }
        let at = (self.pos - self.buf_start) as usize;
        let header = BatchHeader::parse(&self.buf[at..at + HEADER_SIZE])?;
        self.read_size = if header.size() >= LARGE_BATCH {
            HEADER_SIZE
        } else {
            HEADER_CHUNK
        };
        let size = header.size() as u64;
        if self.pos + size > self.end {
            return Err(StorageError::CorruptMessage(format!(
                "batch at position {} of {size} bytes runs past the end {}",
                self.pos, self.end
            )));
        }
        let found = ScannedHeader {
            position: self.pos,
            header,
        };
        self.pos += size;
        Ok(Some(found))
    }
}

/// A whole batch read from a file.
#[derive(Clone, Debug)]
pub(crate) struct ScannedBatch {
    pub header: BatchHeader,
    pub bytes: Bytes,
}

/// Reads whole batches in `[start, end)` of a file.
pub(crate) struct BatchScan<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
    chunk: Bytes,
    chunk_start: u64,
}

impl<'f> BatchScan<'f> {
    pub(crate) fn new(file: &'f File, start: u64, end: u64) -> BatchScan<'f> {
        BatchScan {
            file,
            pos: start,
            end,
            chunk: Bytes::new(),
            chunk_start: start,
        }
    }

    /// Position of the next batch (after the last one returned).
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    fn fill(&mut self, need: usize) -> Result<()> {
        let available = (self.end - self.pos) as usize;
        let len = need.max(BATCH_CHUNK).min(available);
        let mut buf = BytesMut::zeroed(len);
        self.file
            .read_exact_at(&mut buf, self.pos)
            .ctx(|| format!("read batches at {}", self.pos))?;
        self.chunk = buf.freeze();
        self.chunk_start = self.pos;
        Ok(())
    }

    fn buffered(&self) -> usize {
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if self.pos < self.chunk_start || self.pos > chunk_end {
            0
        } else {
            (chunk_end - self.pos) as usize
        }
    }

    /// The next batch; `Ok(None)` at `end`. A batch that is cut short or whose header is
    /// invalid is `CorruptMessage`/`InvalidRecord` (CRC is left to the caller).
    pub(crate) fn next_batch(&mut self) -> Result<Option<ScannedBatch>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        if self.end - self.pos < HEADER_SIZE as u64 {
            return Err(StorageError::CorruptMessage(format!(
                "partial batch header at position {}",
                self.pos
            )));
        }
        if self.buffered() < HEADER_SIZE {
            self.fill(HEADER_SIZE)?;
        }
        let at = (self.pos - self.chunk_start) as usize;
        let header = BatchHeader::parse(&self.chunk[at..at + HEADER_SIZE])?;
        let size = header.size();
        if self.pos + size as u64 > self.end {
            return Err(StorageError::CorruptMessage(format!(
                "batch at position {} of {size} bytes runs past the end {}",
                self.pos, self.end
            )));
        }
        if self.buffered() < size {
            self.fill(size)?;
        }
        let at = (self.pos - self.chunk_start) as usize;
        let batch = ScannedBatch {
            header,
            bytes: self.chunk.slice(at..at + size),
        };
        self.pos += size as u64;
        Ok(Some(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_batches::{batch, BatchSpec};
    use std::io::Write;

    fn file_with(batches: &[Bytes], tail: &[u8]) -> (tempfile::TempDir, File, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        let mut f = File::create(&path).unwrap();
        for b in batches {
            f.write_all(b).unwrap();
        }
        f.write_all(tail).unwrap();
        let len = f.metadata().unwrap().len();
        (dir, File::open(&path).unwrap(), len)
    }

    fn batches(n: usize, value_len: usize) -> Vec<Bytes> {
        let value = vec![b'v'; value_len];
        (0..n)
            .map(|i| {
                batch(&BatchSpec {
                    base_offset: i as i64 * 2,
                    ..BatchSpec::values(&[&value, &value])
                })
            })
            .collect()
    }

    #[test]
    fn header_scan_walks_all_batches_across_chunks() {
        let bs = batches(40, 1500);
        let (_d, f, len) = file_with(&bs, &[]);
        let mut scan = HeaderScan::new(&f, 0, len);
        let mut n = 0;
        let mut expect_pos = 0u64;
        while let Some(h) = scan.next_header().unwrap() {
            assert_eq!(h.position, expect_pos);
            assert_eq!(h.header.base_offset, n as i64 * 2);
            expect_pos += h.header.size() as u64;
            n += 1;
        }
        assert_eq!(n, 40);
    }

    #[test]
    fn batch_scan_returns_exact_bytes_and_flags_torn_tail() {
        let bs = batches(5, 700_000);
        let torn = &bs[0][..100];
        let (_d, f, len) = file_with(&bs, torn);
        let mut scan = BatchScan::new(&f, 0, len);
        for b in &bs {
            let got = scan.next_batch().unwrap().unwrap();
            assert_eq!(&got.bytes, b);
        }
        let valid = scan.position();
        assert!(scan.next_batch().is_err());
        assert_eq!(valid, len - 100);
    }
}

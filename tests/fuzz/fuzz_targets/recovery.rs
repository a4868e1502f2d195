//! Crash recovery of a partition directory holding arbitrary segment files: the log must
//! open (or fail with an error), and reading, searching, appending to and reopening what it
//! recovered must not panic.
//!
//! Input: a flags byte, then the fields the flags ask for, then the `.log` bytes.
//! - bit 0: fix up the CRC-32C of each batch the length fields chain together, so recovery
//!   gets past the CRC check;
//! - bit 1: a `.clean-shutdown` marker holding the next 8 bytes as an offset (trusts indexes);
//! - bit 2: `.index` and `.timeindex` files, each a `u16` length and that many bytes;
//! - bit 3: the segment's base offset is the next `u16` rather than 0.
#![no_main]

use std::fs;
use std::path::Path;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use storage::{Log, LogConfig, TopicPartition};

const LOG_OVERHEAD: usize = 12;
const HEADER_SIZE: usize = 61;
const CRC_START: usize = 21;

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_be_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ])
    }

    fn i64(&mut self) -> i64 {
        let mut buf = [0u8; 8];
        let b = self.take(8);
        buf[..b.len()].copy_from_slice(b);
        i64::from_be_bytes(buf)
    }
}

/// Rewrites the CRC of every batch that the length fields chain together from the start.
fn fix_crcs(log: &mut [u8]) {
    let mut pos = 0;
    while log.len() - pos >= HEADER_SIZE {
        let len = i32::from_be_bytes([log[pos + 8], log[pos + 9], log[pos + 10], log[pos + 11]]);
        let Some(size) = usize::try_from(len).ok().map(|l| l + LOG_OVERHEAD) else {
            return;
        };
        if size < HEADER_SIZE || size > log.len() - pos {
            return;
        }
        let crc = crc32c::crc32c(&log[pos + CRC_START..pos + size]);
        log[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        pos += size;
    }
}

fn write(dir: &Path, name: String, bytes: &[u8]) {
    if let Err(e) = fs::write(dir.join(name), bytes) {
        panic!("cannot write the fuzz input to {}: {e}", dir.display());
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_index_bytes: 64 * 1024,
        ..LogConfig::default()
    }
}

/// Reads everything the log holds, batch by batch, and looks timestamps up.
fn exercise(log: &Log) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    assert!(start <= end, "log start {start} after log end {end}");
    let mut offset = start;
    let mut rounds = 0;
    while offset < end && rounds < 64 {
        rounds += 1;
        let Ok(bytes) = log.read_bytes(offset, 64 * 1024, i64::MAX) else {
            break;
        };
        let Ok(header) = storage::BatchHeader::parse(&bytes) else {
            break;
        };
        if header.last_offset() < offset {
            break;
        }
        offset = header.last_offset().saturating_add(1);
    }
    let _ = log.read(end, 1024, i64::MAX);
    let _ = log.offset_for_timestamp(0);
    let _ = log.max_timestamp_offset();
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.take(1).first().copied().unwrap_or(0);
    let marker = (flags & 2 != 0).then(|| input.i64());
    let indexes = (flags & 4 != 0).then(|| {
        let len = input.u16() as usize;
        let index = input.take(len);
        let len = input.u16() as usize;
        (index, input.take(len))
    });
    let base = if flags & 8 != 0 {
        i64::from(input.u16())
    } else {
        0
    };
    let mut segment = input.0.to_vec();
    if flags & 1 != 0 {
        fix_crcs(&mut segment);
    }

    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    let part = dir.path().join("fuzz-0");
    if let Err(e) = fs::create_dir(&part) {
        panic!("cannot create {}: {e}", part.display());
    }
    write(&part, format!("{base:020}.log"), &segment);
    if let Some((index, time_index)) = indexes {
        write(&part, format!("{base:020}.index"), index);
        write(&part, format!("{base:020}.timeindex"), time_index);
    }
    if let Some(end) = marker {
        write(
            &part,
            ".clean-shutdown".to_string(),
            end.to_string().as_bytes(),
        );
    }

    let tp = TopicPartition::new("fuzz", 0);
    let Ok(log) = Log::open(part.clone(), tp.clone(), config()) else {
        return;
    };
    exercise(&log);
    let end = log.log_end_offset();
    if let Ok(batch) = storage::plain_batch(&[(None, Some(Bytes::from_static(b"v")))], 0) {
        let mut batch = batch.to_vec();
        batch[..8].copy_from_slice(&end.to_be_bytes());
        if let Ok(info) = log.append_as_follower(Bytes::from(batch)) {
            assert_eq!(info.first_offset, end);
            assert_eq!(log.log_end_offset(), end + 1);
        }
    }
    let end = log.log_end_offset();
    if log.close().is_err() {
        return;
    }
    drop(log);
    if let Ok(reopened) = Log::open(part, tp, config()) {
        assert_eq!(
            reopened.log_end_offset(),
            end,
            "a clean reopen changed the log end"
        );
        exercise(&reopened);
    }
});

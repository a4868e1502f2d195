//! Crash recovery: the last segment cut at every byte of its last batch, random byte flips,
//! damaged and missing indexes. Recovery must keep every complete earlier batch and nothing
//! invalid.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use storage::{BatchHeader, LogConfig};
use support::*;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn last_log_file(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

/// Byte ranges of the batches in a segment file.
fn batch_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).unwrap();
        spans.push((pos, h.size()));
        pos += h.size();
    }
    spans
}

struct Written {
    _root: tempfile::TempDir,
    dir: PathBuf,
    /// (offset, value) of every record, in order.
    records: Vec<(i64, Vec<u8>)>,
}

/// A log of several segments, left without a clean close.
fn written(config: &LogConfig, batches: usize) -> Written {
    let root = tempfile::tempdir().unwrap();
    let log = open(root.path(), config.clone());
    let mut records = Vec::new();
    for i in 0..batches {
        let vals: Vec<Vec<u8>> = (0..1 + i % 3)
            .map(|j| format!("batch-{i}-record-{j}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
        let info = log
            .append_as_leader(values(&refs, 1000 + i as i64), 1, 0)
            .unwrap();
        for (j, v) in vals.into_iter().enumerate() {
            records.push((info.first_offset + j as i64, v));
        }
    }
    let dir = log.dir().to_path_buf();
    drop(log);
    Written {
        _root: root,
        dir,
        records,
    }
}

fn reopen_copy(src: &Path, config: &LogConfig) -> (tempfile::TempDir, storage::Log) {
    let root = tempfile::tempdir().unwrap();
    copy_dir(src, &root.path().join("events-0"));
    let log = open(root.path(), config.clone());
    (root, log)
}

fn records_of(log: &storage::Log) -> Vec<(i64, Vec<u8>)> {
    read_all(log)
        .into_iter()
        .map(|g| (g.offset, g.value.unwrap().to_vec()))
        .collect()
}

#[test]
fn cutting_the_last_batch_at_every_byte_keeps_all_earlier_batches() {
    let config = small_config(2000);
    let w = written(&config, 40);
    let path = last_log_file(&w.dir);
    let bytes = fs::read(&path).unwrap();
    let spans = batch_spans(&bytes);
    let (last_start, last_len) = *spans.last().unwrap();
    let last_count = BatchHeader::parse(&bytes[last_start..])
        .unwrap()
        .records_count as usize;
    let kept_before = w.records.len() - last_count;
    for cut in 0..=last_len {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("events-0");
        copy_dir(&w.dir, &dir);
        let file = fs::OpenOptions::new()
            .write(true)
            .open(dir.join(path.file_name().unwrap()))
            .unwrap();
        file.set_len((last_start + cut) as u64).unwrap();
        drop(file);
        let log = open(root.path(), config.clone());
        let got = records_of(&log);
        let expect = if cut == last_len {
            w.records.len()
        } else {
            kept_before
        };
        assert_eq!(got, w.records[..expect], "cut at {cut}");
        assert_eq!(
            log.log_end_offset(),
            w.records[expect - 1].0 + 1,
            "cut at {cut}"
        );
        let next = log.append_as_leader(values(&[b"after"], 1), 1, 0).unwrap();
        assert_eq!(next.first_offset, log.log_end_offset() - 1);
        assert_eq!(records_of(&log).last().unwrap().1, b"after");
    }
}

#[test]
fn a_cut_after_a_clean_close_is_still_recovered() {
    let config = small_config(2000);
    let w = written(&config, 30);
    {
        let log = open(w.dir.parent().unwrap(), config.clone());
        log.close().unwrap();
    }
    let path = last_log_file(&w.dir);
    let bytes = fs::read(&path).unwrap();
    let (last_start, _) = *batch_spans(&bytes).last().unwrap();
    let last_count = BatchHeader::parse(&bytes[last_start..])
        .unwrap()
        .records_count as usize;
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(last_start as u64 + 7).unwrap();
    drop(file);
    let (_root, log) = reopen_copy(&w.dir, &config);
    assert_eq!(records_of(&log), w.records[..w.records.len() - last_count]);
}

/// A small deterministic generator for reproducible corruption.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn random_byte_flips_keep_the_valid_prefix_and_nothing_invalid() {
    let config = small_config(4000);
    let w = written(&config, 60);
    let path = last_log_file(&w.dir);
    let bytes = fs::read(&path).unwrap();
    let spans = batch_spans(&bytes);
    let segment_first_offset = BatchHeader::parse(&bytes).unwrap().base_offset;
    let before_segment = w
        .records
        .iter()
        .filter(|(o, _)| *o < segment_first_offset)
        .count();
    let mut rng = Lcg(42);
    for _ in 0..150 {
        let pos = (rng.next() as usize) % bytes.len();
        let mask = 1u8 << (rng.next() % 8);
        let (batch_index, (start, _)) = spans
            .iter()
            .enumerate()
            .find(|(_, (s, l))| pos >= *s && pos < s + l)
            .map(|(i, s)| (i, *s))
            .unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("events-0");
        copy_dir(&w.dir, &dir);
        let mut damaged = bytes.clone();
        damaged[pos] ^= mask;
        fs::write(dir.join(path.file_name().unwrap()), &damaged).unwrap();
        let log = open(root.path(), config.clone());
        let got = records_of(&log);
        let intact: usize = spans[..batch_index]
            .iter()
            .map(|(s, _)| BatchHeader::parse(&bytes[*s..]).unwrap().records_count as usize)
            .sum();
        let keep = before_segment + intact;
        assert!(got.len() >= keep, "flip at {pos}: lost earlier batches");
        assert_eq!(got[..keep], w.records[..keep], "flip at {pos}");
        for pair in got.windows(2) {
            assert!(
                pair[1].0 > pair[0].0,
                "flip at {pos}: offsets must increase"
            );
        }
        let covered_by_crc = pos - start >= 16;
        if covered_by_crc {
            assert_eq!(got.len(), keep, "flip at {pos} inside a CRC-checked batch");
        }
    }
}

#[test]
fn damaged_or_missing_indexes_are_rebuilt() {
    let config = small_config(3000);
    let w = written(&config, 80);
    {
        let log = open(w.dir.parent().unwrap(), config.clone());
        assert!(log.num_segments() >= 3);
        log.close().unwrap();
    }
    let mut indexes: Vec<PathBuf> = fs::read_dir(&w.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "index" || e == "timeindex")
        })
        .collect();
    indexes.sort();
    fs::remove_file(&indexes[0]).unwrap();
    fs::write(&indexes[1], b"garbage!!").unwrap();
    fs::write(&indexes[2], [0xffu8; 24]).unwrap();
    let (_root, log) = reopen_copy(&w.dir, &config);
    assert_eq!(records_of(&log), w.records);
    for (offset, value) in w.records.iter().step_by(7) {
        let got = decode(&log.read_bytes(*offset, 1, i64::MAX).unwrap());
        let found = got.iter().find(|g| g.offset == *offset).unwrap();
        assert_eq!(found.value.as_deref(), Some(value.as_slice()));
    }
}

#[test]
fn preallocated_segments_recover_from_their_zeroed_tail() {
    let config = LogConfig {
        preallocate: true,
        ..small_config(64 * 1024)
    };
    let w = written(&config, 20);
    let len = fs::metadata(last_log_file(&w.dir)).unwrap().len();
    assert_eq!(len, 64 * 1024);
    let (_root, log) = reopen_copy(&w.dir, &config);
    assert_eq!(records_of(&log), w.records);
    let appended = log
        .append_as_leader(Bytes::from(values(&[b"z"], 0).to_vec()), 1, 0)
        .unwrap();
    assert_eq!(appended.first_offset, w.records.last().unwrap().0 + 1);
}

//! The files the log writes are Kafka's: segment files decode with kafka-protocol's
//! `RecordBatchDecoder`, index entries follow Kafka's layout, and checkpoints use its text format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use storage::{BatchHeader, LogConfig};
use support::*;

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn base_of(path: &Path) -> i64 {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    assert_eq!(stem.len(), 20, "{stem}");
    stem.parse().unwrap()
}

#[test]
fn segment_files_decode_with_an_independent_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1000));
    let mut expected = Vec::new();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for i in 0..60 {
        let recs: Vec<Rec> = (0..1 + i % 4)
            .map(|j| {
                Rec::keyed(
                    format!("k{i}").as_bytes(),
                    Some(format!("v{i}-{j}").as_bytes()),
                    10_000 + i as i64,
                )
            })
            .collect();
        let batch = encode(0, -1, &recs, None, codecs[i % codecs.len()]);
        let info = log.append_as_leader(batch, 2 + (i / 20) as i32, 0).unwrap();
        for (j, r) in recs.iter().enumerate() {
            expected.push((info.first_offset + j as i64, r.value.clone().unwrap()));
        }
    }
    log.close().unwrap();
    let logs = files_with(log.dir(), "log");
    assert!(logs.len() > 3);
    let mut decoded = Vec::new();
    for path in &logs {
        let mut bytes = Bytes::from(fs::read(path).unwrap());
        let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        let first = sets[0].records[0].offset;
        assert_eq!(first, base_of(path), "segment named by its base offset");
        for set in sets {
            for r in set.records {
                assert!((2..=4).contains(&r.partition_leader_epoch));
                decoded.push((r.offset, r.value.unwrap().to_vec()));
            }
        }
    }
    assert_eq!(decoded, expected);
}

#[test]
fn index_files_follow_kafkas_entry_layout() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 256,
        ..small_config(20_000)
    };
    let log = open(dir.path(), config);
    for i in 0..200 {
        log.append_as_leader(sized(1 + i % 3, 40, 5000 + i as i64), 0, 0)
            .unwrap();
    }
    log.close().unwrap();
    for log_path in files_with(log.dir(), "log") {
        let base = base_of(&log_path);
        let data = fs::read(&log_path).unwrap();
        let index = fs::read(log_path.with_extension("index")).unwrap();
        assert_eq!(index.len() % 8, 0);
        assert!(!index.is_empty());
        for entry in index.chunks(8) {
            let rel = u32::from_be_bytes(entry[..4].try_into().unwrap()) as i64;
            let pos = u32::from_be_bytes(entry[4..].try_into().unwrap()) as usize;
            let h = BatchHeader::parse(&data[pos..]).unwrap();
            assert_eq!(
                h.last_offset(),
                base + rel,
                "entry holds the batch's last offset"
            );
        }
        let time = fs::read(log_path.with_extension("timeindex")).unwrap();
        assert_eq!(time.len() % 12, 0);
        let mut last_ts = i64::MIN;
        for entry in time.chunks(12) {
            let ts = i64::from_be_bytes(entry[..8].try_into().unwrap());
            let rel = u32::from_be_bytes(entry[8..].try_into().unwrap()) as i64;
            assert!(ts > last_ts);
            last_ts = ts;
            assert!(rel >= 0);
        }
        let max_in_segment = {
            let mut pos = 0;
            let mut max = -1;
            while pos < data.len() {
                let h = BatchHeader::parse(&data[pos..]).unwrap();
                max = max.max(h.max_timestamp);
                pos += h.size();
            }
            max
        };
        assert_eq!(
            last_ts, max_in_segment,
            "final time index entry is the segment max"
        );
    }
}

#[test]
fn checkpoints_use_kafkas_text_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(10_000));
    log.append_as_leader(values(&[b"a"], 0), 0, 0).unwrap();
    log.append_as_leader(values(&[b"b"], 0), 3, 0).unwrap();
    log.set_high_watermark(2);
    log.delete_records_before(1).unwrap();
    log.set_topic_id([7u8; 16]).unwrap();
    let epochs = fs::read_to_string(log.dir().join("leader-epoch-checkpoint")).unwrap();
    assert_eq!(
        epochs, "0\n1\n3 1\n",
        "epoch 0 ended where the log now starts"
    );
    let start = fs::read_to_string(log.dir().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(start, "0\n1\nevents 0 1\n");
    let metadata = fs::read_to_string(log.dir().join("partition.metadata")).unwrap();
    assert_eq!(metadata, "version: 0\ntopic_id: BwcHBwcHBwcHBwcHBwcHBw\n");
    log.close().unwrap();
    assert!(log.dir().join(format!("{:020}.snapshot", 2)).exists());
}

//! Behaviour of one partition log through its public API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::Compression;
use storage::{CleanupPolicy, Log, LogConfig, StorageError, TimestampType};
use support::*;

fn producer(id: i64, epoch: i16, sequence: i32) -> Option<Producer> {
    Some(Producer {
        id,
        epoch,
        sequence,
        transactional: false,
    })
}

fn idem(id: i64, epoch: i16, sequence: i32, n: usize) -> Bytes {
    let recs: Vec<Rec> = (0..n).map(|i| Rec::value(b"v", 1000 + i as i64)).collect();
    encode(
        0,
        -1,
        &recs,
        producer(id, epoch, sequence),
        Compression::None,
    )
}

#[test]
fn leader_appends_assign_offsets_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let a = log
        .append_as_leader(values(&[b"a", b"b"], 100), 3, 5000)
        .unwrap();
    let b = log.append_as_leader(values(&[b"c"], 200), 3, 5000).unwrap();
    let c = log
        .append_as_leader(values(&[b"d", b"e", b"f"], 300), 4, 5000)
        .unwrap();
    assert_eq!((a.first_offset, a.last_offset), (0, 1));
    assert_eq!((b.first_offset, b.last_offset), (2, 2));
    assert_eq!((c.first_offset, c.last_offset), (3, 5));
    assert_eq!(c.record_count, 3);
    assert_eq!(a.log_append_time, -1);
    assert!(!a.duplicate);
    assert_eq!(log.log_end_offset(), 6);
    let got = read_all(&log);
    let vals: Vec<_> = got.iter().map(|g| g.value.clone().unwrap()).collect();
    assert_eq!(vals, [&b"a"[..], b"b", b"c", b"d", b"e", b"f"]);
    let offsets: Vec<_> = got.iter().map(|g| g.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4, 5]);
    assert_eq!(got[2].timestamp, 200);
    assert_eq!(got[0].leader_epoch, 3);
    assert_eq!(got[5].leader_epoch, 4);
    assert_eq!(log.epoch_entries(), vec![(3, 0), (4, 3)]);
    let middle = log.read_bytes(4, u32::MAX, i64::MAX).unwrap();
    assert_eq!(decode(&middle)[0].offset, 3);
}

#[test]
fn read_limits_offsets_and_bytes_like_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    let batch = sized(2, 100, 10);
    let size = batch.len() as u32;
    for _ in 0..10 {
        log.append_as_leader(batch.clone(), 0, 0).unwrap();
    }
    let empty = log.read(20, 1000, i64::MAX).unwrap();
    assert!(empty.regions.is_empty());
    assert_eq!(empty.log_end_offset, 20);
    assert!(matches!(
        log.read(21, 1000, i64::MAX),
        Err(StorageError::OffsetOutOfRange { offset: 21, .. })
    ));
    let three = log.read(5, size * 3 + size / 2, i64::MAX).unwrap();
    assert_eq!(three.size_bytes, size * 3);
    assert_eq!(
        decode(&log.read_bytes(5, size * 3, i64::MAX).unwrap())[0].offset,
        4
    );
    let first_whole = log.read(0, 1, i64::MAX).unwrap();
    assert_eq!(first_whole.size_bytes, size);
    let below_hw = log.read(0, u32::MAX, 7).unwrap();
    assert_eq!(below_hw.size_bytes, size * 3);
    assert!(log.read(6, u32::MAX, 7).unwrap().regions.is_empty());
    assert!(log.read(7, u32::MAX, 7).unwrap().regions.is_empty());
}

#[test]
fn produce_errors_map_to_kafka_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 500,
            ..LogConfig::default()
        },
    );
    let good = values(&[b"x"], 0);
    let mut two = good.to_vec();
    two.extend_from_slice(&good);
    let err = log.append_as_leader(Bytes::from(two), 0, 0).unwrap_err();
    assert_eq!(err.kafka_error_code().code(), 87);
    let mut bad = good.to_vec();
    let n = bad.len();
    bad[n - 1] ^= 0x40;
    assert_eq!(
        log.append_as_leader(Bytes::from(bad), 0, 0)
            .unwrap_err()
            .kafka_error_code()
            .code(),
        2
    );
    assert_eq!(
        log.append_as_leader(sized(1, 600, 0), 0, 0)
            .unwrap_err()
            .kafka_error_code()
            .code(),
        10
    );
    assert_eq!(log.log_end_offset(), 0);
    log.append_as_leader(good, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn idempotent_producer_sequences_epochs_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let first = log.append_as_leader(idem(7, 0, 0, 3), 0, 0).unwrap();
    log.append_as_leader(values(&[b"other"], 0), 0, 0).unwrap();
    let dup = log.append_as_leader(idem(7, 0, 0, 3), 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!(
        (dup.first_offset, dup.last_offset),
        (first.first_offset, first.last_offset)
    );
    assert_eq!(log.log_end_offset(), 4);
    let gap = log.append_as_leader(idem(7, 0, 5, 1), 0, 0).unwrap_err();
    assert!(matches!(
        gap,
        StorageError::OutOfOrderSequence {
            producer_id: 7,
            expected: 3,
            got: 5
        }
    ));
    log.append_as_leader(idem(7, 0, 3, 1), 0, 0).unwrap();
    assert_eq!(
        log.append_as_leader(idem(7, 1, 4, 1), 0, 0)
            .unwrap_err()
            .kafka_error_code()
            .code(),
        45
    );
    log.append_as_leader(idem(7, 1, 0, 2), 0, 0).unwrap();
    assert_eq!(
        log.append_as_leader(idem(7, 0, 4, 1), 0, 0)
            .unwrap_err()
            .kafka_error_code()
            .code(),
        47
    );
    let entry = log
        .producers()
        .into_iter()
        .find(|p| p.producer_id == 7)
        .unwrap();
    assert_eq!((entry.producer_epoch, entry.last_sequence()), (1, 1));
}

#[test]
fn producer_state_survives_clean_and_unclean_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(300);
    {
        let log = open(dir.path(), config.clone());
        for seq in 0..10 {
            log.append_as_leader(idem(9, 2, seq * 2, 2), 0, 0).unwrap();
        }
        assert!(log.num_segments() > 2);
        log.close().unwrap();
    }
    {
        let log = open(dir.path(), config.clone());
        let dup = log.append_as_leader(idem(9, 2, 18, 2), 0, 0).unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.first_offset, 18);
        log.append_as_leader(idem(9, 2, 20, 2), 0, 0).unwrap();
    }
    let log = open(dir.path(), config);
    assert!(
        log.append_as_leader(idem(9, 2, 20, 2), 0, 0)
            .unwrap()
            .duplicate
    );
    assert_eq!(
        log.append_as_leader(idem(9, 2, 30, 1), 0, 0)
            .unwrap_err()
            .kafka_error_code()
            .code(),
        45
    );
    log.append_as_leader(idem(9, 2, 22, 1), 0, 0).unwrap();
}

#[test]
fn log_append_time_stamps_every_record_with_a_valid_crc() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            message_timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        },
    );
    let info = log
        .append_as_leader(values(&[b"a", b"b"], 5), 0, 777_000)
        .unwrap();
    assert_eq!(info.log_append_time, 777_000);
    assert_eq!(info.max_timestamp, 777_000);
    let got = read_all(&log);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|g| g.log_append_time));
    let bytes = log.read_bytes(0, u32::MAX, i64::MAX).unwrap();
    let header = storage::BatchHeader::parse(&bytes).unwrap();
    assert!(header.timestamp_type_is_log_append());
    assert_eq!(header.max_timestamp, 777_000);
}

#[test]
fn segments_roll_on_size_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1000));
    let batch = sized(1, 300, 0);
    for _ in 0..20 {
        log.append_as_leader(batch.clone(), 0, 0).unwrap();
    }
    assert!(log.num_segments() >= 6, "{}", log.num_segments());
    let bases = log.segment_base_offsets();
    for base in &bases {
        let name = format!("{base:020}.log");
        assert!(log.dir().join(&name).exists(), "{name}");
    }
    let got = decode(&log.read_bytes(0, u32::MAX, i64::MAX).unwrap());
    assert_eq!(got.len(), 20);
    let info = log.read(bases[1] - 1, u32::MAX, i64::MAX).unwrap();
    assert!(info.regions.len() > 1);
    assert_eq!(log.size_bytes(), 20 * batch.len() as u64);
}

#[test]
fn follower_copies_leader_bytes_and_learns_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Log::open(
        dir.path().join("l-0"),
        storage::TopicPartition::new("l", 0),
        small_config(800),
    )
    .unwrap();
    let follower = Log::open(
        dir.path().join("f-0"),
        storage::TopicPartition::new("f", 0),
        small_config(800),
    )
    .unwrap();
    for epoch in [1, 1, 2, 2, 2, 5] {
        leader
            .append_as_leader(idem(4, 0, leader.log_end_offset() as i32, 2), epoch, 0)
            .unwrap();
    }
    let bytes = leader.read_bytes(0, u32::MAX, i64::MAX).unwrap();
    let info = follower.append_as_follower(bytes.clone()).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (0, 11, 12)
    );
    assert_eq!(follower.read_bytes(0, u32::MAX, i64::MAX).unwrap(), bytes);
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    assert_eq!(follower.epoch_entries(), vec![(1, 0), (2, 4), (5, 10)]);
    assert_eq!(follower.producers(), leader.producers());
    let again = follower.append_as_follower(bytes.clone()).unwrap_err();
    assert!(matches!(
        again,
        StorageError::UnexpectedAppendOffset {
            expected: 12,
            got: 0
        }
    ));
    let partial = bytes.slice(..bytes.len() - 5);
    assert_eq!(
        follower
            .append_as_follower(partial.slice(..40))
            .unwrap()
            .record_count,
        0
    );
    let gap = encode(100, 6, &[Rec::value(b"g", 1)], None, Compression::None);
    follower.append_as_follower(gap).unwrap();
    assert_eq!(follower.log_end_offset(), 101);
    assert_eq!(follower.end_offset_for_epoch(5), Some((5, 100)));
    assert_eq!(follower.end_offset_for_epoch(3), Some((2, 10)));
}

#[test]
fn truncation_drops_whole_batches_epochs_and_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(700));
    for (i, epoch) in [0, 0, 1, 1, 2, 2, 2, 3].iter().enumerate() {
        log.append_as_leader(idem(1, 0, i as i32 * 2, 2), *epoch, 0)
            .unwrap();
    }
    log.set_high_watermark(16);
    assert_eq!(log.log_end_offset(), 16);
    log.truncate_to(9).unwrap();
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(log.high_watermark(), 8);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (1, 4)]);
    assert_eq!(read_all(&log).last().unwrap().offset, 7);
    log.append_as_leader(idem(1, 0, 8, 2), 4, 0).unwrap();
    assert_eq!(log.log_end_offset(), 10);
    log.truncate_to(4).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(read_all(&log).len(), 4);
    assert_eq!(
        log.append_as_leader(idem(1, 0, 8, 1), 5, 0)
            .unwrap_err()
            .kafka_error_code()
            .code(),
        45
    );
    log.append_as_leader(idem(1, 0, 4, 1), 5, 0).unwrap();
    drop(log);
    let log = open(dir.path(), small_config(700));
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (5, 4)]);
}

/// A replica that became leader (an epoch entry at its log end) and was replaced before it
/// appended anything: truncating to its log end must drop that entry, or its fetches keep
/// naming an epoch the new leader never had and diverge forever.
#[test]
fn truncation_at_the_log_end_drops_an_epoch_that_never_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(700));
    log.append_as_leader(idem(1, 0, 0, 3), 0, 0).unwrap();
    log.assign_epoch_start_offset(1, 3).unwrap();
    assert_eq!(log.latest_epoch(), Some(1));
    log.truncate_to(3).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.epoch_entries(), vec![(0, 0)]);
    assert_eq!(log.latest_epoch(), Some(0));
    drop(log);
    let log = open(dir.path(), small_config(700));
    assert_eq!(log.epoch_entries(), vec![(0, 0)]);
}

#[test]
fn truncate_fully_restarts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(500));
    for _ in 0..10 {
        log.append_as_leader(sized(1, 100, 0), 2, 0).unwrap();
    }
    log.truncate_fully_and_start_at(1000).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1000, 1000));
    assert_eq!(log.num_segments(), 1);
    assert!(log.epoch_entries().is_empty());
    assert_eq!(
        log.append_as_leader(sized(1, 10, 0), 3, 0)
            .unwrap()
            .first_offset,
        1000
    );
    drop(log);
    let log = open(dir.path(), small_config(500));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1000, 1001));
}

#[test]
fn delete_records_moves_log_start_and_maintenance_drops_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(500));
    for _ in 0..12 {
        log.append_as_leader(sized(2, 60, 0), 0, 0).unwrap();
    }
    let segments_before = log.num_segments();
    assert!(matches!(
        log.delete_records_before(5),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    log.set_high_watermark(24);
    assert_eq!(log.delete_records_before(11).unwrap(), 11);
    assert!(log.read(10, 100, i64::MAX).is_err());
    let at = decode(&log.read_bytes(11, u32::MAX, i64::MAX).unwrap());
    assert_eq!(at[0].offset, 10);
    let outcome = log.maintain(0).unwrap();
    assert!(outcome.deleted_segments > 0);
    assert_eq!(
        log.num_segments(),
        segments_before - outcome.deleted_segments
    );
    assert!(log.segment_base_offsets()[0] <= 11);
    drop(log);
    let log = open(dir.path(), small_config(500));
    assert_eq!(log.log_start_offset(), 11);
}

#[test]
fn timestamp_lookup_finds_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(2000));
    for (i, compression) in [
        Compression::None,
        Compression::Gzip,
        Compression::Zstd,
        Compression::None,
    ]
    .into_iter()
    .cycle()
    .take(12)
    .enumerate()
    {
        let base_ts = 1000 + i as i64 * 100;
        let recs = vec![
            Rec::value(b"a", base_ts + 30),
            Rec::value(b"b", base_ts + 10),
            Rec::value(b"c", base_ts + 50),
        ];
        log.append_as_leader(encode(0, -1, &recs, None, compression), 7, 0)
            .unwrap();
    }
    let found = log.offset_for_timestamp(1405).unwrap().unwrap();
    assert_eq!((found.offset, found.timestamp), (12, 1430));
    assert_eq!(found.leader_epoch, Some(7));
    let exact = log.offset_for_timestamp(1510).unwrap().unwrap();
    assert_eq!((exact.offset, exact.timestamp), (15, 1530));
    assert_eq!(log.offset_for_timestamp(0).unwrap().unwrap().offset, 0);
    assert_eq!(log.offset_for_timestamp(99_999).unwrap(), None);
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (35, 2150));
}

#[test]
fn retention_by_bytes_and_time_respects_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 1500,
        ..small_config(500)
    };
    let log = open(dir.path(), config.clone());
    for i in 0..20 {
        log.append_as_leader(sized(1, 200, 1000 + i), 0, 0).unwrap();
    }
    let before = log.num_segments();
    assert_eq!(log.maintain(10_000).unwrap().deleted_segments, 0);
    log.set_high_watermark(log.log_end_offset());
    let outcome = log.maintain(10_000).unwrap();
    assert!(outcome.deleted_segments > 0);
    assert!(log.size_bytes() <= 1500 + 500, "{}", log.size_bytes());
    assert!(log.num_segments() < before);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    log.update_config(LogConfig {
        retention_bytes: -1,
        retention_ms: 100,
        ..config
    });
    let all = log.maintain(1_000_000).unwrap();
    assert!(all.deleted_segments > 0);
    assert_eq!(log.num_segments(), 1);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.log_start_offset(), 20);
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(
        log.append_as_leader(sized(1, 1, 5), 0, 0)
            .unwrap()
            .first_offset,
        20
    );
}

#[test]
fn flush_policy_advances_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(400));
    for _ in 0..6 {
        log.append_as_leader(sized(1, 100, 0), 0, 0).unwrap();
    }
    assert_eq!(log.recovery_point(), 0);
    log.maintain(0).unwrap();
    let active = *log.segment_base_offsets().last().unwrap();
    assert_eq!(log.recovery_point(), active);
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 6);
    log.update_config(LogConfig {
        flush_messages: 1,
        ..small_config(400)
    });
    assert!(!log.flush_due());
    log.append_as_leader(sized(1, 100, 0), 0, 0).unwrap();
    assert_eq!(log.recovery_point(), 6, "appends never fsync themselves");
    assert!(log.flush_due());
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 7);
    assert!(!log.flush_due());
}

#[test]
fn time_based_roll_uses_batch_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            segment_ms: 1000,
            ..small_config(1 << 20)
        },
    );
    log.append_as_leader(sized(1, 10, 5000), 0, 0).unwrap();
    log.append_as_leader(sized(1, 10, 5900), 0, 0).unwrap();
    assert_eq!(log.num_segments(), 1);
    log.append_as_leader(sized(1, 10, 6100), 0, 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn clean_close_reopens_without_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(600));
    for i in 0..15 {
        log.append_as_leader(sized(2, 50, 100 + i), i as i32 / 5, 0)
            .unwrap();
    }
    log.set_topic_id(*b"0123456789abcdef").unwrap();
    let before = read_all(&log);
    let epochs = log.epoch_entries();
    log.close().unwrap();
    assert_eq!(
        log.append_as_leader(sized(1, 1, 0), 0, 0)
            .unwrap_err()
            .kafka_error_code()
            .code(),
        56
    );
    drop(log);
    let log = open(dir.path(), small_config(600));
    assert_eq!(log.recovery_point(), 30);
    assert_eq!(read_all(&log), before);
    assert_eq!(log.epoch_entries(), epochs);
    assert_eq!(log.topic_id(), Some(*b"0123456789abcdef"));
    assert_eq!(
        log.append_as_leader(sized(1, 1, 0), 3, 0)
            .unwrap()
            .first_offset,
        30
    );
    assert!(!log.dir().join(".clean-shutdown").exists());
}

#[test]
fn compaction_keeps_latest_value_per_key_and_preserves_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1000,
        ..small_config(400)
    };
    let log = open(dir.path(), config);
    let mut latest = std::collections::BTreeMap::new();
    for round in 0..6 {
        for key in 0..4u8 {
            let value = format!("v{round}-{key}");
            let compression = if key % 2 == 0 {
                Compression::None
            } else {
                Compression::Snappy
            };
            let recs = vec![Rec::keyed(&[b'k', key], Some(value.as_bytes()), 100)];
            let info = log
                .append_as_leader(encode(0, -1, &recs, None, compression), 0, 0)
                .unwrap();
            latest.insert(vec![b'k', key], (info.first_offset, value));
        }
    }
    log.append_as_leader(
        encode(
            0,
            -1,
            &[Rec::keyed(b"k\x01", None, 100)],
            None,
            Compression::None,
        ),
        0,
        0,
    )
    .unwrap();
    log.roll().unwrap();
    log.set_high_watermark(log.log_end_offset());
    let before = log.size_bytes();
    let outcome = log.compact(10_000).unwrap();
    assert!(outcome.segments_rewritten > 0);
    assert!(log.size_bytes() < before);
    let got = read_all(&log);
    let mut keys: Vec<_> = got
        .iter()
        .map(|g| g.key.clone().unwrap().to_vec())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), got.len(), "one record per key: {got:?}");
    for g in &got {
        let key = g.key.clone().unwrap().to_vec();
        if key == b"k\x01" {
            assert_eq!(g.value, None, "tombstone kept within delete.retention.ms");
            assert_eq!(g.offset, 24);
        } else {
            let (offset, value) = &latest[&key];
            assert_eq!(
                (g.offset, g.value.clone().unwrap().to_vec()),
                (*offset, value.clone().into_bytes())
            );
        }
    }
    let reopened_read = log.read_bytes(0, u32::MAX, i64::MAX).unwrap();
    drop(log);
    let log = open(
        dir.path(),
        LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            min_cleanable_dirty_ratio: 0.0,
            delete_retention_ms: 1000,
            ..small_config(400)
        },
    );
    assert_eq!(
        log.read_bytes(0, u32::MAX, i64::MAX).unwrap(),
        reopened_read
    );
    log.append_as_leader(
        encode(
            0,
            -1,
            &[Rec::keyed(b"k\x00", Some(b"new"), 100)],
            None,
            Compression::None,
        ),
        0,
        0,
    )
    .unwrap();
    log.roll().unwrap();
    log.set_high_watermark(log.log_end_offset());
    log.compact(1_000_000_000_000_000).unwrap();
    let got = read_all(&log);
    assert!(
        got.iter().all(|g| g.key.as_deref() != Some(&b"k\x01"[..])),
        "tombstone removed after delete.retention.ms: {got:?}"
    );
    assert_eq!(
        got.iter()
            .filter(|g| g.key.as_deref() == Some(&b"k\x00"[..]))
            .count(),
        1
    );
}

#[test]
fn readers_only_ever_see_whole_batches_while_appending() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), small_config(20_000)));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let log = Arc::clone(&log);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) || reads == 0 {
                    let end = log.log_end_offset();
                    let start = if reads % 2 == 0 {
                        (end - 5).max(0)
                    } else {
                        (reads as i64 * 7919) % end.max(1)
                    };
                    let bytes = log.read_bytes(start, 64 * 1024, i64::MAX).unwrap();
                    let got = decode(&bytes);
                    if end > 0 {
                        assert!(!got.is_empty());
                    }
                    for w in got.windows(2) {
                        assert_eq!(w[1].offset, w[0].offset + 1);
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 0..2000 {
        log.append_as_leader(sized(1 + i % 3, 50 + i % 200, 0), 0, 0)
            .unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert!(log.num_segments() > 1);
}

#[test]
fn expired_producers_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            producer_id_expiration_ms: 1000,
            ..LogConfig::default()
        },
    );
    let recs = vec![Rec::value(b"v", 50_000)];
    log.append_as_leader(
        encode(0, -1, &recs, producer(3, 0, 0), Compression::None),
        0,
        0,
    )
    .unwrap();
    assert_eq!(log.maintain(50_500).unwrap().expired_producers, 0);
    assert_eq!(log.maintain(51_000).unwrap().expired_producers, 1);
    assert!(log.producers().is_empty());
    log.append_as_leader(
        encode(0, -1, &recs, producer(3, 0, 77), Compression::None),
        0,
        0,
    )
    .unwrap();
}

fn compact_config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        min_cleanable_dirty_ratio: 0.0,
        ..small_config(300)
    }
}

fn put(log: &Log, key: &[u8], value: &[u8]) -> i64 {
    let recs = vec![Rec::keyed(key, Some(value), 100)];
    log.append_as_leader(encode(0, -1, &recs, None, Compression::None), 0, 0)
        .unwrap()
        .first_offset
}

fn latest_values(log: &Log) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    read_all(log)
        .into_iter()
        .filter_map(|g| Some((g.key?.to_vec(), g.value?.to_vec())))
        .collect()
}

#[test]
fn data_written_after_a_truncation_is_compacted_as_new() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), compact_config());
    for i in 0..20u8 {
        put(&log, &[b'k', i % 4], &[b'a', i]);
    }
    log.roll().unwrap();
    log.set_high_watermark(log.log_end_offset());
    log.compact(1).unwrap();
    log.truncate_to(10).unwrap();
    for i in 0..8u8 {
        put(&log, &[b'k', i % 4], &[b'b', i]);
    }
    log.roll().unwrap();
    log.set_high_watermark(log.log_end_offset());
    log.compact(2).unwrap();
    let latest = latest_values(&log);
    for k in 0..4u8 {
        assert_eq!(latest[&vec![b'k', k]], vec![b'b', 4 + k]);
    }
    let per_key = read_all(&log)
        .iter()
        .filter(|g| g.offset < *log.segment_base_offsets().last().unwrap())
        .count();
    assert_eq!(per_key, 4);
}

#[test]
fn open_transactions_hold_back_the_last_stable_offset_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), compact_config());
    put(&log, b"a", b"1");
    let txn = Some(Producer {
        id: 11,
        epoch: 0,
        sequence: 0,
        transactional: true,
    });
    let begun = log
        .append_as_leader(
            encode(
                0,
                -1,
                &[Rec::keyed(b"a", Some(b"2"), 100)],
                txn,
                Compression::None,
            ),
            0,
            0,
        )
        .unwrap();
    for i in 0..10u8 {
        put(&log, b"a", &[b'3', i]);
    }
    log.roll().unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), begun.first_offset);
    log.compact(1).unwrap();
    let kept: Vec<_> = read_all(&log).into_iter().map(|g| g.offset).collect();
    assert!(
        kept.contains(&0),
        "nothing at or after the open transaction is cleaned: {kept:?}"
    );
    let marker = encode_marker(11, 0);
    log.append_as_leader(marker, 0, 0).unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    log.roll().unwrap();
    log.set_high_watermark(log.log_end_offset());
    log.compact(2).unwrap();
    let got = read_all(&log);
    let values: Vec<_> = got.iter().filter_map(|g| g.value.clone()).collect();
    assert_eq!(values.iter().filter(|v| v.starts_with(b"3")).count(), 1);
    assert!(!values.iter().any(|v| v.as_ref() == b"1"));
    let bytes = log.read_bytes(0, u32::MAX, i64::MAX).unwrap();
    let mut pos = 0;
    let mut control = 0;
    while pos < bytes.len() {
        let h = storage::BatchHeader::parse(&bytes[pos..]).unwrap();
        control += usize::from(h.is_control());
        pos += h.size();
    }
    assert_eq!(control, 1, "the transaction marker survives compaction");
}

/// A commit marker for producer `id`, as a transaction coordinator writes it.
fn encode_marker(id: i64, epoch: i16) -> Bytes {
    let record = kafka_protocol::records::Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: id,
        producer_epoch: epoch,
        timestamp_type: kafka_protocol::records::TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 100,
        key: Some(Bytes::from_static(&[0, 0, 0, 1])),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        headers: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    kafka_protocol::records::RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &kafka_protocol::records::RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

#[test]
fn logs_and_the_manager_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Log>();
    shared::<storage::LogManager>();
    shared::<storage::FileRegion>();
}

//! The log manager: many partitions over several log directories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::PathBuf;

use storage::{CleanupPolicy, LogConfig, LogManager, TopicPartition};
use support::*;

fn dirs(root: &std::path::Path) -> Vec<PathBuf> {
    vec![root.join("d1"), root.join("d2")]
}

#[test]
fn spreads_partitions_checkpoints_and_reopens_in_parallel() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    let defaults = small_config(2000);
    let tps: Vec<TopicPartition> = (0..12)
        .map(|i| TopicPartition::new(format!("topic-{}", i % 3), i / 3))
        .collect();
    {
        let manager = LogManager::open(&dirs, defaults.clone(), 2).unwrap();
        for (i, tp) in tps.iter().enumerate() {
            let log = manager.get_or_create(tp, defaults.clone()).unwrap();
            for _ in 0..=i {
                log.append_as_leader(values(&[tp.to_string().as_bytes()], 0), 0, 0)
                    .unwrap();
            }
            log.set_high_watermark(i as i64);
        }
        let usage = manager.dir_usage();
        assert_eq!(usage.len(), 2);
        assert_eq!(usage[0].partitions.len(), 6);
        assert_eq!(usage[1].partitions.len(), 6);
        assert!(usage
            .iter()
            .all(|u| u.total_bytes >= u.free_bytes && u.total_bytes > 0));
        assert!(usage[0].partitions.iter().all(|(_, size)| *size > 0));
        manager.checkpoint_high_watermarks().unwrap();
        let text = fs::read_to_string(dirs[0].join("replication-offset-checkpoint")).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("0"));
        assert_eq!(lines.next(), Some("6"));
        manager.shutdown().unwrap();
        for d in &dirs {
            assert!(d.join(".kafka_cleanshutdown").exists());
        }
    }
    let manager = LogManager::open(&dirs, defaults, 4).unwrap();
    assert_eq!(manager.logs().len(), 12);
    for (i, tp) in tps.iter().enumerate() {
        let log = manager.get(tp).unwrap();
        assert_eq!(log.log_end_offset(), i as i64 + 1);
        assert_eq!(log.high_watermark(), i as i64);
        let got = read_all(&log);
        assert!(got
            .iter()
            .all(|g| g.value.as_deref() == Some(tp.to_string().as_bytes())));
    }
    for d in &dirs {
        assert!(!d.join(".kafka_cleanshutdown").exists());
    }
}

#[test]
fn unclean_restart_recovers_and_delete_removes_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    let defaults = small_config(1000);
    let tp = TopicPartition::new("t", 0);
    let other = TopicPartition::new("t", 1);
    {
        let manager = LogManager::open(&dirs, defaults.clone(), 1).unwrap();
        let log = manager.get_or_create(&tp, defaults.clone()).unwrap();
        manager.get_or_create(&other, defaults.clone()).unwrap();
        for _ in 0..20 {
            log.append_as_leader(sized(2, 50, 0), 0, 0).unwrap();
        }
    }
    fs::create_dir_all(dirs[0].join("t-0.abc123-delete")).unwrap();
    fs::create_dir_all(dirs[0].join("not a partition")).unwrap();
    let manager = LogManager::open(&dirs, defaults.clone(), 2).unwrap();
    assert!(!dirs[0].join("t-0.abc123-delete").exists());
    let log = manager.get(&tp).unwrap();
    assert_eq!(log.log_end_offset(), 40);
    assert_eq!(read_all(&log).len(), 40);
    let path = log.dir().to_path_buf();
    drop(log);
    manager.delete(&tp).unwrap();
    assert!(manager.get(&tp).is_none());
    assert!(!path.exists());
    assert_eq!(manager.logs().len(), 1);
    let again = manager.get_or_create(&tp, defaults).unwrap();
    assert_eq!(again.log_end_offset(), 0);
}

#[test]
fn maintain_all_applies_retention_and_compaction() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d")];
    let manager = LogManager::open(&dirs, small_config(600), 1).unwrap();
    let deleting = manager
        .get_or_create(
            &TopicPartition::new("del", 0),
            LogConfig {
                retention_bytes: 700,
                ..small_config(600)
            },
        )
        .unwrap();
    let compacted = manager
        .get_or_create(
            &TopicPartition::new("cmp", 0),
            LogConfig {
                cleanup_policy: CleanupPolicy::Compact,
                min_cleanable_dirty_ratio: 0.0,
                ..small_config(600)
            },
        )
        .unwrap();
    for i in 0..30 {
        deleting.append_as_leader(sized(1, 100, 0), 0, 0).unwrap();
        let recs = vec![Rec::keyed(b"same", Some(format!("{i}").as_bytes()), 0)];
        compacted
            .append_as_leader(
                encode(
                    0,
                    -1,
                    &recs,
                    None,
                    kafka_protocol::records::Compression::None,
                ),
                0,
                0,
            )
            .unwrap();
    }
    for log in manager.logs() {
        log.set_high_watermark(log.log_end_offset());
    }
    let size_before = deleting.size_bytes();
    manager.maintain_all(1);
    assert!(deleting.size_bytes() < size_before);
    assert!(deleting.log_start_offset() > 0);
    let got = read_all(&compacted);
    let active_base = *compacted.segment_base_offsets().last().unwrap();
    let before_active: Vec<_> = got.iter().filter(|g| g.offset < active_base).collect();
    assert!(before_active.len() <= 1, "{before_active:?}");
    assert_eq!(got.last().unwrap().value.as_deref(), Some(&b"29"[..]));
}

#[test]
fn no_log_dirs_is_a_config_error() {
    let err = LogManager::open(&[], LogConfig::default(), 1).unwrap_err();
    assert_eq!(err.kafka_error_code().code(), 40);
}

#[test]
fn an_io_error_takes_its_log_dir_offline_and_only_that_one() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path());
    let defaults = small_config(2000);
    let manager = LogManager::open(&dirs, defaults.clone(), 1).unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = heard.clone();
    assert!(manager.set_failure_listener(std::sync::Arc::new(
        move |f: &storage::LogDirFailure| { sink.lock().unwrap().push(f.clone()) }
    )));
    let a = TopicPartition::new("a", 0);
    let b = TopicPartition::new("b", 0);
    let log_a = manager.get_or_create(&a, defaults.clone()).unwrap();
    let log_b = manager.get_or_create(&b, defaults.clone()).unwrap();
    assert_ne!(log_a.dir().parent(), log_b.dir().parent());
    log_a.append_as_leader(values(&[b"x"], 0), 0, 0).unwrap();
    log_b.append_as_leader(values(&[b"x"], 0), 0, 0).unwrap();

    // The partition directory vanishing under the log makes the next roll fail with ENOENT.
    fs::remove_dir_all(log_a.dir()).unwrap();
    let err = log_a.roll().unwrap_err();
    assert!(storage::is_log_dir_failure(&err), "{err}");
    assert!(log_a.is_offline());
    let refused = log_a
        .append_as_leader(values(&[b"y"], 0), 0, 0)
        .unwrap_err();
    assert_eq!(refused.kafka_error_code().code(), 56);
    assert!(refused.to_string().contains("offline"), "{refused}");
    assert_eq!(log_a.log_end_offset(), 1, "nothing more was written");

    let failed_dir = log_a.dir().parent().unwrap().to_path_buf();
    let offline = manager.offline_dirs();
    assert_eq!(offline.len(), 1);
    assert_eq!(offline[0].0, failed_dir);
    {
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len(), 1);
        assert_eq!(heard[0].path, failed_dir);
        assert!(!heard[0].all_failed);
    }

    // The other directory keeps working and takes the new partitions.
    assert!(!log_b.is_offline());
    log_b.append_as_leader(values(&[b"z"], 0), 0, 0).unwrap();
    for i in 0..3 {
        let log = manager
            .get_or_create(&TopicPartition::new("c", i), defaults.clone())
            .unwrap();
        assert_ne!(log.dir().parent().unwrap(), failed_dir);
    }
    manager.checkpoint_high_watermarks().unwrap();
    manager.shutdown().unwrap();
    assert!(!failed_dir.join(".kafka_cleanshutdown").exists());
    assert!(!failed_dir.join("replication-offset-checkpoint").exists());
    let healthy = log_b.dir().parent().unwrap();
    assert!(healthy.join(".kafka_cleanshutdown").exists());
}

//! Garbage from clients or replicas never panics the log and never lands in it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use proptest::prelude::*;
use storage::Log;
use support::*;

fn check_log_intact(log: &Log, appended: usize) {
    let got = read_all(log);
    assert_eq!(got.len(), appended);
    assert_eq!(log.log_end_offset(), appended as i64);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_rejected_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), small_config(4096));
        log.append_as_leader(values(&[b"ok"], 1), 0, 0).unwrap();
        let bytes = Bytes::from(data);
        let leader = log.append_as_leader(bytes.clone(), 0, 0);
        let follower = log.append_as_follower(bytes);
        let code = |r: &storage::Result<storage::AppendInfo>| r.as_ref().err().map(|e| e.kafka_error_code().code());
        prop_assert!(leader.is_err(), "{:?}", leader);
        if let Err(e) = &follower {
            prop_assert!([-1, 2, 18, 87].contains(&e.kafka_error_code().code()), "{:?}", code(&follower));
        } else {
            prop_assert_eq!(follower.unwrap().record_count, 0);
        }
        check_log_intact(&log, 1);
    }

    #[test]
    fn mutated_batches_are_rejected_or_stored_whole(pos in 0usize..2000, byte in any::<u8>(), values_len in 1usize..40) {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), small_config(4096));
        let good = sized(3, values_len, 5);
        let mut bad = good.to_vec();
        let at = pos % bad.len();
        bad[at] = byte;
        let changed = bad[at] != good[at];
        let result = log.append_as_leader(Bytes::from(bad), 0, 0);
        let untouched = at < 8 || (12..16).contains(&at);
        if changed && !untouched {
            prop_assert!(result.is_err(), "a change at byte {} went unnoticed", at);
        }
        let appended = if result.is_ok() { 3 } else { 0 };
        check_log_intact(&log, appended);
    }
}

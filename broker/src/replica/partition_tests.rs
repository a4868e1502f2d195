//! Tests of the replication core in the style of Kafka's PartitionTest: real logs in temporary
//! directories, follower fetches as `read` calls with `replica_id` set, time passed in explicitly.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_core::ErrorCode;
use storage::LogConfig;
use tempfile::TempDir;

use super::*;

/// The broker under test when it leads.
const LEADER: i32 = 1;
/// replica.lag.time.max.ms
const LAG_MAX_MS: i64 = 30_000;
/// An arbitrary start instant (ms).
const T0: i64 = 1_700_000_000_000;

fn tp() -> TopicPartition {
    TopicPartition {
        topic: "events".into(),
        partition: 0,
    }
}

fn assignment(
    leader: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: &[i32],
    isr: &[i32],
) -> Assignment {
    Assignment {
        leader,
        leader_epoch,
        partition_epoch,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
    }
}

/// A replica of `events-0` on broker `node_id`, its log in a fresh temporary directory.
fn replica(node_id: i32, replicas: &[i32], isr: &[i32], min_isr: i32) -> (TempDir, Partition) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("events-0"), tp(), LogConfig::default()).unwrap();
    let partition = Partition::new(
        tp(),
        Uuid::new_v4(),
        node_id,
        Arc::new(log),
        assignment(-1, -1, 0, replicas, isr),
        min_isr,
    );
    (dir, partition)
}

/// Broker 1 leading `events-0` (replicas 1, 2, 3) at leader epoch 1 with `isr`.
fn leader(isr: &[i32], min_isr: i32) -> (TempDir, Partition) {
    let (dir, p) = replica(LEADER, &[1, 2, 3], isr, min_isr);
    p.become_leader(assignment(LEADER, 1, 1, &[1, 2, 3], isr), T0)
        .unwrap();
    (dir, p)
}

/// One uncompressed v2 batch of `count` key-less records (offsets relative to 0).
fn batch(count: usize, timestamp: i64) -> Bytes {
    let records: Vec<_> = (0..count)
        .map(|i| (None, Some(Bytes::from(format!("value-{i}")))))
        .collect();
    storage::plain_batch(&records, timestamp).unwrap()
}

/// Leader append of one batch of `count` records with acks=1.
fn produce(p: &Partition, count: usize, now: i64) -> AppendInfo {
    p.append_as_leader(batch(count, now), 1, now).unwrap()
}

fn follower_fetch_params(replica: i32, offset: i64, now: i64) -> ReadParams {
    ReadParams {
        fetch_offset: offset,
        max_bytes: 1 << 20,
        current_leader_epoch: -1,
        last_fetched_epoch: -1,
        replica_id: Some(replica),
        now_ms: now,
    }
}

/// A follower fetch from `offset`, i.e. the follower's log end offset is `offset`.
fn fetch(p: &Partition, replica: i32, offset: i64, now: i64) -> PartitionRead {
    p.read(&follower_fetch_params(replica, offset, now))
        .unwrap()
}

fn consumer_read(
    p: &Partition,
    offset: i64,
    current_leader_epoch: i32,
) -> Result<PartitionRead, PartitionError> {
    p.read(&ReadParams {
        fetch_offset: offset,
        max_bytes: 1 << 20,
        current_leader_epoch,
        last_fetched_epoch: -1,
        replica_id: None,
        now_ms: T0,
    })
}

fn always_live(_: i32) -> bool {
    true
}

fn bytes_of(read: &PartitionRead) -> Bytes {
    let mut out = BytesMut::new();
    for region in &read.records.regions {
        region.read_into(&mut out).unwrap();
    }
    out.freeze()
}

// ---------------------------------------------------------------------------------------------
// High watermark

#[test]
fn high_watermark_is_the_minimum_log_end_offset_over_the_isr() {
    let (_dir, p) = leader(&[1, 2, 3], 1);
    produce(&p, 5, T0);
    assert_eq!(p.log().log_end_offset(), 5);
    assert_eq!(p.high_watermark(), 0, "no follower has fetched yet");

    // Follower 3 has not fetched since the election: its LEO is unknown, the HW holds.
    let read = fetch(&p, 2, 3, T0 + 1);
    assert_eq!(p.high_watermark(), 0);
    assert_eq!(read.high_watermark, 0);

    let read = fetch(&p, 3, 2, T0 + 2);
    assert_eq!(p.high_watermark(), 2, "min(leader 5, f2 3, f3 2)");
    assert_eq!(
        read.high_watermark, 2,
        "the fetch response carries the new HW"
    );

    fetch(&p, 2, 5, T0 + 3);
    assert_eq!(p.high_watermark(), 2, "follower 3 still holds it back");

    fetch(&p, 3, 5, T0 + 4);
    assert_eq!(p.high_watermark(), 5);
    assert_eq!(p.followers()[&3].log_end_offset, 5);
}

#[test]
fn high_watermark_never_moves_backwards_on_the_leader() {
    let (_dir, p) = leader(&[1, 2, 3], 1);
    produce(&p, 5, T0);
    fetch(&p, 2, 5, T0 + 1);
    fetch(&p, 3, 5, T0 + 1);
    assert_eq!(p.high_watermark(), 5);

    // A follower that fetches from an earlier offset (it truncated) does not pull it back.
    fetch(&p, 2, 3, T0 + 2);
    assert_eq!(p.followers()[&2].log_end_offset, 3);
    assert_eq!(p.high_watermark(), 5);

    // More records, only partly replicated: HW advances from 5 by the slowest ISR member.
    produce(&p, 5, T0 + 3);
    fetch(&p, 2, 8, T0 + 4);
    fetch(&p, 3, 10, T0 + 4);
    assert_eq!(p.high_watermark(), 8);

    // A re-election forgets the followers' progress; the HW stays where it was.
    p.become_leader(assignment(LEADER, 2, 2, &[1, 2, 3], &[1, 2, 3]), T0 + 5)
        .unwrap();
    assert_eq!(p.high_watermark(), 8);
    fetch(&p, 2, 9, T0 + 6);
    assert_eq!(
        p.high_watermark(),
        8,
        "follower 3 has not fetched at epoch 2"
    );
    fetch(&p, 3, 10, T0 + 6);
    assert_eq!(p.high_watermark(), 9);
}

#[test]
fn follower_outside_the_isr_does_not_hold_the_high_watermark_back() {
    let (_dir, p) = leader(&[1, 2], 1);
    produce(&p, 4, T0);
    fetch(&p, 3, 0, T0 + 1);
    fetch(&p, 2, 4, T0 + 1);
    assert_eq!(p.high_watermark(), 4, "replica 3 is not in the ISR");
    assert_eq!(
        p.followers()[&3].log_end_offset,
        0,
        "but its progress is tracked"
    );
}

#[test]
fn leader_alone_in_the_isr_commits_on_append() {
    let (_dir, p) = leader(&[1], 1);
    let info = produce(&p, 3, T0);
    assert_eq!((info.first_offset, info.last_offset), (0, 2));
    assert_eq!(p.high_watermark(), 3);
    produce(&p, 2, T0 + 1);
    assert_eq!(p.high_watermark(), 5);
}

#[test]
fn fetch_from_a_broker_that_is_not_a_replica_changes_nothing() {
    let (_dir, p) = leader(&[1, 2], 1);
    produce(&p, 4, T0);
    let read = fetch(&p, 9, 4, T0 + 1);
    assert_eq!(read.high_watermark, 0);
    assert_eq!(p.high_watermark(), 0);
    assert!(!p.followers().contains_key(&9));
}

#[test]
fn pending_isr_shrink_keeps_the_removed_replica_in_the_high_watermark() {
    let (_dir, p) = leader(&[1, 2, 3], 1);
    produce(&p, 4, T0);
    fetch(&p, 2, 4, T0 + 1);
    fetch(&p, 3, 1, T0 + 1);
    assert_eq!(p.high_watermark(), 1);

    // Proposed {1, 2}: until the controller commits it, 3 may still be in the ISR.
    p.set_pending_isr(Some(vec![1, 2]));
    fetch(&p, 2, 4, T0 + 2);
    assert_eq!(
        p.high_watermark(),
        1,
        "maximal ISR {{1, 2, 3}} still counts 3"
    );
    assert!(
        p.isr_change_due(T0 + 10 * LAG_MAX_MS, LAG_MAX_MS, &always_live)
            .is_none(),
        "no second proposal while one is pending"
    );

    // Committed at partition epoch 2: the pending change is cleared, HW = min over {1, 2}.
    let sizes = p.update_assignment(assignment(LEADER, 1, 2, &[1, 2, 3], &[1, 2]));
    assert_eq!(sizes, Some((3, 2)));
    assert_eq!(p.assignment().isr, vec![1, 2]);
    assert_eq!(p.high_watermark(), 4);
}

#[test]
fn pending_isr_expansion_counts_the_joining_replica() {
    let (_dir, p) = leader(&[1, 2], 1);
    produce(&p, 4, T0);
    fetch(&p, 3, 2, T0 + 1);

    // Proposed {1, 2, 3}: the HW must not pass what 3 has, it may already be in the ISR.
    p.set_pending_isr(Some(vec![1, 2, 3]));
    fetch(&p, 2, 4, T0 + 2);
    assert_eq!(p.high_watermark(), 2, "maximal ISR {{1, 2, 3}}");

    // The controller rejected it: back to the committed ISR {1, 2}.
    p.set_pending_isr(None);
    assert_eq!(p.high_watermark(), 4);
}

#[test]
fn stale_assignment_updates_are_ignored() {
    let (_dir, p) = leader(&[1, 2, 3], 1);
    assert_eq!(
        p.update_assignment(assignment(LEADER, 1, 3, &[1, 2, 3], &[1, 2])),
        Some((3, 2))
    );
    // An older partition epoch (a late AlterPartition reply, say) does not undo it.
    assert_eq!(
        p.update_assignment(assignment(LEADER, 1, 2, &[1, 2, 3], &[1, 2, 3])),
        None
    );
    assert_eq!(p.assignment().isr, vec![1, 2]);
    assert_eq!(p.assignment().partition_epoch, 3);
}

// ---------------------------------------------------------------------------------------------
// ISR shrink and expand

#[test]
fn isr_shrink_drops_a_follower_lagging_longer_than_the_lag_time() {
    let (_dir, p) = leader(&[1, 2, 3], 1);
    produce(&p, 5, T0);
    // Follower 2 keeps up; follower 3 fetches but stays at offset 0.
    for t in [T0 + 1_000, T0 + 20_000, T0 + LAG_MAX_MS] {
        fetch(&p, 2, 5, t);
        fetch(&p, 3, 0, t);
    }
    // 3 was last caught up at the election (T0): exactly the lag time is still in sync.
    assert!(p
        .isr_change_due(T0 + LAG_MAX_MS, LAG_MAX_MS, &always_live)
        .is_none());

    let proposal = p
        .isr_change_due(T0 + LAG_MAX_MS + 1, LAG_MAX_MS, &always_live)
        .expect("follower 3 is out of sync");
    assert_eq!(proposal.new_isr, vec![1, 2]);
    assert_eq!(proposal.leader_epoch, 1);
    assert_eq!(proposal.partition_epoch, 1);
    assert_eq!(proposal.partition, 0);
    assert_eq!(proposal.topic_id, p.topic_id);
}

#[test]
fn isr_shrink_drops_a_follower_that_falls_below_the_high_watermark() {
    let (_dir, p) = leader(&[1, 2, 3], 1);
    produce(&p, 5, T0);
    fetch(&p, 2, 5, T0 + 1);
    fetch(&p, 3, 5, T0 + 1);
    assert_eq!(p.high_watermark(), 5);
    produce(&p, 2, T0 + 2);
    // Follower 3 cut a corrupt batch and fetches again from offset 2: well within the lag
    // time, but it no longer holds acknowledged records, so it must leave the ISR.
    fetch(&p, 2, 7, T0 + 3);
    fetch(&p, 3, 2, T0 + 3);
    assert_eq!(p.high_watermark(), 5);
    let proposal = p
        .isr_change_due(T0 + 4, LAG_MAX_MS, &always_live)
        .expect("follower 3 lost acknowledged records");
    assert_eq!(proposal.new_isr, vec![1, 2]);
}

#[test]
fn a_follower_repairs_corruption_by_cutting_its_log_there() {
    let (_dir, leader) = leader(&[1, 2], 1);
    produce(&leader, 3, T0);
    produce(&leader, 3, T0);
    let (_fdir, follower) = replica(2, &[1, 2], &[1, 2], 1);
    follower.become_follower(assignment(LEADER, 1, 1, &[1, 2], &[1, 2]));
    let records = bytes_of(&fetch(&leader, 2, 0, T0 + 1));
    follower.append_as_follower(records, 6).unwrap();
    assert_eq!(follower.log().log_end_offset(), 6);

    assert!(follower.note_corruption(3));
    assert!(
        !follower.note_corruption(4),
        "already pending at an earlier offset"
    );
    assert!(follower.note_corruption(1), "an earlier corruption is news");
    assert_eq!(follower.repair_as_follower().unwrap(), Some(1));
    assert_eq!(
        follower.log().log_end_offset(),
        0,
        "cut before the batch holding offset 1"
    );
    assert_eq!(follower.corruption(), None);
    assert_eq!(follower.repair_as_follower().unwrap(), None);

    // A leader never cuts its own log this way.
    assert!(leader.note_corruption(3));
    assert_eq!(leader.repair_as_follower().unwrap(), None);
    assert_eq!(leader.log().log_end_offset(), 6);
}

#[test]
fn isr_shrink_drops_an_isr_follower_that_never_fetches() {
    let (_dir, p) = leader(&[1, 2, 3], 1);
    fetch(&p, 2, 0, T0 + LAG_MAX_MS);
    assert!(p
        .isr_change_due(T0 + LAG_MAX_MS, LAG_MAX_MS, &always_live)
        .is_none());
    let proposal = p
        .isr_change_due(T0 + LAG_MAX_MS + 1, LAG_MAX_MS, &always_live)
        .expect("follower 3 never showed up");
    assert_eq!(proposal.new_isr, vec![1, 2]);
}

#[test]
fn follower_reaching_the_previous_fetch_log_end_stays_in_sync_under_steady_load() {
    // The leader appends between every two fetches, so follower 2 is never at the leader's
    // current LEO, but each fetch reaches the LEO of its previous one (Kafka's
    // lastFetchLeaderLogEndOffset rule): it is in sync. Follower 3 stopped fetching.
    let (_dir, p) = leader(&[1, 2, 3], 1);
    let mut next_fetch = 0;
    let mut now = T0;
    for _ in 0..10 {
        now += 10_000;
        fetch(&p, 2, next_fetch, now);
        next_fetch = p.log().log_end_offset();
        produce(&p, 1, now);
    }
    assert!(now - T0 > 3 * LAG_MAX_MS);
    assert!(p.followers()[&2].log_end_offset < p.log().log_end_offset());
    let proposal = p
        .isr_change_due(now, LAG_MAX_MS, &always_live)
        .expect("follower 3 is out of sync");
    assert_eq!(proposal.new_isr, vec![1, 2], "follower 2 stays");
}

#[test]
fn follower_falling_behind_is_dropped_once_lag_time_passes() {
    // Follower 2 fetches regularly but, after a burst of 100 records, each fetch is behind the
    // leader's LEO at the previous one: its last caught-up time stays at its last fetch before
    // the burst and it leaves the ISR once the lag time has passed since then.
    let (_dir, p) = leader(&[1, 2], 1);
    produce(&p, 10, T0);
    fetch(&p, 2, 10, T0 + 1_000);
    assert_eq!(p.followers()[&2].last_caught_up_ms, T0 + 1_000);
    produce(&p, 100, T0 + 1_000);
    let mut now = T0 + 1_000;
    for offset in [11, 12, 13, 14] {
        now += 10_000;
        fetch(&p, 2, offset, now);
        produce(&p, 10, now);
    }
    assert_eq!(p.followers()[&2].last_caught_up_ms, T0 + 1_000);
    assert!(p
        .isr_change_due(T0 + 1_000 + LAG_MAX_MS, LAG_MAX_MS, &always_live)
        .is_none());
    let proposal = p
        .isr_change_due(T0 + 1_001 + LAG_MAX_MS, LAG_MAX_MS, &always_live)
        .expect("follower 2 fell behind");
    assert_eq!(proposal.new_isr, vec![1]);
}

#[test]
fn isr_expand_readmits_a_follower_that_caught_up() {
    let (_dir, p) = leader(&[1, 2], 1);
    produce(&p, 3, T0);
    fetch(&p, 2, 3, T0 + 1);
    assert_eq!(p.high_watermark(), 3);

    fetch(&p, 3, 1, T0 + 2);
    assert!(
        p.isr_change_due(T0 + 2, LAG_MAX_MS, &always_live).is_none(),
        "3 is behind the HW"
    );

    fetch(&p, 3, 3, T0 + 3);
    assert!(
        p.isr_change_due(T0 + 3, LAG_MAX_MS, &|id| id != 3)
            .is_none(),
        "a fenced or shutting-down broker is not re-admitted"
    );
    let proposal = p
        .isr_change_due(T0 + 3, LAG_MAX_MS, &always_live)
        .expect("3 caught up");
    assert_eq!(proposal.new_isr, vec![1, 2, 3]);
}

#[test]
fn isr_expand_keeps_replica_order() {
    let (_dir, p) = leader(&[1, 3], 1);
    produce(&p, 2, T0);
    fetch(&p, 3, 2, T0 + 1);
    fetch(&p, 2, 2, T0 + 1);
    let proposal = p
        .isr_change_due(T0 + 1, LAG_MAX_MS, &always_live)
        .expect("2 caught up");
    assert_eq!(proposal.new_isr, vec![1, 2, 3]);
}

#[test]
fn isr_expand_requires_reaching_the_leader_epoch_start_offset() {
    // Epoch 1: five records, the HW at 3.
    let (_dir, p) = leader(&[1, 2, 3], 1);
    produce(&p, 5, T0);
    fetch(&p, 2, 3, T0);
    fetch(&p, 3, 3, T0);
    assert_eq!(p.high_watermark(), 3);

    // Epoch 2 starts at offset 5; then the controller drops 3 from the ISR.
    p.become_leader(assignment(LEADER, 2, 2, &[1, 2, 3], &[1, 2, 3]), T0 + 1)
        .unwrap();
    assert_eq!(p.log().epoch_entries().last(), Some(&(2, 5)));
    p.update_assignment(assignment(LEADER, 2, 3, &[1, 2, 3], &[1, 2]));
    assert_eq!(p.high_watermark(), 3);

    // 3 is at the HW and was caught up at the election, but has not reached epoch 2's start.
    fetch(&p, 3, 3, T0 + 2);
    assert!(p.isr_change_due(T0 + 2, LAG_MAX_MS, &always_live).is_none());
    fetch(&p, 3, 5, T0 + 3);
    let proposal = p
        .isr_change_due(T0 + 3, LAG_MAX_MS, &always_live)
        .expect("3 reached the epoch start");
    assert_eq!(proposal.new_isr, vec![1, 2, 3]);
    assert_eq!(proposal.leader_epoch, 2);
    assert_eq!(proposal.partition_epoch, 3);
}

#[test]
fn acks_all_append_needs_min_insync_replicas() {
    let (_dir, p) = leader(&[1], 2);
    let err = p.append_as_leader(batch(1, T0), -1, T0).unwrap_err();
    assert_eq!(err.code, ErrorCode::NOT_ENOUGH_REPLICAS);
    assert_eq!(p.log().log_end_offset(), 0, "nothing was written");

    // acks=1 does not check min.insync.replicas.
    assert_eq!(
        p.append_as_leader(batch(1, T0), 1, T0)
            .unwrap()
            .first_offset,
        0
    );

    p.update_assignment(assignment(LEADER, 1, 2, &[1, 2, 3], &[1, 2]));
    let info = p.append_as_leader(batch(1, T0), -1, T0).unwrap();
    assert_eq!(info.first_offset, 1);

    // A lowered min.insync.replicas (topic config change) applies at once.
    p.update_assignment(assignment(LEADER, 1, 3, &[1, 2, 3], &[1]));
    assert_eq!(
        p.append_as_leader(batch(1, T0), -1, T0).unwrap_err().code,
        ErrorCode::NOT_ENOUGH_REPLICAS
    );
    p.set_min_insync_replicas(1);
    assert!(p.append_as_leader(batch(1, T0), -1, T0).is_ok());
}

#[test]
fn a_follower_refuses_leader_appends() {
    let (_dir, p) = replica(2, &[1, 2, 3], &[1, 2, 3], 1);
    p.become_follower(assignment(LEADER, 1, 1, &[1, 2, 3], &[1, 2, 3]));
    let err = p.append_as_leader(batch(1, T0), 1, T0).unwrap_err();
    assert_eq!(err.code, ErrorCode::NOT_LEADER_OR_FOLLOWER);
    assert_eq!(p.log().log_end_offset(), 0);
}

// ---------------------------------------------------------------------------------------------
// acks=all completion

/// A wait that must still be pending: polled once, it is not ready.
macro_rules! assert_pending {
    ($fut:expr) => {
        assert!(
            futures::poll!($fut.as_mut()).is_pending(),
            "the wait completed early"
        )
    };
}

macro_rules! assert_ready {
    ($fut:expr, $code:expr) => {
        match futures::poll!($fut.as_mut()) {
            std::task::Poll::Ready(code) => {
                assert_eq!(code, $code)
            }
            std::task::Poll::Pending => panic!("the wait is still pending"),
        }
    };
}

#[tokio::test]
async fn acks_all_wait_completes_once_the_isr_fetched_past_the_offset() {
    let (_dir, p) = leader(&[1, 2, 3], 2);
    let info = p.append_as_leader(batch(3, T0), -1, T0).unwrap();
    let required = info.last_offset + 1;
    let wait = p.wait_for_high_watermark(required, Duration::from_secs(60));
    tokio::pin!(wait);
    assert_pending!(wait);

    fetch(&p, 2, required, T0 + 1);
    assert_pending!(wait);
    fetch(&p, 3, required - 1, T0 + 1);
    assert_pending!(wait);
    fetch(&p, 3, required, T0 + 2);
    assert_ready!(wait, ErrorCode::NONE);
}

#[tokio::test]
async fn acks_all_wait_for_records_already_committed_returns_at_once() {
    let (_dir, p) = leader(&[1], 1);
    let info = p.append_as_leader(batch(2, T0), -1, T0).unwrap();
    let wait = p.wait_for_high_watermark(info.last_offset + 1, Duration::from_secs(60));
    tokio::pin!(wait);
    assert_ready!(wait, ErrorCode::NONE);
}

#[tokio::test]
async fn acks_all_wait_times_out() {
    let (_dir, p) = leader(&[1, 2, 3], 1);
    let info = p.append_as_leader(batch(1, T0), -1, T0).unwrap();
    fetch(&p, 2, 1, T0 + 1);
    let code = p
        .wait_for_high_watermark(info.last_offset + 1, Duration::from_millis(20))
        .await;
    assert_eq!(code, ErrorCode::REQUEST_TIMED_OUT);
    assert_eq!(p.high_watermark(), 0);
}

#[tokio::test]
async fn acks_all_wait_fails_when_leadership_is_lost() {
    let (_dir, p) = leader(&[1, 2, 3], 1);
    let info = p.append_as_leader(batch(1, T0), -1, T0).unwrap();
    let wait = p.wait_for_high_watermark(info.last_offset + 1, Duration::from_secs(60));
    tokio::pin!(wait);
    assert_pending!(wait);
    p.become_follower(assignment(2, 2, 2, &[1, 2, 3], &[1, 2, 3]));
    assert_ready!(wait, ErrorCode::NOT_LEADER_OR_FOLLOWER);
}

#[tokio::test]
async fn acks_all_wait_fails_on_a_new_leader_epoch() {
    // Re-elected at a newer epoch while waiting: the wait cannot tell whether its records
    // survived the epoch change, so the producer is told to retry.
    let (_dir, p) = leader(&[1, 2, 3], 1);
    let info = p.append_as_leader(batch(1, T0), -1, T0).unwrap();
    let wait = p.wait_for_high_watermark(info.last_offset + 1, Duration::from_secs(60));
    tokio::pin!(wait);
    assert_pending!(wait);
    p.become_leader(assignment(LEADER, 2, 2, &[1, 2, 3], &[1, 2, 3]), T0 + 1)
        .unwrap();
    assert_ready!(wait, ErrorCode::NOT_LEADER_OR_FOLLOWER);
}

#[tokio::test]
async fn acks_all_wait_reports_an_isr_shrunk_below_min_insync() {
    let (_dir, p) = leader(&[1, 2, 3], 2);
    let info = p.append_as_leader(batch(1, T0), -1, T0).unwrap();
    let wait = p.wait_for_high_watermark(info.last_offset + 1, Duration::from_secs(60));
    tokio::pin!(wait);
    assert_pending!(wait);

    // Both followers are dropped: the HW reaches the offset with only the leader in the ISR.
    p.update_assignment(assignment(LEADER, 1, 2, &[1, 2, 3], &[1]));
    assert_eq!(p.high_watermark(), 1);
    assert_ready!(wait, ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND);
}

// ---------------------------------------------------------------------------------------------
// Leader epochs, reads and truncation

#[test]
fn current_leader_epoch_is_checked() {
    let (_dir, p) = replica(LEADER, &[1, 2, 3], &[1, 2, 3], 1);
    p.become_leader(assignment(LEADER, 5, 1, &[1, 2, 3], &[1, 2, 3]), T0)
        .unwrap();
    assert_eq!(p.check_leader_epoch(-1), Ok(()));
    assert_eq!(p.check_leader_epoch(5), Ok(()));
    assert_eq!(
        p.check_leader_epoch(4).unwrap_err().code,
        ErrorCode::FENCED_LEADER_EPOCH
    );
    assert_eq!(
        p.check_leader_epoch(6).unwrap_err().code,
        ErrorCode::UNKNOWN_LEADER_EPOCH
    );

    // The same checks guard reads, for consumers and followers alike.
    assert!(consumer_read(&p, 0, 5).is_ok());
    assert_eq!(
        consumer_read(&p, 0, 4).unwrap_err().code,
        ErrorCode::FENCED_LEADER_EPOCH
    );
    assert_eq!(
        consumer_read(&p, 0, 6).unwrap_err().code,
        ErrorCode::UNKNOWN_LEADER_EPOCH
    );
    let stale = ReadParams {
        current_leader_epoch: 4,
        ..follower_fetch_params(2, 0, T0 + 1)
    };
    assert_eq!(
        p.read(&stale).unwrap_err().code,
        ErrorCode::FENCED_LEADER_EPOCH
    );
    assert_eq!(
        p.followers()[&2].log_end_offset,
        -1,
        "a fenced fetch is not progress"
    );
}

#[test]
fn consumers_read_up_to_the_high_watermark_followers_to_the_log_end() {
    let (_dir, p) = leader(&[1, 2], 1);
    produce(&p, 2, T0);
    fetch(&p, 2, 2, T0 + 1);
    produce(&p, 3, T0 + 2);
    assert_eq!(p.high_watermark(), 2);

    let committed = consumer_read(&p, 0, -1).unwrap();
    let all = fetch(&p, 3, 0, T0 + 3);
    assert!(committed.records.size_bytes > 0);
    assert!(all.records.size_bytes > committed.records.size_bytes);
    assert_eq!(all.records.size_bytes as usize, bytes_of(&all).len());
    assert_eq!(
        consumer_read(&p, 2, -1).unwrap().records.size_bytes,
        0,
        "nothing past the HW for a consumer"
    );

    let err = p.read(&follower_fetch_params(2, 6, T0 + 3)).unwrap_err();
    assert_eq!(err.code, ErrorCode::OFFSET_OUT_OF_RANGE);
    assert_eq!(
        p.followers()[&2].log_end_offset,
        2,
        "an out-of-range fetch is not progress"
    );
}

#[test]
fn followers_do_not_serve_replica_fetches() {
    let (_dir, p) = replica(2, &[1, 2, 3], &[1, 2, 3], 1);
    p.become_follower(assignment(LEADER, 1, 1, &[1, 2, 3], &[1, 2, 3]));
    let err = p.read(&follower_fetch_params(3, 0, T0)).unwrap_err();
    assert_eq!(err.code, ErrorCode::NOT_LEADER_OR_FOLLOWER);
    // Consumers may read from a follower replica (KIP-392).
    assert!(consumer_read(&p, 0, 1).is_ok());
}

#[test]
fn become_leader_records_the_epoch_start_offset() {
    let (_dir, p) = leader(&[1], 1);
    assert_eq!(p.leader_epoch(), 1);
    assert_eq!(p.log().epoch_entries(), vec![(1, 0)]);
    produce(&p, 3, T0);

    p.become_leader(assignment(LEADER, 3, 2, &[1, 2, 3], &[1]), T0 + 1)
        .unwrap();
    assert_eq!(p.leader_epoch(), 3);
    assert_eq!(p.log().epoch_entries(), vec![(1, 0), (3, 3)]);
    assert_eq!(p.log().end_offset_for_epoch(1), Some((1, 3)));
    assert_eq!(p.log().end_offset_for_epoch(2), Some((1, 3)));
    let progress = *p.subscribe_progress().borrow();
    assert_eq!(
        progress,
        Progress {
            high_watermark: 3,
            leader_epoch: 3,
            is_leader: true
        }
    );

    produce(&p, 1, T0 + 2);
    assert_eq!(p.log().end_offset_for_epoch(3), Some((3, 4)));
    assert_eq!(p.log().epoch_entries(), vec![(1, 0), (3, 3)]);
}

#[test]
fn role_changes_wake_waiting_follower_fetches() {
    let (_dir, p) = leader(&[1, 2], 1);
    let mut log_end = p.subscribe_log_end();
    let mut progress = p.subscribe_progress();
    log_end.borrow_and_update();
    progress.borrow_and_update();

    // A high watermark move wakes acks=all waiters but not follower long polls.
    produce(&p, 1, T0);
    assert!(log_end.has_changed().unwrap());
    log_end.borrow_and_update();
    progress.borrow_and_update();
    fetch(&p, 2, 1, T0 + 1);
    assert!(progress.has_changed().unwrap());
    assert!(!log_end.has_changed().unwrap());

    p.become_follower(assignment(2, 2, 2, &[1, 2], &[1, 2]));
    assert!(
        log_end.has_changed().unwrap(),
        "a role change wakes follower fetches"
    );
    assert_eq!(
        *progress.borrow_and_update(),
        Progress {
            high_watermark: 1,
            leader_epoch: 2,
            is_leader: false
        }
    );
    assert!(p.followers().is_empty());
}

#[test]
fn follower_high_watermark_is_bounded_by_its_log_end() {
    let (_dir, l) = leader(&[1, 2], 1);
    let (_dir2, f) = replica(2, &[1, 2], &[1, 2], 1);
    f.become_follower(assignment(LEADER, 1, 1, &[1, 2], &[1, 2]));
    produce(&l, 3, T0);

    let read = fetch(&l, 2, 0, T0 + 1);
    f.append_as_follower(bytes_of(&read), 10).unwrap();
    assert_eq!(f.log().log_end_offset(), 3);
    assert_eq!(f.high_watermark(), 3, "the leader's HW, capped at our LEO");

    f.append_as_follower(Bytes::new(), 1).unwrap();
    assert_eq!(
        f.high_watermark(),
        3,
        "a lower reported HW does not move ours back"
    );

    let err = l.append_as_follower(Bytes::new(), 0).unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
        "the leader takes no follower appends"
    );
}

#[test]
fn truncate_to_drops_records_and_epochs_past_the_offset() {
    let (_dir, p) = leader(&[1], 1);
    produce(&p, 2, T0);
    p.become_leader(assignment(LEADER, 2, 2, &[1, 2, 3], &[1]), T0)
        .unwrap();
    produce(&p, 3, T0);
    assert_eq!(p.high_watermark(), 5);
    assert_eq!(p.log().epoch_entries(), vec![(1, 0), (2, 2)]);

    p.become_follower(assignment(2, 3, 3, &[1, 2, 3], &[2, 3]));
    let mut log_end = p.subscribe_log_end();
    log_end.borrow_and_update();
    p.truncate_to(2).unwrap();
    assert_eq!(p.log().log_end_offset(), 2);
    assert_eq!(p.high_watermark(), 2, "the HW moves back with the log end");
    assert_eq!(p.log().epoch_entries(), vec![(1, 0)]);
    assert_eq!(*log_end.borrow_and_update(), 2);
    assert!(!p.is_leader());
    assert_eq!(p.leader_epoch(), 3);
}

/// One follower fetch round as the replica fetcher does it: fetch from the follower's log end
/// with its latest epoch, truncate on divergence, else append what came back.
fn replicate_once(
    leader: &Partition,
    follower: &Partition,
    follower_id: i32,
    max_bytes: u32,
    now: i64,
) -> PartitionRead {
    let log = follower.log();
    let read = leader
        .read(&ReadParams {
            fetch_offset: log.log_end_offset(),
            max_bytes,
            current_leader_epoch: leader.leader_epoch(),
            last_fetched_epoch: log.latest_epoch().unwrap_or(-1),
            replica_id: Some(follower_id),
            now_ms: now,
        })
        .unwrap();
    if let Some((epoch, end_offset)) = read.diverging_epoch {
        let target = match log.end_offset_for_epoch(epoch) {
            Some((_, ours)) => ours.min(end_offset),
            None => end_offset.min(log.log_end_offset()),
        };
        follower.truncate_to(target).unwrap();
    } else {
        follower
            .append_as_follower(bytes_of(&read), read.high_watermark)
            .unwrap();
    }
    read
}

#[test]
fn divergent_follower_truncates_to_the_new_leaders_epoch_end_and_converges() {
    // Broker 2 leads at epoch 1 and appends offsets 0..3; broker 1 replicates only offset 0.
    let (_dir1, a) = replica(1, &[1, 2], &[1, 2], 1);
    let (_dir2, b) = replica(2, &[1, 2], &[1, 2], 1);
    b.become_leader(assignment(2, 1, 1, &[1, 2], &[1, 2]), T0)
        .unwrap();
    a.become_follower(assignment(2, 1, 1, &[1, 2], &[1, 2]));
    for i in 0..3 {
        produce(&b, 1, T0 + i);
    }
    replicate_once(&b, &a, 1, 1, T0 + 10);
    assert_eq!(a.log().log_end_offset(), 1);

    // Broker 1 takes over at epoch 2 and appends offset 1; broker 2 follows.
    a.become_leader(assignment(1, 2, 2, &[1, 2], &[1, 2]), T0 + 20)
        .unwrap();
    b.become_follower(assignment(1, 2, 2, &[1, 2], &[1, 2]));
    assert_eq!(
        b.append_as_leader(batch(1, T0), 1, T0).unwrap_err().code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER
    );
    produce(&a, 1, T0 + 21);
    assert_eq!(a.log().epoch_entries(), vec![(1, 0), (2, 1)]);

    // Broker 2 fetches at its LEO 3 with last epoch 1: epoch 1 ends at 1 on the new leader.
    let read = replicate_once(&a, &b, 2, 1 << 20, T0 + 30);
    assert_eq!(read.diverging_epoch, Some((1, 1)));
    assert_eq!(read.records.size_bytes, 0);
    assert_eq!(
        a.followers()[&2].log_end_offset,
        -1,
        "a diverging fetch is not progress"
    );
    assert_eq!(
        b.log().log_end_offset(),
        1,
        "offsets 1 and 2 of epoch 1 are gone"
    );
    assert_eq!(b.log().epoch_entries(), vec![(1, 0)]);

    // From there it replicates the new leader's log and the HW advances on both.
    let read = replicate_once(&a, &b, 2, 1 << 20, T0 + 31);
    assert_eq!(read.diverging_epoch, None);
    assert_eq!(b.log().log_end_offset(), 2);
    assert_eq!(b.log().epoch_entries(), vec![(1, 0), (2, 1)]);
    assert_eq!(a.high_watermark(), 1);
    replicate_once(&a, &b, 2, 1 << 20, T0 + 32);
    assert_eq!(a.high_watermark(), 2);
    assert_eq!(b.high_watermark(), 2);
    assert_eq!(
        b.log().read_bytes(0, 1 << 20, i64::MAX).unwrap(),
        a.log().read_bytes(0, 1 << 20, i64::MAX).unwrap(),
        "both logs hold the same batches"
    );
}

#[test]
fn append_racing_a_caught_up_fetch_does_not_deny_it_caught_up_credit() {
    // Kafka judges a follower fetch against the leader's LEO from *before* the read, so that
    // appends landing while the fetch is served do not keep a follower out of sync. Here a
    // produce lands between the fetch's log read and the recording of the follower's
    // progress: follower 3, outside the ISR, fetched from the LEO and must count as caught up.
    let (_dir, p) = leader(&[1, 2], 1);
    let p = Arc::new(p);
    produce(&p, 3, T0);
    fetch(&p, 2, 3, T0 + 1);
    assert_eq!(p.high_watermark(), 3);

    // Holding the state lock (shared) parks the fetch once it has read the log and wants to
    // record progress (exclusively); the produce below then lands inside that window. It goes
    // to the log directly: the leader's own append path would queue behind the waiting fetch.
    let guard = p.state.read();
    let fetcher = {
        let p = p.clone();
        std::thread::spawn(move || fetch(&p, 3, 3, T0 + 2))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !p.state.is_locked_exclusive() {
        assert!(
            !fetcher.is_finished(),
            "the fetch did not wait for the state lock"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the fetch never got to recording"
        );
        std::thread::yield_now();
    }
    p.log().append_as_leader(batch(1, T0), 1, T0 + 2).unwrap();
    drop(guard);
    let read = fetcher.join().unwrap();
    assert_eq!(
        read.records.size_bytes, 0,
        "the fetch was at the log end when it read"
    );

    assert_eq!(p.followers()[&3].last_caught_up_ms, T0 + 2);
    let proposal = p
        .isr_change_due(T0 + 2, LAG_MAX_MS, &always_live)
        .expect("3 caught up to the HW and the LEO of its fetch");
    assert_eq!(proposal.new_isr, vec![1, 2, 3]);
}

// ---------------------------------------------------------------------------------------------
// Log dir failure

#[test]
fn an_offline_log_dir_refuses_produce_and_follower_fetch_with_storage_error() {
    let (dir, p) = leader(&[1, 2], 1);
    produce(&p, 2, T0);
    // The partition directory vanishing makes the next roll fail: an I/O error.
    std::fs::remove_dir_all(dir.path().join("events-0")).unwrap();
    assert!(p.log().roll().is_err());
    assert!(p.log().is_offline());
    let refused = p.append_as_leader(batch(1, T0), -1, T0).unwrap_err();
    assert_eq!(refused.code, ErrorCode::KAFKA_STORAGE_ERROR);
    let fetch = p.read(&follower_fetch_params(2, 0, T0)).unwrap_err();
    assert_eq!(fetch.code, ErrorCode::KAFKA_STORAGE_ERROR);
    assert_eq!(
        consumer_read(&p, 0, -1).unwrap_err().code,
        ErrorCode::KAFKA_STORAGE_ERROR
    );
    assert_eq!(p.log().log_end_offset(), 2);
}

//! Snapshots: voters build snapshots and purge their logs; a learner that joins late, or comes
//! back after missing purged entries, is brought up to date by installing a snapshot.
// Helpers below panic on failure like the tests that call them.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use raft_controller::{CreateTopicSpec, Quorum};
use support::{content, eventually, Cluster};

fn topic(name: &str) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: 1,
        replication_factor: 1,
        assignments: Default::default(),
        configs: Default::default(),
    }
}

async fn create_many(q: &Quorum, prefix: &str, n: usize) {
    for i in 0..n {
        let r = q
            .create_topics(vec![topic(&format!("{prefix}-{i}"))], false)
            .await
            .unwrap();
        r[0].as_ref().unwrap();
    }
}

fn purged_index(q: &Quorum) -> u64 {
    q.raft_metrics().borrow().purged.map_or(0, |id| id.index)
}

fn snapshot_index(q: &Quorum) -> u64 {
    q.raft_metrics().borrow().snapshot.map_or(0, |id| id.index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_learner_installs_a_snapshot() {
    let mut cluster = Cluster::start(3, |c| {
        c.broker_session_timeout_ms = 60_000;
        c.snapshot_after_logs = 10;
    })
    .await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    cluster.start_broker(leader, None);
    let q = cluster.quorum(leader).clone();
    eventually("broker unfenced", Duration::from_secs(10), || {
        q.image().live_brokers().count() == 1
    })
    .await;
    create_many(&q, "early", 30).await;
    eventually("leader purged its log", Duration::from_secs(10), || {
        purged_index(&q) > 0
    })
    .await;

    // A learner joining now cannot get the purged entries: it needs the snapshot.
    cluster.add_node(5).await;
    cluster.start_node(5).await;
    let learner = cluster.quorum(5).clone();
    eventually("late learner catches up", Duration::from_secs(20), || {
        content(&learner.image()).topics == content(&q.image()).topics
    })
    .await;
    assert!(
        snapshot_index(&learner) > 0,
        "the learner should have installed a snapshot"
    );
    assert!(learner.image().topic("early-0").is_some());

    // A learner that is away while the leader purges again also catches up by snapshot.
    let applied_before_stop = learner.image().offset;
    cluster.stop_node(5).await;
    create_many(&q, "while-away", 30).await;
    eventually(
        "leader purged past the learner",
        Duration::from_secs(10),
        || purged_index(&q) > applied_before_stop,
    )
    .await;
    cluster.start_node(5).await;
    let learner = cluster.quorum(5).clone();
    eventually(
        "returning learner catches up",
        Duration::from_secs(20),
        || content(&learner.image()).topics == content(&q.image()).topics,
    )
    .await;
    assert!(
        snapshot_index(&learner) > applied_before_stop,
        "the returning learner should have installed a newer snapshot"
    );
    assert_eq!(learner.image().topics.len(), 60);
    assert!(!learner.status().is_voter);
    cluster.shutdown().await;
}

//! Network partitions: a voter cut off from the others cannot commit and stops acting as
//! controller, the majority elects a new leader and keeps committing, and across the whole run
//! no two nodes ever lead in the same term.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use raft_controller::{CreateTopicSpec, Quorum};
use support::{content, eventually, Cluster};
use tokio::task::JoinHandle;

fn topic(name: &str) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: 1,
        replication_factor: 1,
        assignments: Default::default(),
        configs: Default::default(),
    }
}

/// Records, from every metrics change of every node, which node led in which term.
struct LeaderRecorder {
    seen: Arc<parking_lot::Mutex<BTreeMap<u64, BTreeSet<u64>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl LeaderRecorder {
    fn watch(quorums: &[Quorum]) -> Self {
        let seen: Arc<parking_lot::Mutex<BTreeMap<u64, BTreeSet<u64>>>> = Arc::default();
        let tasks = quorums
            .iter()
            .map(|q| {
                let mut metrics = q.raft_metrics();
                let seen = seen.clone();
                tokio::spawn(async move {
                    loop {
                        {
                            let m = metrics.borrow_and_update();
                            if m.state == ServerState::Leader {
                                seen.lock().entry(m.current_term).or_default().insert(m.id);
                            }
                        }
                        if metrics.changed().await.is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        LeaderRecorder { seen, tasks }
    }

    fn assert_one_leader_per_term(&self) {
        let seen = self.seen.lock();
        assert!(!seen.is_empty(), "no leader was ever observed");
        for (term, leaders) in seen.iter() {
            assert_eq!(leaders.len(), 1, "term {term} had leaders {leaders:?}");
        }
    }
}

impl Drop for LeaderRecorder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_cannot_commit_and_steps_down() {
    let mut cluster = Cluster::start(3, |_| {}).await;
    let recorder = LeaderRecorder::watch(
        &(0..3)
            .map(|id| cluster.quorum(id).clone())
            .collect::<Vec<_>>(),
    );
    let old = cluster.leader(Duration::from_secs(20)).await;
    for id in 0..3 {
        cluster.start_broker(id, None);
    }
    let q_old = cluster.quorum(old).clone();
    eventually("brokers unfenced", Duration::from_secs(10), || {
        q_old.image().live_brokers().count() == 3
    })
    .await;
    q_old
        .create_topics(vec![topic("before")], false)
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    let term_before = q_old.status().term;

    cluster.isolate(old);
    let lost = tokio::time::timeout(
        Duration::from_secs(5),
        q_old.create_topics(vec![topic("lost")], false),
    )
    .await;
    assert!(
        !matches!(lost, Ok(Ok(ref r)) if r[0].is_ok()),
        "an isolated leader must not commit: {lost:?}"
    );
    eventually(
        "isolated node stops acting as controller",
        Duration::from_secs(5),
        || !q_old.is_controller() && q_old.status().leader != Some(old),
    )
    .await;

    let majority: Vec<i32> = (0..3).filter(|id| *id != old).collect();
    let new = cluster
        .leader_among(&majority, Duration::from_secs(20))
        .await;
    assert_ne!(new, old);
    let q_new = cluster.quorum(new).clone();
    assert!(q_new.status().term > term_before);
    q_new
        .create_topics(vec![topic("after")], false)
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();

    cluster.heal(old);
    eventually(
        "old leader follows the new one",
        Duration::from_secs(20),
        || q_old.status().leader.is_some_and(|l| l != old) && !q_old.is_controller(),
    )
    .await;
    eventually("images converge", Duration::from_secs(20), || {
        let images: Vec<_> = (0..3)
            .map(|id| content(&cluster.quorum(id).image()))
            .collect();
        images.iter().all(|i| i == &images[0]) && images[0].topic("after").is_some()
    })
    .await;
    for id in 0..3 {
        let image = cluster.quorum(id).image();
        assert!(image.topic("before").is_some());
        assert!(
            image.topic("lost").is_none(),
            "uncommitted write surfaced on node {id}"
        );
    }
    recorder.assert_one_leader_per_term();
    drop(recorder);
    for id in 0..3 {
        cluster.stop_node(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_follower_cannot_commit_and_majority_continues() {
    let mut cluster = Cluster::start(3, |_| {}).await;
    let recorder = LeaderRecorder::watch(
        &(0..3)
            .map(|id| cluster.quorum(id).clone())
            .collect::<Vec<_>>(),
    );
    let leader = cluster.leader(Duration::from_secs(20)).await;
    for id in 0..3 {
        cluster.start_broker(id, None);
    }
    let q_l = cluster.quorum(leader).clone();
    eventually("brokers unfenced", Duration::from_secs(10), || {
        q_l.image().live_brokers().count() == 3
    })
    .await;
    let follower = (0..3).find(|id| *id != leader).unwrap();
    let epoch = q_l.image().broker(follower).unwrap().epoch;
    let q_f = cluster.quorum(follower).clone();

    cluster.isolate(follower);
    // Writes sent to the isolated follower cannot reach a quorum.
    let result = tokio::time::timeout(
        Duration::from_secs(4),
        q_f.allocate_producer_ids(follower, epoch),
    )
    .await;
    assert!(
        !matches!(result, Ok(Ok(_))),
        "isolated follower got an answer: {result:?}"
    );
    // Its elections fail; the majority keeps its leader and commits.
    let majority: Vec<i32> = (0..3).filter(|id| *id != follower).collect();
    let still = cluster
        .leader_among(&majority, Duration::from_secs(20))
        .await;
    let q = cluster.quorum(still).clone();
    q.create_topics(vec![topic("during")], false).await.unwrap()[0]
        .as_ref()
        .unwrap();
    assert!(q_f.image().topic("during").is_none());
    assert!(!q_f.is_controller());

    cluster.heal(follower);
    eventually("follower catches up", Duration::from_secs(20), || {
        q_f.image().topic("during").is_some()
    })
    .await;
    let leader_after = cluster.leader(Duration::from_secs(20)).await;
    assert!(cluster.quorum(leader_after).is_controller());
    recorder.assert_one_leader_per_term();
    drop(recorder);
    cluster.shutdown().await;
}

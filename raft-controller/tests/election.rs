//! Leader election and membership: three voters agree on one controller, a single node is a
//! one-voter quorum, and a non-voter joins as a learner that receives the log and can send
//! requests (forwarded to the leader).

mod support;

use std::time::Duration;

use raft_controller::{CreateTopicSpec, NO_LEADER};
use support::{content, eventually, Cluster};

fn topic(name: &str, partitions: i32, rf: i16) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        assignments: Default::default(),
        configs: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_one_controller() {
    let cluster = Cluster::start(3, |_| {}).await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let controllers: Vec<i32> = (0..3)
        .filter(|id| cluster.quorum(*id).is_controller())
        .collect();
    assert_eq!(controllers, vec![leader]);
    for id in 0..3 {
        let status = cluster.quorum(id).status();
        assert!(status.is_voter, "node {id} should vote");
        assert_eq!(status.leader, Some(leader));
    }
    let q = cluster.quorum(leader);
    eventually("cluster id on every node", Duration::from_secs(10), || {
        let id = q.image().cluster_id.clone();
        id.is_some() && (0..3).all(|n| cluster.quorum(n).image().cluster_id == id)
    })
    .await;
    let cluster_id = q.image().cluster_id.clone().unwrap();
    assert_eq!(cluster_id.len(), 22);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_is_a_one_voter_quorum() {
    let mut cluster = Cluster::start(1, |_| {}).await;
    assert_eq!(cluster.leader(Duration::from_secs(10)).await, 0);
    let broker = cluster.start_broker(0, None);
    let mut state = broker.state();
    tokio::time::timeout(
        Duration::from_secs(10),
        state.wait_for(|s| s.registered && !s.fenced),
    )
    .await
    .expect("broker unfenced in time")
    .unwrap();
    let q = cluster.quorum(0);
    let created = q
        .create_topics(vec![topic("solo", 3, 1)], false)
        .await
        .unwrap();
    assert_eq!(created[0].as_ref().unwrap().num_partitions, 3);
    let image = q.image();
    let t = image.topic("solo").unwrap();
    assert!(t
        .partitions
        .iter()
        .all(|p| p.leader == 0 && p.isr == vec![0]));
    let status = q.status();
    assert!(status.is_voter);
    assert!(status.applied_index >= image.offset);
    assert!(status.commit_index >= image.offset);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_joins_receives_the_log_and_forwards_requests() {
    let mut cluster = Cluster::start(3, |_| {}).await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    for id in 0..3 {
        cluster.start_broker(id, None);
    }
    cluster.add_node(7).await;
    cluster.start_node(7).await;
    let learner = cluster.quorum(7).clone();
    eventually("learner knows the leader", Duration::from_secs(20), || {
        learner.status().leader == Some(leader)
    })
    .await;
    assert!(!learner.status().is_voter);
    assert!(!learner.is_controller());
    eventually("three live brokers", Duration::from_secs(10), || {
        cluster.quorum(leader).image().live_brokers().count() == 3
    })
    .await;
    // A request sent on the learner is forwarded to the controller.
    let created = learner
        .create_topics(vec![topic("via-learner", 2, 3)], false)
        .await
        .unwrap();
    let id = created[0].as_ref().unwrap().id;
    eventually("learner applied the topic", Duration::from_secs(10), || {
        learner.image().topic_by_id(&id).is_some()
    })
    .await;
    let t = learner.image().topic("via-learner").unwrap().clone();
    assert!(t
        .partitions
        .iter()
        .all(|p| p.replicas.len() == 3 && p.leader != NO_LEADER));
    eventually(
        "learner image equals the leader's",
        Duration::from_secs(10),
        || content(&learner.image()).topics == content(&cluster.quorum(leader).image()).topics,
    )
    .await;
    cluster.shutdown().await;
}

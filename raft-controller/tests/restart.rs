//! Restarts from sled: after all three voters stop, they come back from their data directories
//! (snapshot plus the committed log after it) with the same image, and keep working.

mod support;

use std::time::Duration;

use raft_controller::{AlterPartition, ConfigOp, CreateTopicSpec};
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
async fn restart_of_all_voters_recovers_the_same_image() {
    let mut cluster = Cluster::start(3, |c| {
        c.broker_session_timeout_ms = 60_000;
        c.snapshot_after_logs = 12;
    })
    .await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    for id in 0..3 {
        cluster.start_broker(id, Some(["a", "b", "c"][id as usize]));
    }
    let q = cluster.quorum(leader).clone();
    eventually("brokers unfenced", Duration::from_secs(10), || {
        q.image().live_brokers().count() == 3
    })
    .await;
    for i in 0..10 {
        let r = q
            .create_topics(vec![topic(&format!("t{i}"), 3, 3)], false)
            .await
            .unwrap();
        r[0].as_ref().unwrap();
    }
    q.alter_topic_configs(
        "t1".into(),
        vec![ConfigOp::Set("retention.ms".into(), "1000".into())],
        false,
    )
    .await
    .unwrap()
    .unwrap();
    q.delete_topics(vec!["t2".into()]).await.unwrap()[0]
        .as_ref()
        .unwrap();
    q.create_partitions("t3".into(), 5, None, false)
        .await
        .unwrap()
        .unwrap();
    let image = q.image();
    let t0 = image.topic("t0").unwrap();
    let p0 = &t0.partitions[0];
    let leader_broker = p0.leader;
    let shrunk: Vec<i32> = vec![leader_broker];
    q.alter_partition(AlterPartition {
        broker_id: leader_broker,
        broker_epoch: image.broker(leader_broker).unwrap().epoch,
        topic_id: t0.id,
        partition: 0,
        leader_epoch: p0.leader_epoch,
        partition_epoch: p0.partition_epoch,
        new_isr: shrunk.clone(),
    })
    .await
    .unwrap()
    .unwrap();
    let first_block = q
        .allocate_producer_ids(0, image.broker(0).unwrap().epoch)
        .await
        .unwrap()
        .unwrap();

    eventually("cluster defaults written", Duration::from_secs(10), || {
        let image = q.image();
        image.cluster_id.is_some() && !image.broker_configs.is_empty()
    })
    .await;
    let before = q.image();
    eventually(
        "every voter applied everything",
        Duration::from_secs(10),
        || (0..3).all(|n| cluster.quorum(n).image().offset >= before.offset),
    )
    .await;
    let metrics = q.raft_metrics().borrow().clone();
    assert!(
        metrics.snapshot.is_some(),
        "a snapshot should have been built"
    );
    assert!(
        metrics.purged.is_some(),
        "the log should have been purged behind the snapshot"
    );

    for id in 0..3 {
        cluster.stop_node(id).await;
    }
    for id in 0..3 {
        cluster.start_node(id).await;
    }
    let leader = cluster.leader(Duration::from_secs(30)).await;
    for id in 0..3 {
        let q = cluster.quorum(id).clone();
        eventually(
            "restarted voter replays to the old offset",
            Duration::from_secs(20),
            || q.image().offset >= before.offset,
        )
        .await;
        assert_eq!(
            content(&q.image()),
            content(&before),
            "node {id} recovered a different image"
        );
    }
    let q = cluster.quorum(leader).clone();
    assert_eq!(q.image().topic("t0").unwrap().partitions[0].isr, shrunk);
    assert!(q.image().topic("t2").is_none());
    assert_eq!(q.image().topic("t3").unwrap().partitions.len(), 5);
    // Allocation continues after the blocks handed out before the restart.
    let next = q
        .allocate_producer_ids(0, before.broker(0).unwrap().epoch)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.0, first_block.0 + i64::from(first_block.1));
    cluster.shutdown().await;
}

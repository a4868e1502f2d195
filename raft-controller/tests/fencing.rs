//! Broker sessions: a broker whose heartbeats stop is fenced and its leaderships move within the
//! session timeout; it is unfenced again once it comes back and catches up; a broker in
//! controlled shutdown has its leaderships moved before it is told to shut down.
// Helpers below panic on failure like the tests that call them.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use raft_controller::{AlterPartition, CreateTopicSpec, ElectionType, MetadataImage, NO_LEADER};
use support::{eventually, Cluster};

fn topic(name: &str, partitions: i32, rf: i16) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        assignments: Default::default(),
        configs: Default::default(),
    }
}

const RACKS: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

async fn cluster_with_brokers() -> Cluster {
    let mut cluster = Cluster::start(3, |_| {}).await;
    cluster.leader(Duration::from_secs(20)).await;
    for id in 0..3 {
        cluster.start_broker(id, Some(RACKS[id as usize]));
    }
    let q = cluster.quorum(0).clone();
    eventually("brokers unfenced", Duration::from_secs(10), || {
        q.image().live_brokers().count() == 3
    })
    .await;
    cluster
}

fn leaders(image: &MetadataImage, topic: &str) -> BTreeMap<i32, (i32, i32)> {
    image
        .topic(topic)
        .unwrap()
        .partitions
        .iter()
        .map(|p| (p.partition, (p.leader, p.leader_epoch)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_broker_is_fenced_and_its_leaderships_move() {
    let mut cluster = cluster_with_brokers().await;
    let controller = cluster.leader(Duration::from_secs(20)).await;
    let q = cluster.quorum(controller).clone();
    q.create_topics(vec![topic("orders", 6, 3)], false)
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    let victim = (0..3).find(|id| *id != controller).unwrap();
    let before = leaders(&q.image(), "orders");
    assert_eq!(
        before.values().filter(|(l, _)| *l == victim).count(),
        2,
        "leaders are balanced: {before:?}"
    );

    let stopped = Instant::now();
    cluster.stop_node(victim).await;
    let session = Duration::from_millis(q.config().broker_session_timeout_ms);
    eventually(
        "victim fenced and its leaderships moved",
        session * 4,
        || {
            let image = q.image();
            image.broker(victim).unwrap().fenced
                && image
                    .topic("orders")
                    .unwrap()
                    .partitions
                    .iter()
                    .all(|p| p.leader != victim && !p.isr.contains(&victim))
        },
    )
    .await;
    let elapsed = stopped.elapsed();
    println!("leaderships of broker {victim} moved {elapsed:?} after it stopped (session timeout {session:?})");
    let after = leaders(&q.image(), "orders");
    for (partition, (leader, epoch)) in &before {
        let (new_leader, new_epoch) = after[partition];
        assert_ne!(new_leader, NO_LEADER);
        if *leader == victim {
            assert!(
                new_epoch > *epoch,
                "leader epoch of partition {partition} must be bumped"
            );
        } else {
            assert_eq!(
                (new_leader, new_epoch),
                (*leader, *epoch),
                "partition {partition} should not move"
            );
        }
    }

    // The broker comes back with a new incarnation, catches up and is unfenced.
    cluster.start_node(victim).await;
    let lifecycle = cluster.start_broker(victim, Some(RACKS[victim as usize]));
    let mut state = lifecycle.state();
    tokio::time::timeout(
        Duration::from_secs(10),
        state.wait_for(|s| s.registered && !s.fenced),
    )
    .await
    .expect("returning broker unfenced")
    .unwrap();
    eventually(
        "controller sees it unfenced",
        Duration::from_secs(5),
        || q.image().broker(victim).is_some_and(|b| !b.fenced),
    )
    .await;

    // Its partition leaders re-admit it to the ISR (as their replicas would once caught up),
    // then preferred leader election gives it back the partitions it prefers.
    let image = q.image();
    let t = image.topic("orders").unwrap().clone();
    for p in &t.partitions {
        let mut isr = p.isr.clone();
        isr.push(victim);
        q.alter_partition(AlterPartition {
            broker_id: p.leader,
            broker_epoch: image.broker(p.leader).unwrap().epoch,
            topic_id: t.id,
            partition: p.partition,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: isr,
        })
        .await
        .unwrap()
        .unwrap();
    }
    let results = q
        .elect_leaders(ElectionType::Preferred, None)
        .await
        .unwrap();
    let moved: Vec<i32> = results
        .iter()
        .filter(|r| r.result == Ok(victim))
        .map(|r| r.partition)
        .collect();
    assert_eq!(moved.len(), 2, "{results:?}");
    let final_leaders = leaders(&q.image(), "orders");
    for p in moved {
        assert_eq!(final_leaders[&p].0, victim);
        assert_eq!(before[&p].0, victim, "only its preferred partitions return");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_failover_then_fencing_of_the_old_controllers_broker() {
    let mut cluster = cluster_with_brokers().await;
    let old = cluster.leader(Duration::from_secs(20)).await;
    let q_old = cluster.quorum(old).clone();
    q_old
        .create_topics(vec![topic("events", 3, 3)], false)
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    cluster.stop_node(old).await;
    let survivors: Vec<i32> = (0..3).filter(|id| *id != old).collect();
    let new = cluster
        .leader_among(&survivors, Duration::from_secs(20))
        .await;
    let q = cluster.quorum(new).clone();
    let session = Duration::from_millis(q.config().broker_session_timeout_ms);
    eventually("old controller's broker fenced", session * 5, || {
        let image = q.image();
        image.broker(old).unwrap().fenced && image.partitions_led_by(old).next().is_none()
    })
    .await;
    let image = q.image();
    for id in &survivors {
        assert!(
            !image.broker(*id).unwrap().fenced,
            "live broker {id} must stay unfenced"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlled_shutdown_moves_leaderships_first() {
    let cluster = cluster_with_brokers().await;
    let controller = cluster.leader(Duration::from_secs(20)).await;
    let q = cluster.quorum(controller).clone();
    q.create_topics(vec![topic("jobs", 6, 3), topic("single", 3, 1)], false)
        .await
        .unwrap();
    let leaving = (0..3).find(|id| *id != controller).unwrap();
    let before = q.image();
    let lifecycle = cluster.nodes[&leaving].lifecycle.clone().unwrap();
    lifecycle
        .controlled_shutdown(Duration::from_secs(15))
        .await
        .unwrap();

    let image = q.image();
    let reg = image.broker(leaving).unwrap();
    assert!(
        reg.fenced,
        "a broker that finished its controlled shutdown is fenced"
    );
    for p in &image.topic("jobs").unwrap().partitions {
        assert_ne!(p.leader, leaving);
        assert_ne!(p.leader, NO_LEADER);
        assert!(!p.isr.contains(&leaving));
        let old = &before.topic("jobs").unwrap().partitions[p.partition as usize];
        if old.leader == leaving {
            assert!(p.leader_epoch > old.leader_epoch);
        }
    }
    // Partitions it alone replicated cannot move; they lose their leader at fencing and keep
    // it in the ISR so it can come back.
    for p in &image.topic("single").unwrap().partitions {
        if p.replicas == vec![leaving] {
            assert_eq!(p.leader, NO_LEADER);
            assert_eq!(p.isr, vec![leaving]);
        }
    }
    cluster.shutdown().await;
}

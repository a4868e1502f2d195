//! Durability: a write committed on a majority survives the loss of any one voter, the two
//! survivors keep committing, and the lost voter catches up when it returns (from its sled
//! directory).

mod support;

use std::time::Duration;

use raft_controller::CreateTopicSpec;
use support::{content, eventually, Cluster};

fn topic(name: &str) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: 2,
        replication_factor: 1,
        assignments: Default::default(),
        configs: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_write_survives_the_loss_of_any_voter() {
    let mut cluster = Cluster::start(3, |c| c.broker_session_timeout_ms = 60_000).await;
    let leader = cluster.leader(Duration::from_secs(20)).await;
    for id in 0..3 {
        cluster.start_broker(id, None);
    }
    let q = cluster.quorum(leader).clone();
    eventually("brokers unfenced", Duration::from_secs(10), || {
        q.image().live_brokers().count() == 3
    })
    .await;

    for victim in 0..3 {
        let writer = cluster.leader(Duration::from_secs(20)).await;
        let name = format!("before-losing-{victim}");
        let created = cluster
            .quorum(writer)
            .create_topics(vec![topic(&name)], false)
            .await
            .unwrap();
        let id = created[0].as_ref().unwrap().id;
        // Committed means on a majority; it may not have reached every node yet.
        cluster.stop_node(victim).await;
        let survivors: Vec<i32> = (0..3).filter(|n| *n != victim).collect();
        let leader = cluster
            .leader_among(&survivors, Duration::from_secs(20))
            .await;
        for s in &survivors {
            let q = cluster.quorum(*s).clone();
            eventually(
                "survivor has the committed write",
                Duration::from_secs(10),
                || q.image().topic_by_id(&id).is_some(),
            )
            .await;
        }
        let after = format!("after-losing-{victim}");
        let created = cluster
            .quorum(leader)
            .create_topics(vec![topic(&after)], false)
            .await
            .unwrap();
        created[0].as_ref().unwrap();

        cluster.start_node(victim).await;
        let back = cluster.quorum(victim).clone();
        eventually(
            "returning voter catches up",
            Duration::from_secs(20),
            || {
                let image = back.image();
                image.topic(&name).is_some() && image.topic(&after).is_some()
            },
        )
        .await;
    }
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let reference = cluster.quorum(leader).clone();
    eventually("all images equal", Duration::from_secs(20), || {
        let want = content(&reference.image());
        (0..3).all(|n| content(&cluster.quorum(n).image()) == want)
    })
    .await;
    assert_eq!(reference.image().topics.len(), 6);
    cluster.shutdown().await;
}

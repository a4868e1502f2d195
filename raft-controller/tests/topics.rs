//! Topic administration through the controller on a one-voter quorum: validation with Kafka's
//! errors, rack-aware placement with balanced leaders, deletion, partition increase, config
//! changes, leader elections (preferred and unclean), producer id blocks and registrations.
// Helpers below panic on failure like the tests that call them.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use raft_controller::{
    AlterPartition, BrokerHeartbeat, ConfigOp, ControllerError, CreateTopicSpec, ElectionType,
    Quorum, NO_LEADER, PRODUCER_ID_BLOCK_SIZE,
};
use support::{register_unfenced, registration, Cluster};

const RACKS: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

fn spec(name: &str, partitions: i32, rf: i16) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        assignments: Default::default(),
        configs: Default::default(),
    }
}

/// One voter, six brokers (0..6) over three racks.
async fn start() -> (Cluster, Quorum, BTreeMap<i32, i64>) {
    let cluster = Cluster::start(1, |c| {
        c.broker_session_timeout_ms = 60_000;
        c.default_num_partitions = 4;
        c.default_replication_factor = 3;
    })
    .await;
    cluster.leader(Duration::from_secs(10)).await;
    let q = cluster.quorum(0).clone();
    let mut epochs = BTreeMap::new();
    for id in 0..6 {
        epochs.insert(
            id,
            register_unfenced(&q, id, Some(RACKS[id as usize % 3])).await,
        );
    }
    (cluster, q, epochs)
}

async fn create_one(
    q: &Quorum,
    s: CreateTopicSpec,
) -> Result<raft_controller::CreatedTopic, ControllerError> {
    q.create_topics(vec![s], false).await.unwrap().remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_validates_like_kafka() {
    let (cluster, q, _) = start().await;
    let code = |r: Result<raft_controller::CreatedTopic, ControllerError>| {
        r.unwrap_err().kafka_error_code().code()
    };
    assert_eq!(code(create_one(&q, spec("bad name", 1, 1)).await), 17);
    assert_eq!(code(create_one(&q, spec("..", 1, 1)).await), 17);
    assert_eq!(code(create_one(&q, spec("t", 1, 7)).await), 38);
    assert_eq!(code(create_one(&q, spec("t", 0, 1)).await), 37);
    assert_eq!(code(create_one(&q, spec("t", 1, 0)).await), 38);
    let mut bad_config = spec("t", 1, 1);
    bad_config
        .configs
        .insert("retention.ms".into(), "forever".into());
    assert_eq!(code(create_one(&q, bad_config).await), 40);
    let mut unknown_config = spec("t", 1, 1);
    unknown_config
        .configs
        .insert("no.such.thing".into(), "1".into());
    assert_eq!(code(create_one(&q, unknown_config).await), 40);
    let mut manual = spec("t", 1, -1);
    manual.assignments.insert(0, vec![0, 9]);
    assert_eq!(
        code(create_one(&q, manual).await),
        42,
        "partition count and assignment both set"
    );
    let mut manual = spec("t", -1, -1);
    manual.assignments.insert(0, vec![0, 9]);
    assert_eq!(code(create_one(&q, manual).await), 39);
    let mut gap = spec("t", -1, -1);
    gap.assignments.insert(1, vec![0]);
    assert_eq!(code(create_one(&q, gap).await), 39);

    // validate_only creates nothing.
    let checked = q
        .create_topics(vec![spec("dry", 3, 2)], true)
        .await
        .unwrap();
    assert_eq!(checked[0].as_ref().unwrap().num_partitions, 3);
    assert!(q.image().topic("dry").is_none());

    // Defaults apply for -1; a second create of the same name fails; duplicates in one request
    // fail both.
    let created = create_one(&q, spec("defaults", -1, -1)).await.unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (4, 3));
    assert_eq!(code(create_one(&q, spec("defaults", 1, 1)).await), 36);
    create_one(&q, spec("a.b", 1, 1)).await.unwrap();
    let both = q
        .create_topics(vec![spec("twice", 1, 1), spec("twice", 1, 1)], false)
        .await
        .unwrap();
    assert!(both
        .iter()
        .all(|r| r.as_ref().unwrap_err().kafka_error_code().code() == 42));
    assert_eq!(
        code(create_one(&q, spec("a_b", 1, 1)).await),
        17,
        "collides with a.b"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_is_rack_aware_and_leaders_are_balanced() {
    let (cluster, q, _) = start().await;
    create_one(&q, spec("spread", 12, 3)).await.unwrap();
    let image = q.image();
    let rack = |b: i32| image.broker(b).unwrap().rack.clone().unwrap();
    let t = image.topic("spread").unwrap();
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    for p in &t.partitions {
        let racks: BTreeSet<String> = p.replicas.iter().map(|r| rack(*r)).collect();
        assert_eq!(
            racks.len(),
            3,
            "partition {} replicas {:?} share a rack",
            p.partition,
            p.replicas
        );
        assert_eq!(p.isr, p.replicas);
        assert_eq!(p.leader, p.replicas[0]);
        *led.entry(p.leader).or_default() += 1;
    }
    assert_eq!(led.len(), 6);
    assert!(led.values().all(|n| *n == 2), "leaders per broker: {led:?}");

    // Added partitions follow the same rules.
    q.create_partitions("spread".into(), 15, None, false)
        .await
        .unwrap()
        .unwrap();
    let image = q.image();
    let t = image.topic("spread").unwrap();
    assert_eq!(t.partitions.len(), 15);
    for p in &t.partitions[12..] {
        let racks: BTreeSet<String> = p.replicas.iter().map(|r| rack(*r)).collect();
        assert_eq!(racks.len(), 3);
        assert_eq!(
            p.partition as usize,
            t.partitions.iter().position(|x| x == p).unwrap()
        );
    }
    let err = |r: Result<(), ControllerError>| r.unwrap_err().kafka_error_code().code();
    assert_eq!(
        err(q
            .create_partitions("spread".into(), 15, None, false)
            .await
            .unwrap()),
        37
    );
    assert_eq!(
        err(q
            .create_partitions("spread".into(), 3, None, false)
            .await
            .unwrap()),
        37
    );
    assert_eq!(
        err(q
            .create_partitions("spread".into(), 17, Some(vec![vec![0, 1, 2]]), false)
            .await
            .unwrap()),
        39
    );
    assert_eq!(
        err(q
            .create_partitions("spread".into(), 16, Some(vec![vec![0, 1]]), false)
            .await
            .unwrap()),
        39
    );
    assert_eq!(
        err(q
            .create_partitions("nope".into(), 16, None, false)
            .await
            .unwrap()),
        3
    );
    q.create_partitions("spread".into(), 16, Some(vec![vec![5, 4, 3]]), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        q.image().partition("spread", 15).unwrap().replicas,
        vec![5, 4, 3]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_configs_producer_ids_and_registrations() {
    let (cluster, q, epochs) = start().await;
    let first = create_one(&q, spec("doomed", 2, 2)).await.unwrap();
    let deleted = q
        .delete_topics(vec!["doomed".into(), "ghost".into()])
        .await
        .unwrap();
    assert_eq!(deleted[0], Ok(first.id));
    assert_eq!(
        deleted[1].as_ref().unwrap_err().kafka_error_code().code(),
        3
    );
    assert!(q.image().topic("doomed").is_none() && q.image().topic_by_id(&first.id).is_none());
    let again = create_one(&q, spec("doomed", 1, 1)).await.unwrap();
    assert_ne!(again.id, first.id);

    let set = vec![
        ConfigOp::Set("retention.ms".into(), "60000".into()),
        ConfigOp::Set("cleanup.policy".into(), "compact".into()),
    ];
    q.alter_topic_configs("doomed".into(), set, false)
        .await
        .unwrap()
        .unwrap();
    q.alter_topic_configs(
        "doomed".into(),
        vec![ConfigOp::Delete("cleanup.policy".into())],
        false,
    )
    .await
    .unwrap()
    .unwrap();
    let configs = q.image().topic("doomed").unwrap().configs.clone();
    assert_eq!(
        configs,
        BTreeMap::from([("retention.ms".to_string(), "60000".to_string())])
    );
    let bad = q.alter_topic_configs(
        "doomed".into(),
        vec![ConfigOp::Set("segment.ms".into(), "0".into())],
        false,
    );
    assert_eq!(
        bad.await.unwrap().unwrap_err().kafka_error_code().code(),
        40
    );
    let dry = q.alter_topic_configs(
        "doomed".into(),
        vec![ConfigOp::Set("segment.ms".into(), "5".into())],
        true,
    );
    dry.await.unwrap().unwrap();
    assert!(!q
        .image()
        .topic("doomed")
        .unwrap()
        .configs
        .contains_key("segment.ms"));
    let missing = q
        .alter_topic_configs("ghost".into(), vec![], false)
        .await
        .unwrap();
    assert_eq!(missing.unwrap_err().kafka_error_code().code(), 3);

    let (a, n) = q
        .allocate_producer_ids(1, epochs[&1])
        .await
        .unwrap()
        .unwrap();
    let (b, _) = q
        .allocate_producer_ids(2, epochs[&2])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, PRODUCER_ID_BLOCK_SIZE);
    assert_eq!(b, a + i64::from(n));
    assert_eq!(
        q.allocate_producer_ids(1, epochs[&1] + 1).await.unwrap(),
        Err(ControllerError::StaleBrokerEpoch)
    );

    // A second live incarnation of broker 3 is refused; a retry of the current one is not.
    let dup = q
        .register_broker(registration(3, Some("zone-a")))
        .await
        .unwrap();
    assert_eq!(dup, Err(ControllerError::DuplicateBrokerRegistration(3)));
    assert_eq!(q.image().broker(3).unwrap().epoch, epochs[&3]);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_and_unclean_leader_election() {
    let (cluster, q, epochs) = start().await;
    let mut manual = spec("pair", -1, -1);
    manual.assignments.insert(0, vec![4, 5]);
    let t = create_one(&q, manual).await.unwrap();
    assert_eq!(
        q.elect_leaders(ElectionType::Preferred, Some(vec![("pair".into(), 0)]))
            .await
            .unwrap()[0]
            .result,
        Err(ControllerError::ElectionNotNeeded)
    );
    assert!(matches!(
        q.elect_leaders(ElectionType::Preferred, Some(vec![("pair".into(), 9)]))
            .await
            .unwrap()[0]
            .result,
        Err(ControllerError::UnknownTopicOrPartition(_))
    ));
    // The leader drops broker 5 from the ISR, then broker 4 is fenced: the partition has no
    // in-sync replica left to lead, and broker 4 stays in the ISR.
    let p = q.image().partition("pair", 0).unwrap().clone();
    q.alter_partition(AlterPartition {
        broker_id: 4,
        broker_epoch: epochs[&4],
        topic_id: t.id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: vec![4],
    })
    .await
    .unwrap()
    .unwrap();
    let fence = BrokerHeartbeat {
        broker_id: 4,
        broker_epoch: epochs[&4],
        current_metadata_offset: q.image().offset,
        want_fence: true,
        want_shutdown: false,
    };
    q.broker_heartbeat(fence.clone()).await.unwrap().unwrap();
    let p = q.image().partition("pair", 0).unwrap().clone();
    assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![4]));
    assert_eq!(
        q.elect_leaders(ElectionType::Preferred, Some(vec![("pair".into(), 0)]))
            .await
            .unwrap()[0]
            .result,
        Err(ControllerError::PreferredLeaderNotAvailable)
    );
    // Broker 4 comes back: it is unfenced and leads again (it is in the ISR).
    let back = BrokerHeartbeat {
        want_fence: false,
        current_metadata_offset: q.image().offset,
        ..fence.clone()
    };
    assert!(!q.broker_heartbeat(back).await.unwrap().unwrap().is_fenced);
    let p2 = q.image().partition("pair", 0).unwrap().clone();
    assert_eq!(p2.leader, 4);
    assert!(p2.leader_epoch > p.leader_epoch);

    // Fenced again; an unclean election picks the out-of-sync live replica.
    q.broker_heartbeat(BrokerHeartbeat {
        current_metadata_offset: q.image().offset,
        ..fence.clone()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(q.image().partition("pair", 0).unwrap().leader, NO_LEADER);
    let unclean = q
        .elect_leaders(ElectionType::Unclean, Some(vec![("pair".into(), 0)]))
        .await
        .unwrap();
    assert_eq!(unclean[0].result, Ok(5));
    let p3 = q.image().partition("pair", 0).unwrap().clone();
    assert_eq!((p3.leader, p3.isr.clone()), (5, vec![5]));
    assert_eq!(
        q.elect_leaders(ElectionType::Unclean, Some(vec![("pair".into(), 0)]))
            .await
            .unwrap()[0]
            .result,
        Err(ControllerError::ElectionNotNeeded)
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_config_enables_unclean_election_of_leaderless_partitions() {
    let (cluster, q, epochs) = start().await;
    let mut manual = spec("lossy", -1, -1);
    manual.assignments.insert(0, vec![1, 2]);
    let t = create_one(&q, manual).await.unwrap();
    let p = q.image().partition("lossy", 0).unwrap().clone();
    q.alter_partition(AlterPartition {
        broker_id: 1,
        broker_epoch: epochs[&1],
        topic_id: t.id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: vec![1],
    })
    .await
    .unwrap()
    .unwrap();
    q.broker_heartbeat(BrokerHeartbeat {
        broker_id: 1,
        broker_epoch: epochs[&1],
        current_metadata_offset: q.image().offset,
        want_fence: true,
        want_shutdown: false,
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(q.image().partition("lossy", 0).unwrap().leader, NO_LEADER);
    let enable = vec![ConfigOp::Set(
        "unclean.leader.election.enable".into(),
        "true".into(),
    )];
    q.alter_topic_configs("lossy".into(), enable, false)
        .await
        .unwrap()
        .unwrap();
    let p = q.image().partition("lossy", 0).unwrap().clone();
    assert_eq!((p.leader, p.isr), (2, vec![2]));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_preferred_leader_election_restores_leaders() {
    let cluster = Cluster::start(1, |c| {
        c.broker_session_timeout_ms = 60_000;
        c.leader_imbalance_check_interval_ms = Some(300);
    })
    .await;
    cluster.leader(Duration::from_secs(10)).await;
    let q = cluster.quorum(0).clone();
    let e0 = register_unfenced(&q, 0, None).await;
    register_unfenced(&q, 1, None).await;
    let mut manual = spec("rebalance", -1, -1);
    manual.assignments.insert(0, vec![0, 1]);
    create_one(&q, manual).await.unwrap();
    // Broker 0 is fenced and comes back: broker 1 keeps the leadership, 0 is out of the ISR.
    let hb = BrokerHeartbeat {
        broker_id: 0,
        broker_epoch: e0,
        current_metadata_offset: q.image().offset,
        want_fence: true,
        want_shutdown: false,
    };
    q.broker_heartbeat(hb.clone()).await.unwrap().unwrap();
    let back = BrokerHeartbeat {
        want_fence: false,
        current_metadata_offset: q.image().offset,
        ..hb
    };
    q.broker_heartbeat(back).await.unwrap().unwrap();
    let p = q.image().partition("rebalance", 0).unwrap().clone();
    assert_eq!((p.leader, p.isr.clone()), (1, vec![1]));
    // Once the leader re-admits it to the ISR, the controller moves leadership back by itself.
    let topic_id = q.image().topic("rebalance").unwrap().id;
    q.alter_partition(AlterPartition {
        broker_id: 1,
        broker_epoch: q.image().broker(1).unwrap().epoch,
        topic_id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: vec![1, 0],
    })
    .await
    .unwrap()
    .unwrap();
    support::eventually("preferred leader restored", Duration::from_secs(10), || {
        q.image().partition("rebalance", 0).unwrap().leader == 0
    })
    .await;
    cluster.shutdown().await;
}

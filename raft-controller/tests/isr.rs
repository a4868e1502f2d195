//! ISR changes (AlterPartition): accepted only from the current leader at the current leader
//! epoch and partition epoch, with a valid new ISR; stale or invalid proposals are rejected with
//! Kafka's error, and of two concurrent proposals from the same epochs exactly one wins.
// Helpers below panic on failure like the tests that call them.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use raft_controller::{
    AlterPartition, BrokerHeartbeat, ControllerError, CreateTopicSpec, PartitionState, Quorum,
};
use support::{register_unfenced, Cluster};
use uuid::Uuid;

struct Fixture {
    cluster: Cluster,
    q: Quorum,
    epochs: [i64; 3],
    topic_id: Uuid,
}

async fn fixture() -> Fixture {
    let cluster = Cluster::start(1, |c| c.broker_session_timeout_ms = 60_000).await;
    cluster.leader(Duration::from_secs(10)).await;
    let q = cluster.quorum(0).clone();
    let mut epochs = [0; 3];
    for (id, epoch) in (0..).zip(epochs.iter_mut()) {
        *epoch = register_unfenced(&q, id, None).await;
    }
    let spec = CreateTopicSpec {
        name: "payments".into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: [(0, vec![0, 1, 2])].into_iter().collect(),
        configs: Default::default(),
    };
    let topic_id = q.create_topics(vec![spec], false).await.unwrap()[0]
        .as_ref()
        .unwrap()
        .id;
    Fixture {
        cluster,
        q,
        epochs,
        topic_id,
    }
}

impl Fixture {
    fn partition(&self) -> PartitionState {
        self.q.image().topic("payments").unwrap().partitions[0].clone()
    }

    fn proposal(&self, broker: i32, p: &PartitionState, isr: &[i32]) -> AlterPartition {
        AlterPartition {
            broker_id: broker,
            broker_epoch: self.epochs[broker as usize],
            topic_id: self.topic_id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: isr.to_vec(),
        }
    }

    async fn alter(&self, req: AlterPartition) -> Result<PartitionState, ControllerError> {
        self.q.alter_partition(req).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_isr_proposals_are_rejected() {
    let f = fixture().await;
    let p0 = f.partition();
    assert_eq!(
        (
            p0.leader,
            p0.isr.clone(),
            p0.leader_epoch,
            p0.partition_epoch
        ),
        (0, vec![0, 1, 2], 0, 0)
    );

    // The leader shrinks the ISR: accepted, partition epoch bumped, leader epoch unchanged.
    let shrink = f.proposal(0, &p0, &[0, 1]);
    let p1 = f.alter(shrink.clone()).await.unwrap();
    assert_eq!(
        (p1.isr.clone(), p1.leader_epoch, p1.partition_epoch),
        (vec![0, 1], 0, 1)
    );
    assert_eq!(f.partition(), p1);

    // Replaying the same proposal is stale now.
    assert_eq!(
        f.alter(shrink).await,
        Err(ControllerError::InvalidUpdateVersion)
    );
    // A proposal from another leader epoch is fenced.
    let mut wrong_epoch = f.proposal(0, &p1, &[0]);
    wrong_epoch.leader_epoch += 1;
    assert_eq!(
        f.alter(wrong_epoch).await,
        Err(ControllerError::FencedLeaderEpoch)
    );
    // A follower cannot change the ISR.
    assert_eq!(
        f.alter(f.proposal(1, &p1, &[0, 1])).await,
        Err(ControllerError::NotLeaderOrFollower)
    );
    // An old registration of the leader is stale.
    let mut old_broker_epoch = f.proposal(0, &p1, &[0]);
    old_broker_epoch.broker_epoch -= 1;
    assert_eq!(
        f.alter(old_broker_epoch).await,
        Err(ControllerError::StaleBrokerEpoch)
    );
    // Invalid ISRs.
    assert!(matches!(
        f.alter(f.proposal(0, &p1, &[1])).await,
        Err(ControllerError::InvalidRequest(_))
    ));
    assert!(matches!(
        f.alter(f.proposal(0, &p1, &[0, 7])).await,
        Err(ControllerError::InvalidRequest(_))
    ));
    assert!(matches!(
        f.alter(f.proposal(0, &p1, &[0, 0])).await,
        Err(ControllerError::InvalidRequest(_))
    ));
    let mut unknown = f.proposal(0, &p1, &[0]);
    unknown.topic_id = Uuid::new_v4();
    assert!(matches!(
        f.alter(unknown).await,
        Err(ControllerError::UnknownTopicOrPartition(_))
    ));
    // None of the rejected proposals changed anything.
    assert_eq!(f.partition(), p1);

    // A fenced broker cannot be added back to the ISR.
    let fence = BrokerHeartbeat {
        broker_id: 2,
        broker_epoch: f.epochs[2],
        current_metadata_offset: f.q.image().offset,
        want_fence: true,
        want_shutdown: false,
    };
    assert!(
        f.q.broker_heartbeat(fence)
            .await
            .unwrap()
            .unwrap()
            .is_fenced
    );
    let p2 = f.partition();
    assert!(matches!(
        f.alter(f.proposal(0, &p2, &[0, 1, 2])).await,
        Err(ControllerError::IneligibleReplica(_))
    ));

    // Fencing the leader moves leadership and bumps the leader epoch: the old leader's next
    // proposal is rejected.
    let fence_leader = BrokerHeartbeat {
        broker_id: 0,
        broker_epoch: f.epochs[0],
        current_metadata_offset: f.q.image().offset,
        want_fence: true,
        want_shutdown: false,
    };
    f.q.broker_heartbeat(fence_leader).await.unwrap().unwrap();
    let p3 = f.partition();
    assert_eq!((p3.leader, p3.isr.clone()), (1, vec![1]));
    assert_eq!(p3.leader_epoch, p2.leader_epoch + 1);
    assert_eq!(
        f.alter(f.proposal(0, &p2, &[0, 1])).await,
        Err(ControllerError::FencedLeaderEpoch)
    );
    // The new leader's proposal at the new epochs goes through.
    assert!(f.alter(f.proposal(1, &p3, &[1])).await.is_ok());
    f.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_proposals_exactly_one_is_accepted() {
    let f = fixture().await;
    let p = f.partition();
    let a = f.alter(f.proposal(0, &p, &[0, 1]));
    let b = f.alter(f.proposal(0, &p, &[0, 2]));
    let (a, b) = tokio::join!(a, b);
    let accepted = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 1, "{a:?} / {b:?}");
    assert!([&a, &b]
        .iter()
        .any(|r| **r == Err(ControllerError::InvalidUpdateVersion)));
    let winner = a.or(b).unwrap();
    assert_eq!(f.partition(), winner);
    f.cluster.shutdown().await;
}

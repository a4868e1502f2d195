//! Consumer groups with librdkafka: members split the partitions, a member leaving triggers a
//! rebalance with nothing lost (at-least-once), and committed offsets survive a broker restart.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use support::{kafka, unique_topic, wait_until, Cluster, ClusterOptions};

const PARTITIONS: i32 = 6;

fn produce(bootstrap: &str, topic: &str, count: usize) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let producer = kafka::producer(bootstrap, &[("linger.ms", "5"), ("acks", "all")]);
        let mut futures = Vec::with_capacity(count);
        for i in 0..count {
            let key = format!("k{i}");
            let value = i.to_string();
            futures.push(
                producer
                    .send_result(FutureRecord::to(topic).key(&key).payload(&value))
                    .expect("enqueue"),
            );
        }
        for f in futures {
            f.await.expect("delivery").expect("delivered");
        }
    });
}

fn group_consumer(bootstrap: &str, group: &str, strategy: &str) -> BaseConsumer {
    kafka::config(
        bootstrap,
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
            ("partition.assignment.strategy", strategy),
            ("fetch.wait.max.ms", "100"),
        ],
    )
    .create()
    .expect("consumer")
}

/// Commits what the member has read; `false` when the group is mid-rebalance, which Kafka
/// answers with REBALANCE_IN_PROGRESS (between JoinGroup and SyncGroup) or ILLEGAL_GENERATION
/// (a member that has not rejoined yet), and the member retries after its next records.
fn commit(consumer: &BaseConsumer) -> bool {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => true,
        Err(KafkaError::ConsumerCommit(
            RDKafkaErrorCode::RebalanceInProgress | RDKafkaErrorCode::IllegalGeneration,
        )) => false,
        Err(e) => panic!("commit: {e}"),
    }
}

/// Three members split six partitions; one leaves halfway; the two left take over its
/// partitions from its last commit. Every record is consumed at least once, and duplicates are
/// bounded by what the leaver had read but not committed.
fn three_members_then_one_leaves(strategy: &str) {
    let cluster = Cluster::start(ClusterOptions::new(1));
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(&format!("group-{strategy}"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(kafka::create_topic(&bootstrap, &topic, PARTITIONS, 1, &[]));
    const COUNT: usize = 30_000;
    produce(&bootstrap, &topic, COUNT);

    let group = unique_topic("g");
    let seen: Arc<Mutex<Vec<(String, i32, i64)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop_all = Arc::new(AtomicBool::new(false));
    let leave_first = Arc::new(AtomicBool::new(false));
    let assignments: Arc<Mutex<BTreeMap<usize, BTreeSet<i32>>>> =
        Arc::new(Mutex::new(BTreeMap::new()));
    let mut handles = Vec::new();
    for member in 0..3usize {
        let (bootstrap, topic, group, strategy) = (
            bootstrap.clone(),
            topic.clone(),
            group.clone(),
            strategy.to_string(),
        );
        let (seen, stop_all, leave_first, assignments) = (
            seen.clone(),
            stop_all.clone(),
            leave_first.clone(),
            assignments.clone(),
        );
        handles.push(std::thread::spawn(move || {
            let consumer = group_consumer(&bootstrap, &group, &strategy);
            consumer.subscribe(&[&topic]).expect("subscribe");
            let mut since_commit = 0;
            loop {
                if stop_all.load(Ordering::SeqCst)
                    || (member == 0 && leave_first.load(Ordering::SeqCst))
                {
                    break;
                }
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    seen.lock()
                        .unwrap()
                        .push((format!("m{member}"), m.partition(), m.offset()));
                    since_commit += 1;
                    if since_commit >= 100 && commit(&consumer) {
                        since_commit = 0;
                    }
                } else if since_commit > 0 {
                    let _ = consumer.commit_consumer_state(CommitMode::Sync);
                    since_commit = 0;
                }
                let mine: BTreeSet<i32> = consumer
                    .assignment()
                    .map(|a| a.elements().iter().map(|e| e.partition()).collect())
                    .unwrap_or_default();
                assignments.lock().unwrap().insert(member, mine);
            }
            // Closing sends LeaveGroup.
            drop(consumer);
        }));
    }

    // All three members share the six partitions.
    assert!(
        wait_until(Duration::from_secs(60), || {
            let a = assignments.lock().unwrap();
            a.len() == 3
                && a.values().all(|s| !s.is_empty())
                && a.values().map(|s| s.len()).sum::<usize>() == PARTITIONS as usize
        }),
        "three members did not split the partitions: {:?}",
        assignments.lock().unwrap()
    );
    {
        let a = assignments.lock().unwrap();
        let all: BTreeSet<i32> = a.values().flatten().copied().collect();
        assert_eq!(
            all.len(),
            PARTITIONS as usize,
            "each partition assigned once: {a:?}"
        );
    }
    // Let them read some, then member 0 leaves.
    assert!(wait_until(Duration::from_secs(60), || seen
        .lock()
        .unwrap()
        .len()
        > COUNT / 3));
    leave_first.store(true, Ordering::SeqCst);
    let left_at = Instant::now();
    assert!(
        wait_until(Duration::from_secs(60), || {
            let a = assignments.lock().unwrap();
            a.get(&1).map_or(0, |s| s.len()) + a.get(&2).map_or(0, |s| s.len())
                == PARTITIONS as usize
        }),
        "the remaining members did not take over: {:?}",
        assignments.lock().unwrap()
    );
    eprintln!("rebalance after leave took {:?}", left_at.elapsed());

    // Everything gets consumed.
    let complete = wait_until(Duration::from_secs(120), || {
        let s = seen.lock().unwrap();
        s.iter()
            .map(|(_, p, o)| (*p, *o))
            .collect::<BTreeSet<_>>()
            .len()
            >= COUNT
    });
    stop_all.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().expect("member thread");
    }
    let s = seen.lock().unwrap();
    let distinct: BTreeSet<(i32, i64)> = s.iter().map(|(_, p, o)| (*p, *o)).collect();
    assert!(
        complete,
        "only {} of {COUNT} records consumed",
        distinct.len()
    );
    assert_eq!(distinct.len(), COUNT, "every record consumed");
    let duplicates = s.len() - distinct.len();
    // At-least-once: only records read but not yet committed by the leaver (fewer than one
    // commit interval per partition it held) may be read twice.
    assert!(
        duplicates <= 100 * PARTITIONS as usize,
        "{duplicates} duplicates is more than at-least-once allows"
    );
}

#[test]
fn eager_group_splits_and_rebalances() {
    three_members_then_one_leaves("range");
}

#[test]
fn cooperative_group_splits_and_rebalances() {
    three_members_then_one_leaves("cooperative-sticky");
}

#[test]
fn committed_offsets_survive_a_broker_restart() {
    let mut cluster = Cluster::start(ClusterOptions::new(1));
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("commit-restart");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(kafka::create_topic(&bootstrap, &topic, 1, 1, &[]));
    produce(&bootstrap, &topic, 100);
    let group = unique_topic("g-restart");
    {
        let consumer = group_consumer(&bootstrap, &group, "range");
        consumer.subscribe(&[&topic]).expect("subscribe");
        assert!(wait_until(Duration::from_secs(30), || matches!(
            consumer.poll(Duration::from_millis(100)),
            Some(Ok(_))
        )));
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(42))
            .unwrap();
        consumer.commit(&tpl, CommitMode::Sync).expect("commit 42");
    }
    assert!(
        cluster
            .terminate(0, Duration::from_secs(30))
            .is_some_and(|s| s.success()),
        "clean exit on SIGTERM"
    );
    cluster.restart(0);
    cluster.wait_ready(0, Duration::from_secs(60));

    let consumer = group_consumer(&bootstrap, &group, "range");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, 0);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("committed offsets");
    assert_eq!(
        committed.elements()[0].offset(),
        Offset::Offset(42),
        "commit survived the restart"
    );
    consumer.subscribe(&[&topic]).expect("subscribe");
    let first = loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            break m.offset();
        }
    };
    assert_eq!(first, 42, "a restarted consumer resumes from the commit");
}

//! Three brokers in racks a/b/c, topic RF=3 with min.insync.replicas=2, idempotent acks=all
//! producers: kill, pause, cut off and restart brokers while clients work, and prove nothing
//! acknowledged is lost. Figures (failover time, stalls, catch-up rate) are printed, not asserted.
//!
//! Tests here run one at a time: each owns a three-process cluster.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use support::workload::{verify, Acks, Workload};
use support::{kafka, unique_topic, wait_until, Cluster, ClusterOptions};

static SERIAL: Mutex<()> = Mutex::new(());

const PARTITIONS: i32 = 6;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn three_brokers() -> Cluster {
    Cluster::start(
        ClusterOptions::new(3)
            .property("min.insync.replicas", 2)
            .property("default.replication.factor", 3),
    )
}

fn create(cluster: &Cluster, topic: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(kafka::create_topic(
        &cluster.bootstrap(),
        topic,
        PARTITIONS,
        3,
        &[("min.insync.replicas", "2")],
    ));
}

/// The broker leading most partitions of `topic`.
fn busiest_leader(bootstrap: &str, topic: &str) -> usize {
    let leaders = kafka::leaders(bootstrap, topic);
    let mut counts = [0usize; 3];
    for l in leaders.values() {
        if (0..3).contains(l) {
            counts[*l as usize] += 1;
        }
    }
    (0..3).max_by_key(|i| counts[*i]).unwrap_or(0)
}

fn bootstrap_without(cluster: &Cluster, excluded: usize) -> String {
    (0..cluster.len())
        .filter(|i| *i != excluded)
        .map(|i| cluster.client_address(i).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A three-broker cluster with a fresh topic and a workload at `rate` records/s that has
/// already had `warm` records acknowledged.
fn scenario(
    name: &str,
    rate: u32,
    warm: usize,
    extra: &[(&str, &str)],
) -> (Cluster, String, Workload) {
    let cluster = three_brokers();
    let topic = unique_topic(name);
    create(&cluster, &topic);
    let workload = Workload::start(&cluster.bootstrap(), &topic, PARTITIONS, rate, extra);
    assert!(
        wait_until(Duration::from_secs(30), || workload.acked_so_far() > warm),
        "the workload did not start"
    );
    (cluster, topic, workload)
}

/// Waits until every partition's ISR size satisfies `ok`.
fn wait_for_isr(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    ok: impl Fn(usize) -> bool,
) -> bool {
    wait_until(timeout, || {
        let sizes = kafka::isr_sizes(bootstrap, topic);
        !sizes.is_empty() && sizes.iter().all(|s| ok(*s))
    })
}

/// Stops the workload, requires that no produce failed, and proves that every acknowledged
/// record can be read back through `bootstrap`, in order and once.
fn stop_and_verify(workload: Workload, bootstrap: &str, topic: &str) -> Acks {
    let acks = workload.stop();
    assert_eq!(
        acks.failures, 0,
        "no produce may fail: {:?}",
        acks.first_error
    );
    let records = kafka::read_all(
        bootstrap,
        topic,
        PARTITIONS,
        acks.total(),
        Duration::from_secs(60),
    );
    verify(&records, &acks);
    acks
}

#[test]
fn leader_killed_while_producing_loses_nothing() {
    let _serial = serial();
    let (mut cluster, topic, workload) = scenario("kill-leader", 1000, 2000, &[]);
    let victim = busiest_leader(&cluster.bootstrap(), &topic);
    let killed_at = Instant::now();
    cluster.kill(victim);
    std::thread::sleep(Duration::from_secs(10));
    let end = Instant::now();
    cluster.restart(victim);
    cluster.wait_ready(victim, Duration::from_secs(60));
    let acks = stop_and_verify(workload, &cluster.bootstrap(), &topic);
    eprintln!(
        "FIGURE leader failover (kill -9 -> acks again): longest stall {:?}, {} acked",
        acks.longest_stall(killed_at, end),
        acks.total()
    );
}

#[test]
fn paused_follower_leaves_and_rejoins_the_isr() {
    let _serial = serial();
    let (cluster, topic, workload) = scenario("pause-follower", 500, 500, &[]);
    let bootstrap = cluster.bootstrap();
    // Pause a broker that leads nothing of this topic if possible, else any non-busiest one.
    let leaders = kafka::leaders(&bootstrap, &topic);
    let follower = (0..3)
        .find(|i| !leaders.values().any(|l| *l == *i as i32))
        .unwrap_or((busiest_leader(&bootstrap, &topic) + 1) % 3);
    let paused_at = Instant::now();
    cluster.pause(follower);
    let others = bootstrap_without(&cluster, follower);
    let shrunk = wait_for_isr(&others, &topic, Duration::from_secs(30), |s| s <= 2);
    eprintln!("FIGURE ISR shrink after SIGSTOP: {:?}", paused_at.elapsed());
    assert!(shrunk, "ISR did not shrink while the follower was paused");
    let before = workload.acked_so_far();
    assert!(
        wait_until(Duration::from_secs(20), || workload.acked_so_far()
            > before + 1000),
        "producing stalled with a follower paused"
    );
    std::thread::sleep(Duration::from_secs(3));
    let lag_records = workload.acked_so_far();
    let resumed_at = Instant::now();
    cluster.resume(follower);
    let rejoined = wait_for_isr(&bootstrap, &topic, Duration::from_secs(60), |s| s == 3);
    let catch_up = resumed_at.elapsed();
    eprintln!(
        "FIGURE ISR catch-up: rejoined after {catch_up:?} with about {lag_records} records on the leaders ({:.0} records/s including the rejoin round trip)",
        lag_records as f64 / catch_up.as_secs_f64().max(0.001)
    );
    assert!(rejoined, "the follower did not rejoin the ISR");
    stop_and_verify(workload, &bootstrap, &topic);
}

#[test]
fn isolated_leader_cannot_ack_and_truncates_when_it_returns() {
    let _serial = serial();
    let (cluster, topic, workload) = scenario("isolate-leader", 500, 500, &[]);
    let bootstrap = cluster.bootstrap();
    let victim = busiest_leader(&bootstrap, &topic);
    let cut_at = Instant::now();
    cluster.isolate(victim);
    // The majority side elects new leaders for everything the victim led.
    let others = bootstrap_without(&cluster, victim);
    let moved = wait_until(Duration::from_secs(30), || {
        let leaders = kafka::leaders(&others, &topic);
        leaders.len() == PARTITIONS as usize
            && leaders.values().all(|l| *l >= 0 && *l != victim as i32)
    });
    eprintln!(
        "FIGURE leadership moved off the isolated broker after {:?}",
        cut_at.elapsed()
    );
    assert!(moved, "no new leaders on the majority side");
    let before = workload.acked_so_far();
    assert!(
        wait_until(Duration::from_secs(40), || workload.acked_so_far()
            > before + 1000),
        "producing did not resume on the majority side"
    );
    cluster.heal(victim);
    let healed_at = Instant::now();
    let rejoined = wait_for_isr(&bootstrap, &topic, Duration::from_secs(60), |s| s == 3);
    eprintln!(
        "FIGURE old leader rejoined the ISR {:?} after healing",
        healed_at.elapsed()
    );
    assert!(rejoined, "the old leader did not rejoin");
    let acks = stop_and_verify(workload, &bootstrap, &topic);
    // The old leader truncated its unacknowledged tail and holds the same data: read through it.
    let through_victim = kafka::read_all(
        &cluster.client_address(victim).to_string(),
        &topic,
        PARTITIONS,
        acks.total(),
        Duration::from_secs(60),
    );
    verify(&through_victim, &acks);
}

#[test]
fn two_of_three_down_fails_cleanly_then_resumes() {
    let _serial = serial();
    let mut cluster = three_brokers();
    let topic = unique_topic("two-down");
    create(&cluster, &topic);
    cluster.kill(1);
    cluster.kill(2);
    let bootstrap = cluster.client_address(0).to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (acked, failed) = rt.block_on(async {
        let producer = kafka::producer(
            &bootstrap,
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("message.timeout.ms", "8000"),
            ],
        );
        let mut futures = Vec::new();
        for i in 0..60 {
            let value = format!("{}:{}", i % PARTITIONS, i);
            futures.push(
                producer
                    .send_result(
                        rdkafka::producer::FutureRecord::<(), _>::to(&topic)
                            .partition(i % PARTITIONS)
                            .payload(&value),
                    )
                    .expect("enqueue"),
            );
        }
        let mut acked = 0;
        let mut failed = 0;
        for f in futures {
            match f.await {
                Ok(Ok(_)) => acked += 1,
                _ => failed += 1,
            }
        }
        (acked, failed)
    });
    assert_eq!(
        acked, 0,
        "no acks=all write may be acknowledged with two of three brokers down"
    );
    assert_eq!(failed, 60);
    cluster.restart(1);
    cluster.wait_ready(1, Duration::from_secs(60));
    let resumed_at = Instant::now();
    let workload = Workload::start(&cluster.bootstrap(), &topic, PARTITIONS, 200, &[]);
    let resumed = wait_until(Duration::from_secs(60), || workload.acked_so_far() > 200);
    eprintln!(
        "FIGURE producing resumed {:?} after a second broker returned",
        resumed_at.elapsed()
    );
    assert!(
        resumed,
        "producing did not resume with two of three brokers"
    );
    stop_and_verify(workload, &cluster.bootstrap(), &topic);
}

#[test]
fn rolling_restart_while_producing_and_consuming() {
    let _serial = serial();
    let (mut cluster, topic, workload) = scenario("rolling", 500, 500, &[]);
    let bootstrap = cluster.bootstrap();
    // A group consumer reading throughout.
    let group = unique_topic("rolling-group");
    let consumed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer_thread = {
        let (bootstrap, topic, group, consumed, stop) = (
            bootstrap.clone(),
            topic.clone(),
            group.clone(),
            consumed.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            let consumer: BaseConsumer = kafka::config(
                &bootstrap,
                &[
                    ("group.id", &group),
                    ("auto.offset.reset", "earliest"),
                    ("enable.auto.commit", "true"),
                    ("auto.commit.interval.ms", "500"),
                ],
            )
            .create()
            .expect("consumer");
            consumer.subscribe(&[&topic]).expect("subscribe");
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                    consumed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        })
    };
    let started = Instant::now();
    for i in 0..3 {
        let status = cluster.terminate(i, Duration::from_secs(60));
        assert!(
            status.is_some_and(|s| s.success()),
            "broker {i} did not exit cleanly on SIGTERM"
        );
        cluster.restart(i);
        cluster.wait_ready(i, Duration::from_secs(60));
    }
    let ended = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    consumer_thread.join().expect("consumer");
    let acks = stop_and_verify(workload, &bootstrap, &topic);
    eprintln!(
        "FIGURE rolling restart: longest produce stall {:?} over {:?}; {} acked, {} consumed by the group",
        acks.longest_stall(started, ended),
        ended - started,
        acks.total(),
        consumed.load(std::sync::atomic::Ordering::SeqCst)
    );
    assert!(
        consumed.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the group consumed during the restart"
    );
}

#[test]
fn terminated_leader_hands_over_quickly() {
    let _serial = serial();
    let (mut cluster, topic, workload) = scenario(
        "sigterm-leader",
        1000,
        2000,
        &[("retry.backoff.ms", "10"), ("retry.backoff.max.ms", "50")],
    );
    let victim = busiest_leader(&cluster.bootstrap(), &topic);
    let at = Instant::now();
    let status = cluster.terminate(victim, Duration::from_secs(60));
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let end = Instant::now();
    assert!(status.is_some_and(|s| s.success()), "clean exit");
    cluster.restart(victim);
    cluster.wait_ready(victim, Duration::from_secs(60));
    let acks = stop_and_verify(workload, &cluster.bootstrap(), &topic);
    eprintln!(
        "FIGURE controlled shutdown of a leader (SIGTERM): exited after {:?}, longest produce stall {:?}",
        stopped - at,
        acks.longest_stall(at, end)
    );
}

#[test]
fn group_offsets_survive_the_loss_of_the_coordinator() {
    let _serial = serial();
    let mut cluster = three_brokers();
    let topic = unique_topic("coordinator-loss");
    create(&cluster, &topic);
    let bootstrap = cluster.bootstrap();
    let group = unique_topic("g-coord");
    let commit = |consumer: &BaseConsumer, offset: i64| {
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(&topic, p, Offset::Offset(offset + i64::from(p)))
                .unwrap();
        }
        consumer.commit(&tpl, CommitMode::Sync)
    };
    let consumer: BaseConsumer = kafka::config(
        &bootstrap,
        &[("group.id", &group), ("enable.auto.commit", "false")],
    )
    .create()
    .expect("consumer");
    assert!(
        wait_until(Duration::from_secs(30), || commit(&consumer, 10).is_ok()),
        "first commit"
    );
    drop(consumer);
    // Find and kill the coordinator: the leader of the group's __consumer_offsets partition.
    let coordinator = {
        let mut c = support::raw::RawConnection::connect(cluster.client_address(0));
        let response = c
            .request(
                &kafka_protocol::messages::FindCoordinatorRequest::default()
                    .with_key(kafka_protocol::protocol::StrBytes::from_string(
                        group.clone(),
                    ))
                    .with_key_type(0),
                3,
            )
            .expect("FindCoordinator");
        assert_eq!(response.error_code, 0);
        response.node_id.0 as usize
    };
    cluster.kill(coordinator);
    let others = bootstrap_without(&cluster, coordinator);
    let consumer: BaseConsumer = kafka::config(
        &others,
        &[("group.id", &group), ("enable.auto.commit", "false")],
    )
    .create()
    .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(&topic, p);
    }
    let mut found = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            found = consumer
                .committed_offsets(tpl.clone(), Duration::from_secs(5))
                .ok();
            found
                .as_ref()
                .is_some_and(|f| f.elements().iter().all(|e| e.offset() != Offset::Invalid))
        }),
        "committed offsets not readable after the coordinator died"
    );
    for e in found.expect("offsets").elements() {
        assert_eq!(
            e.offset(),
            Offset::Offset(10 + i64::from(e.partition())),
            "offset of partition {}",
            e.partition()
        );
    }
    // And the new coordinator accepts commits.
    assert!(wait_until(Duration::from_secs(30), || commit(
        &consumer, 20
    )
    .is_ok()));
}

#[test]
fn consumer_reads_from_a_replica_in_its_rack() {
    let _serial = serial();
    let cluster = three_brokers();
    let topic = unique_topic("closest-replica");
    let bootstrap = cluster.bootstrap();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Leader on broker 0 (rack a), replicas in b and c.
    rt.block_on(kafka::create_assigned_topic(
        &bootstrap,
        &topic,
        &[&[0, 1, 2]],
        &[("min.insync.replicas", "2")],
    ));
    let workload = Workload::start(&bootstrap, &topic, 1, 500, &[]);
    assert!(wait_until(Duration::from_secs(30), || workload
        .acked_so_far()
        > 1000));
    let acks = workload.stop();
    let bytes_out = |i: usize| {
        cluster
            .metric(
                i,
                &format!("kafka_server_brokertopicmetrics_bytesout_total{{topic=\"{topic}\"}}"),
            )
            .unwrap_or(0.0)
    };
    let before: Vec<f64> = (0..3).map(bytes_out).collect();
    let consumer: BaseConsumer = kafka::config(
        &bootstrap,
        &[
            ("group.id", "rack-b-reader"),
            ("client.rack", &cluster.rack(1)),
            ("enable.auto.commit", "false"),
            ("fetch.wait.max.ms", "100"),
        ],
    )
    .create()
    .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while n < acks.total() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            assert!(m.payload().is_some());
            n += 1;
        }
    }
    assert_eq!(n, acks.total(), "consumed everything");
    let after: Vec<f64> = (0..3).map(bytes_out).collect();
    let served: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    eprintln!("FIGURE bytes served to the rack-b consumer per broker: {served:?}");
    assert!(
        served[1] > 0.0,
        "the replica in the consumer's rack served it"
    );
    assert!(
        served[1] > served[0] * 10.0,
        "the leader in another rack served most records: {served:?}"
    );
}

/// A restarted broker answers no client until it has caught up with the metadata log (as
/// Kafka's broker enables request processing only once unfenced): the image it recovers from
/// disk is stale, and Metadata from it would make clients drop live brokers and leaders.
#[test]
fn restarted_broker_answers_only_after_catching_up() {
    let _serial = serial();
    let mut cluster = three_brokers();
    let topic = unique_topic("catch-up");
    create(&cluster, &topic);
    for i in 0..3 {
        cluster.kill(i);
    }
    cluster.restart(0);
    let address = cluster.client_address(0);
    assert!(
        wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(
            address
        )
        .is_ok()),
        "broker 0 never bound its client listener"
    );
    let alone: BaseConsumer = kafka::config(&address.to_string(), &[])
        .create()
        .expect("consumer");
    // Without a quorum broker 0 cannot catch up, so nothing it could say would be current.
    let stale = alone.fetch_metadata(Some(&topic), Duration::from_secs(3));
    assert!(
        stale.is_err(),
        "broker 0 answered Metadata before it caught up with the metadata log: {:?}",
        stale.map(|m| m.brokers().iter().map(|b| b.id()).collect::<Vec<_>>())
    );
    assert!(
        cluster
            .log_tail(0, 200)
            .contains("waiting for the metadata log to catch up"),
        "broker 0 did not say why it is not accepting connections"
    );

    cluster.restart(1);
    cluster.wait_ready(0, Duration::from_secs(60));
    cluster.wait_ready(1, Duration::from_secs(60));
    let current = alone
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .expect("metadata once caught up");
    let mut brokers: Vec<i32> = current.brokers().iter().map(|b| b.id()).collect();
    brokers.sort();
    assert_eq!(brokers, vec![0, 1], "the live brokers, broker 2 is down");
    cluster.restart(2);
    cluster.wait_ready(2, Duration::from_secs(60));
}

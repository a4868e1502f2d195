//! A full disk on one broker, Kafka's way: three brokers, each with a size-limited (tmpfs) data
//! dir, topic RF=3 with min.insync.replicas=2 and idempotent acks=all producers running. Broker
//! X's disk is filled: its log dir goes offline, and with no log dir left it performs a controlled
//! shutdown (abandoned as soon as its metadata log fails on the same disk) and exits with a
//! failure status and "all log dirs have failed" (no panic). Producers see only retriable errors
//! and keep being acknowledged by the other brokers. Once the space is back, X restarts, recovers
//! and rejoins every ISR; nothing acknowledged is lost or duplicated.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::time::{Duration, Instant};

use support::workload::{verify, Workload};
use support::{kafka, unique_topic, wait_until, Cluster, ClusterOptions};

const PARTITIONS: i32 = 6;
const DATA_DIR_BYTES: u64 = 64 << 20;

/// Whether process `pid` has exited and is waiting to be reaped. Looking at /proc instead of
/// reaping keeps the pid ours, so the fixture can still collect its exit status.
fn has_exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_full_disk_takes_the_broker_out_and_it_recovers_once_space_returns() {
    let mut cluster = Cluster::start(
        ClusterOptions::new(3)
            .data_dir_size(DATA_DIR_BYTES)
            .property("min.insync.replicas", 2)
            .property("default.replication.factor", 3),
    );
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("disk-full");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(kafka::create_topic(
        &bootstrap,
        &topic,
        PARTITIONS,
        3,
        &[("min.insync.replicas", "2")],
    ));

    let workload = Workload::start(&bootstrap, &topic, PARTITIONS, 200, &[]);
    assert!(
        wait_until(Duration::from_secs(30), || workload.acked_so_far() >= 200),
        "the workload never got going"
    );

    // X: a broker that leads partitions but is not the active controller.
    let leaders = kafka::leaders(&bootstrap, &topic);
    let x = (0..cluster.len())
        .filter(|i| {
            cluster.metric(*i, "kafka_controller_kafkacontroller_activecontrollercount")
                != Some(1.0)
        })
        .max_by_key(|i| leaders.values().filter(|l| **l == *i as i32).count())
        .expect("a broker that is not the controller");
    let led = leaders.values().filter(|l| **l == x as i32).count();
    let pid = cluster.pid(x).expect("broker X runs");
    let data_dir = cluster.data_dir(x);
    let offline_metric = format!("rivulet_log_dir_offline{{dir=\"{}\"}}", data_dir.display());
    println!("filling the disk of broker {x} (leads {led} of {PARTITIONS} partitions)");

    let filled_at = Instant::now();
    let ballast = cluster.fill_disk(x);
    println!("ballast: {ballast} bytes");
    let mut saw_offline_metric = false;
    let mut saw_unready = false;
    let exited = wait_until(Duration::from_secs(60), || {
        if has_exited(pid) {
            return true;
        }
        saw_offline_metric |= cluster.metric(x, &offline_metric) == Some(1.0);
        saw_unready |= cluster
            .http_get(x, "/readyz")
            .is_some_and(|(status, body)| status != 200 && body.contains("offline"));
        false
    });
    assert!(
        exited,
        "broker {x} still runs a minute after its disk filled:\n{}",
        cluster.log_tail(x, 60)
    );
    let exit_after = filled_at.elapsed();
    let status = cluster
        .terminate(x, Duration::from_secs(5))
        .expect("exit status of broker X");
    let log = cluster.log_tail(x, 400);
    println!(
        "broker {x} exited after {exit_after:?} with {status}; offline metric seen: \
         {saw_offline_metric}, /readyz unready seen: {saw_unready}"
    );
    assert!(!status.success(), "broker {x} exited with {status}");
    assert!(
        status.code().is_some(),
        "broker {x} was killed by a signal ({status}):\n{log}"
    );
    assert!(
        log.contains("log dir failed; taking it offline"),
        "no log line names the failed dir:\n{log}"
    );
    assert!(
        log.contains("all log dirs have failed"),
        "no 'all log dirs have failed' line:\n{log}"
    );
    assert!(!log.contains("panicked"), "broker {x} panicked:\n{log}");
    // The metadata log shares the full disk: the controlled shutdown either completes or gives
    // up when the metadata log fails, never by sitting out its timeout with a dead quorum member.
    assert!(
        !log.contains(&format!("stopping anyway node={x} error=timed out")),
        "broker {x} waited out its controlled shutdown timeout:\n{log}"
    );

    // The others keep acknowledging.
    let before = workload.acked_so_far();
    assert!(
        wait_until(Duration::from_secs(30), || workload.acked_so_far()
            >= before + 500),
        "producers stalled without broker {x}: {} acked before, {} now",
        before,
        workload.acked_so_far()
    );

    cluster.free_disk(x);
    let restarted_at = Instant::now();
    cluster.restart(x);
    cluster.wait_ready(x, Duration::from_secs(60));
    assert!(
        wait_until(Duration::from_secs(60), || {
            let sizes = kafka::isr_sizes(&bootstrap, &topic);
            sizes.len() == PARTITIONS as usize && sizes.iter().all(|n| *n == 3)
        }),
        "broker {x} did not rejoin every ISR: {:?}\n{}",
        kafka::isr_sizes(&bootstrap, &topic),
        cluster.log_tail(x, 60)
    );
    println!(
        "broker {x} back in every ISR {:?} after restart",
        restarted_at.elapsed()
    );
    let restarted_log = cluster.log_tail(x, 2000);
    assert!(
        !restarted_log.contains("panicked"),
        "broker {x} panicked after restart:\n{restarted_log}"
    );

    let acks = workload.stop();
    assert_eq!(
        acks.failures, 0,
        "producers saw non-retriable errors or timeouts, first: {:?}",
        acks.first_error
    );
    let records = kafka::read_all(
        &bootstrap,
        &topic,
        PARTITIONS,
        acks.total(),
        Duration::from_secs(60),
    );
    let consumed = verify(&records, &acks);
    println!("{} acknowledged, {consumed} consumed", acks.total());
}

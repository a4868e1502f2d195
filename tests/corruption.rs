//! A byte flipped on disk in a closed segment is caught by the read-time CRC check: the broker
//! refuses the range with KAFKA_STORAGE_ERROR, counts it in `rivulet_log_corruptions_total`,
//! and repairs its copy from another replica; consumers (with `check.crcs=true`) receive every
//! record exactly as produced. First the damaged copy is a follower's (read through
//! fetch-from-follower), then the leader's (it resigns, re-fetches and leads again).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use support::kafka::{self, Record};
use support::{unique_topic, wait_until, Cluster, ClusterOptions};

const RECORDS: usize = 300;
const CORRUPTIONS: &str = "rivulet_log_corruptions_total";

fn produced(i: usize) -> (Vec<u8>, Vec<u8>) {
    (
        format!("key-{i:05}").into_bytes(),
        format!("value-{i:05}-{}", "v".repeat(80)).into_bytes(),
    )
}

/// The partition's `.log` files on broker `i`, in offset order.
fn segment_files(cluster: &Cluster, i: usize, topic: &str) -> Vec<PathBuf> {
    let dir = cluster.data_dir(i).join(format!("{topic}-0"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Everything the partition's segments hold on broker `i`, concatenated.
fn log_bytes(cluster: &Cluster, i: usize, topic: &str) -> Vec<u8> {
    segment_files(cluster, i, topic)
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}

/// Flips a bit inside the last record of the second batch of `segment`; returns its position.
fn flip_a_record_byte(segment: &Path) -> u64 {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment)
        .expect("segment file");
    let mut position = 0u64;
    let mut header = [0u8; 12];
    file.read_exact_at(&mut header, position).unwrap();
    position += 12 + u64::from(u32::from_be_bytes(header[8..12].try_into().unwrap()));
    file.read_exact_at(&mut header, position).unwrap();
    let size = 12 + u64::from(u32::from_be_bytes(header[8..12].try_into().unwrap()));
    // The last bytes of a batch are its last record's value and (empty) header count.
    let at = position + size - 4;
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x10], at).unwrap();
    file.sync_all().unwrap();
    at
}

/// Reads the partition from the start with CRC checks on, until `RECORDS` arrived or the
/// deadline; returns the records and any client errors seen.
fn consume(cluster: &Cluster, topic: &str, rack: Option<&str>) -> (Vec<Record>, Vec<String>) {
    let mut extra = vec![
        ("group.id", "corruption-reader"),
        ("enable.auto.commit", "false"),
        ("check.crcs", "true"),
        ("fetch.wait.max.ms", "100"),
    ];
    if let Some(rack) = rack {
        extra.push(("client.rack", rack));
    }
    let consumer: BaseConsumer = kafka::config(&cluster.bootstrap(), &extra)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while records.len() < RECORDS && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => records.push(Record::from_message(&m)),
            Some(Err(e)) => errors.push(e.to_string()),
            None => {}
        }
    }
    (records, errors)
}

fn assert_exactly_produced(records: &[Record], errors: &[String]) {
    assert!(
        !errors
            .iter()
            .any(|e| e.to_lowercase().contains("crc") || e.to_lowercase().contains("bad message")),
        "client saw corrupt data: {errors:?}"
    );
    assert_eq!(records.len(), RECORDS, "errors: {errors:?}");
    for (i, r) in records.iter().enumerate() {
        let (key, value) = produced(i);
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(&key[..]), "key at {i}");
        assert_eq!(r.value.as_deref(), Some(&value[..]), "value at {i}");
    }
}

/// Waits until the partition's ISR, as metadata reports it, holds all three brokers.
fn wait_full_isr(bootstrap: &str, topic: &str) {
    let probe: BaseConsumer = kafka::config(bootstrap, &[("group.id", "isr-probe")])
        .create()
        .expect("metadata client");
    let full = wait_until(Duration::from_secs(60), || {
        probe
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|m| {
                let partitions = m.topics().first()?.partitions();
                Some(partitions.first()?.isr().len() == 3)
            })
            .unwrap_or(false)
    });
    assert!(full, "ISR of {topic} never got back to three replicas");
}

fn corruptions(cluster: &Cluster, i: usize) -> f64 {
    cluster.metric(i, CORRUPTIONS).unwrap_or(0.0)
}

/// Waits until broker `i`'s copy of the partition is byte-for-byte the leader's (`leader`).
fn wait_identical(cluster: &Cluster, i: usize, leader: usize, topic: &str) {
    let same = wait_until(Duration::from_secs(60), || {
        let ours = log_bytes(cluster, i, topic);
        !ours.is_empty() && ours == log_bytes(cluster, leader, topic)
    });
    assert!(same, "broker {i}'s log never matched broker {leader}'s");
}

#[test]
fn corrupt_bytes_on_disk_are_refused_and_repaired_from_another_replica() {
    let mut cluster = Cluster::start(
        ClusterOptions::new(3)
            .property("min.insync.replicas", 2)
            .property("leader.imbalance.check.interval.seconds", 1),
    );
    let topic = unique_topic("corruption");
    let bootstrap = cluster.bootstrap();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // Leader (and preferred leader) broker 0; followers 1 and 2.
        kafka::create_assigned_topic(
            &bootstrap,
            &topic,
            &[&[0, 1, 2]],
            &[("segment.bytes", "4096")],
        )
        .await;
        let producer = kafka::producer(&bootstrap, &[("acks", "all"), ("linger.ms", "0")]);
        for i in 0..RECORDS {
            let (key, value) = produced(i);
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .expect("acknowledged");
        }
    });
    for i in 1..3 {
        wait_identical(&cluster, i, 0, &topic);
    }
    assert!(
        segment_files(&cluster, 1, &topic).len() >= 4,
        "several segments closed"
    );

    // A follower's copy: read through fetch-from-follower (client.rack = its rack).
    cluster.terminate(1, Duration::from_secs(30));
    let at = flip_a_record_byte(&segment_files(&cluster, 1, &topic)[1]);
    eprintln!("flipped a byte of broker 1's second segment at position {at}");
    cluster.restart(1);
    cluster.wait_ready(1, Duration::from_secs(60));
    assert!(wait_until(Duration::from_secs(30), || kafka::leaders(
        &bootstrap, &topic
    )
    .get(&0)
        == Some(&0)));
    wait_full_isr(&bootstrap, &topic);
    let rack = cluster.rack(1);
    let (records, errors) = consume(&cluster, &topic, Some(&rack));
    assert_exactly_produced(&records, &errors);
    assert!(
        corruptions(&cluster, 1) >= 1.0,
        "broker 1 caught the corruption:\n{}",
        cluster.log_tail(1, 40)
    );
    wait_identical(&cluster, 1, 0, &topic);
    wait_full_isr(&bootstrap, &topic);
    // Broker 1 alone (once back in the ISR it serves the rack-b reader) has every record.
    let (records, errors) = consume(&cluster, &topic, Some(&rack));
    assert_exactly_produced(&records, &errors);

    // The leader's copy: broker 0 steps down, is damaged, comes back and leads again (preferred
    // leader election); the consumer then reads from it.
    cluster.terminate(0, Duration::from_secs(30));
    let at = flip_a_record_byte(&segment_files(&cluster, 0, &topic)[2]);
    eprintln!("flipped a byte of broker 0's third segment at position {at}");
    cluster.restart(0);
    cluster.wait_ready(0, Duration::from_secs(60));
    assert!(
        wait_until(Duration::from_secs(60), || kafka::leaders(
            &bootstrap, &topic
        )
        .get(&0)
            == Some(&0)),
        "broker 0 leads again"
    );
    let (records, errors) = consume(&cluster, &topic, None);
    assert_exactly_produced(&records, &errors);
    assert!(
        corruptions(&cluster, 0) >= 1.0,
        "broker 0 caught the corruption:\n{}",
        cluster.log_tail(0, 40)
    );
    wait_identical(&cluster, 0, 1, &topic);
    wait_identical(&cluster, 0, 2, &topic);
}

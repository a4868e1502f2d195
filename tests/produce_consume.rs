//! Produce and consume with librdkafka against one broker: every acks setting and every
//! compression codec, read back exactly (order per partition, keys, headers, timestamps).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use support::kafka::{self, Record};
use support::{unique_topic, Cluster, ClusterOptions};

const PARTITIONS: i32 = 6;
const MESSAGES: usize = 100_000;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

fn broker() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(ClusterOptions::new(1)))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn key(i: usize) -> String {
    format!("key-{i}")
}

fn value(i: usize) -> String {
    format!("value-{i}-{}", "x".repeat(i % 50))
}

/// Produces MESSAGES records with `acks` and `codec`, then reads them all back.
fn round_trip(acks: &str, codec: &str) {
    let cluster = broker();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic(&format!("rt-{codec}-acks{}", acks.replace('-', "m")));
    let rt = runtime();
    rt.block_on(async {
        kafka::create_topic(&bootstrap, &topic, PARTITIONS, 1, &[]).await;
        let producer = kafka::producer(
            &bootstrap,
            &[
                ("acks", acks),
                ("compression.type", codec),
                ("linger.ms", "5"),
                ("queue.buffering.max.messages", "200000"),
                ("message.timeout.ms", "60000"),
            ],
        );
        let mut deliveries = Vec::with_capacity(MESSAGES);
        for i in 0..MESSAGES {
            let k = key(i);
            let v = value(i);
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "seq",
                    value: Some(i.to_string().as_bytes()),
                })
                .insert(Header {
                    key: "empty",
                    value: None::<&[u8]>,
                });
            let mut record = FutureRecord::to(&topic)
                .partition((i % PARTITIONS as usize) as i32)
                .key(&k)
                .payload(&v)
                .timestamp(BASE_TIMESTAMP + i as i64)
                .headers(headers);
            loop {
                match producer.send_result(record) {
                    Ok(f) => {
                        deliveries.push(f);
                        break;
                    }
                    Err((
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull,
                        ),
                        back,
                    )) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => panic!("enqueue failed: {e}"),
                }
            }
        }
        for d in deliveries {
            let result = d.await.expect("delivery future");
            if let Err((e, _)) = result {
                panic!("delivery failed ({acks}, {codec}): {e}");
            }
        }
    });

    let records = kafka::read_all(
        &bootstrap,
        &topic,
        PARTITIONS,
        MESSAGES,
        Duration::from_secs(120),
    );
    assert_eq!(
        records.len(),
        MESSAGES,
        "acks={acks} codec={codec}: wrong number of records"
    );
    check(&records, acks, codec);
}

fn check(records: &[Record], acks: &str, codec: &str) {
    let mut seen = vec![false; MESSAGES];
    let mut last_per_partition: BTreeMap<i32, (i64, usize)> = BTreeMap::new();
    for r in records {
        let seq: usize = r
            .headers
            .iter()
            .find(|(k, _)| k == "seq")
            .and_then(|(_, v)| v.as_ref())
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("record without seq header: {r:?}"));
        assert!(
            !seen[seq],
            "acks={acks} codec={codec}: record {seq} seen twice"
        );
        seen[seq] = true;
        assert_eq!(
            r.partition,
            (seq % PARTITIONS as usize) as i32,
            "record {seq} in the wrong partition"
        );
        assert_eq!(r.key.as_deref(), Some(key(seq).as_bytes()), "key of {seq}");
        assert_eq!(
            r.value.as_deref(),
            Some(value(seq).as_bytes()),
            "value of {seq}"
        );
        assert_eq!(
            r.timestamp,
            Some(BASE_TIMESTAMP + seq as i64),
            "timestamp of {seq}"
        );
        assert_eq!(r.headers.len(), 2, "headers of {seq}");
        assert_eq!(
            r.headers[1],
            ("empty".to_string(), None),
            "null header of {seq}"
        );
        if let Some((offset, prev)) = last_per_partition.get(&r.partition) {
            assert!(
                r.offset > *offset,
                "offsets not increasing in partition {}",
                r.partition
            );
            assert!(
                seq > *prev,
                "order broken in partition {}: {seq} after {prev}",
                r.partition
            );
        }
        last_per_partition.insert(r.partition, (r.offset, seq));
    }
    assert!(
        seen.iter().all(|s| *s),
        "acks={acks} codec={codec}: records missing"
    );
}

#[test]
fn acks_0_all_codecs() {
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        round_trip("0", codec);
    }
}

#[test]
fn acks_1_all_codecs() {
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        round_trip("1", codec);
    }
}

#[test]
fn acks_all_all_codecs() {
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        round_trip("all", codec);
    }
}

/// Fetch responses carry record bytes with sendfile(2): the broker's zero-copy counter grows by
/// at least the record bytes consumed.
#[test]
fn fetch_uses_sendfile() {
    let cluster = broker();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("zerocopy");
    let rt = runtime();
    const COUNT: usize = 2000;
    let payload = "z".repeat(1000);
    rt.block_on(async {
        kafka::create_topic(&bootstrap, &topic, 1, 1, &[]).await;
        let producer = kafka::producer(&bootstrap, &[("linger.ms", "5")]);
        let mut futures = Vec::new();
        for _ in 0..COUNT {
            futures.push(
                producer
                    .send_result(FutureRecord::<(), _>::to(&topic).payload(&payload))
                    .expect("enqueue"),
            );
        }
        for f in futures {
            f.await.expect("delivery").expect("delivered");
        }
    });
    let before = cluster
        .metric(0, "rivulet_network_sendfile_bytes_total")
        .unwrap_or(0.0);
    let records = kafka::read_all(&bootstrap, &topic, 1, COUNT, Duration::from_secs(60));
    assert_eq!(records.len(), COUNT);
    let after = cluster
        .metric(0, "rivulet_network_sendfile_bytes_total")
        .expect("sendfile counter");
    assert!(
        after - before >= (COUNT * 1000) as f64,
        "sendfile carried {} bytes, expected at least {}",
        after - before,
        COUNT * 1000
    );
}

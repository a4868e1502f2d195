//! Does a client quota hold a producer to its byte rate, and does a tenant without one keep its
//! throughput beside it?
//!
//! One `rivulet` process on loopback and two librdkafka producers (acks=all, linger.ms=5,
//! 1000-byte records, 64 KiB batches): `unlimited`, with no quota, and `limited`, whose client id
//! has `producer_byte_rate` set with AlterClientQuotas. Criterion measures the wall time for the
//! unlimited producer to have a fixed number of records acknowledged, first alone, then while the
//! limited producer sends as fast as librdkafka lets it. At the end the limited producer's rate
//! over the whole second phase is printed against its quota, with the ratio of the unlimited
//! producer's throughput beside it to alone (both are the README figures).
//!
//! Environment: RIVULET_BENCH_QUOTA (bytes/s, default 1048576).

#![allow(clippy::expect_used, clippy::unwrap_used)] // bench code: a failed expectation is a failed run

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::AlterClientQuotasRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use support::kafka::AckedBytes;
use support::raw::RawConnection;
use support::{kafka, Cluster, ClusterOptions};

const RECORDS: u64 = 20_000;
const PAYLOAD: usize = 1000;

fn producer(
    bootstrap: &str,
    client_id: &str,
    acked: Arc<AtomicU64>,
) -> ThreadedProducer<AckedBytes> {
    kafka::config(
        bootstrap,
        &[
            ("client.id", client_id),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.size", "65536"),
            ("queue.buffering.max.kbytes", "4096"),
        ],
    )
    .create_with_context(AckedBytes(acked))
    .expect("producer")
}

/// Sends one record, waiting while librdkafka's queue is full.
fn send(producer: &ThreadedProducer<AckedBytes>, topic: &str, value: &[u8]) {
    loop {
        match producer.send::<[u8], [u8]>(BaseRecord::to(topic).payload(value)) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                thread::sleep(Duration::from_micros(200));
            }
            Err((e, _)) => panic!("produce failed: {e}"),
        }
    }
}

fn set_quota(cluster: &Cluster, client_id: &str, bytes_per_second: f64) {
    let entry = EntryData::default()
        .with_entity(vec![EntityData::default()
            .with_entity_type(StrBytes::from_static_str("client-id"))
            .with_entity_name(Some(StrBytes::from_string(
                client_id.to_string(),
            )))])
        .with_ops(vec![OpData::default()
            .with_key(StrBytes::from_static_str("producer_byte_rate"))
            .with_value(bytes_per_second)]);
    let mut c = RawConnection::connect(cluster.client_address(0));
    let response = c
        .request(
            &AlterClientQuotasRequest::default().with_entries(vec![entry]),
            1,
        )
        .expect("AlterClientQuotas");
    assert_eq!(
        response.entries[0].error_code, 0,
        "{:?}",
        response.entries[0]
    );
}

/// The limited producer, sending until stopped.
struct Limited {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    started: Instant,
    thread: thread::JoinHandle<()>,
}

impl Limited {
    fn start(bootstrap: &str, topic: &str) -> Limited {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let producer = producer(bootstrap, "limited", acked.clone());
        let (topic, flag) = (topic.to_string(), stop.clone());
        let thread = thread::spawn(move || {
            let value = vec![b'l'; PAYLOAD];
            while !flag.load(Ordering::Relaxed) {
                send(&producer, &topic, &value);
            }
        });
        Limited {
            stop,
            acked,
            started: Instant::now(),
            thread,
        }
    }

    /// Stops it; its acknowledged bytes per second while it ran.
    fn stop(self) -> f64 {
        let rate = self.acked.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64();
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("limited producer");
        rate
    }
}

fn main() {
    let quota: f64 = std::env::var("RIVULET_BENCH_QUOTA")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_048_576.0);
    let cluster = Cluster::start(ClusterOptions::new(1));
    let bootstrap = cluster.bootstrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(kafka::create_topic(&bootstrap, "quota-bench", 4, 1, &[]));
    set_quota(&cluster, "limited", quota);

    let acked = Arc::new(AtomicU64::new(0));
    let unlimited = producer(&bootstrap, "unlimited", acked.clone());
    let value = vec![b'u'; PAYLOAD];
    let mut run = |iters: u64| {
        let started = Instant::now();
        for _ in 0..iters {
            let target = acked.load(Ordering::Relaxed) + RECORDS * PAYLOAD as u64;
            for _ in 0..RECORDS {
                send(&unlimited, "quota-bench", &value);
            }
            unlimited
                .flush(Duration::from_secs(60))
                .expect("every record acknowledged");
            assert!(acked.load(Ordering::Relaxed) >= target, "records lost");
        }
        started.elapsed()
    };

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    let mut group = criterion.benchmark_group("quotas");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(RECORDS * PAYLOAD as u64));

    let alone_started = Instant::now();
    let alone_before = acked.load(Ordering::Relaxed);
    group.bench_function("unlimited-alone", |b| b.iter_custom(&mut run));
    let alone_rate = (acked.load(Ordering::Relaxed) - alone_before) as f64
        / alone_started.elapsed().as_secs_f64();

    let limited = Limited::start(&bootstrap, "quota-bench");
    let beside_started = Instant::now();
    let beside_before = acked.load(Ordering::Relaxed);
    group.bench_function("unlimited-beside-limited", |b| b.iter_custom(&mut run));
    let beside_rate = (acked.load(Ordering::Relaxed) - beside_before) as f64
        / beside_started.elapsed().as_secs_f64();
    let limited_rate = limited.stop();
    group.finish();
    criterion.final_summary();

    let mib = 1_048_576.0;
    eprintln!(
        "quota: limited producer {:.2} MiB/s against a producer_byte_rate of {:.2} MiB/s ({:.2}x); \
         unlimited producer {:.1} MiB/s beside it, {:.1} MiB/s alone ({:.2}x)",
        limited_rate / mib,
        quota / mib,
        limited_rate / quota,
        beside_rate / mib,
        alone_rate / mib,
        beside_rate / alone_rate
    );
}

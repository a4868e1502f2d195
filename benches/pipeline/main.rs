//! End-to-end pipeline benchmark: a real cluster of rivulet processes on loopback, real
//! librdkafka producers and consumers, topic with 10 partitions, RF=3, min.insync.replicas=2,
//! idempotent acks=all producers.
//!
//! Shapes (each with 100 B and 1 KiB payloads):
//! - seed: 80 producer clients, linger.ms=5, rate-limited to a fixed aggregate rate
//!   (20k, 40k, 80k msg/s) by a pacing thread that offers each its due records every 20 ms,
//!   10 consumers in one group;
//! - throughput: 4 producers, linger.ms=5, 1 MiB batches, unthrottled, same consumers.
//!
//! Client modes (RIVULET_BENCH_CLIENT_MODES, default `in-process`): `in-process`, every client in this process and the
//! seed shape's producers offered their records by one pacing thread; `processes`, the bench
//! binary re-executed as 4 producer processes (each producer its own librdkafka instance, offered
//! its records every millisecond, so librdkafka's linger decides when requests go out, as in
//! applications) and 2 consumer processes. Each run also reports the brokers' requests/s and
//! connections (from their /metrics), broker CPU per request, and the host's busy fraction.
//!
//! Client listeners (RIVULET_BENCH_LISTENERS, default `plaintext`): `plaintext`, or `ssl`, where
//! every client connects to a TLS listener (a certificate made for the run; the clients skip
//! host-name checks, the certificate is not what is measured). Replication between the brokers
//! stays on their PLAINTEXT inter-broker listener either way, so `ssl` against `plaintext` in
//! one run is the cost of TLS on client traffic.
//!
//! Criterion measures broker CPU time (all broker processes, from /proc) per iteration, where an
//! iteration is a fixed number of records produced, acknowledged and consumed; its throughput
//! figure is therefore messages per broker-CPU-second, the "per core" figure. A summary with
//! delivered rate, latencies and lag goes to `target/pipeline/summary.json`.
//!
//! Environment: RIVULET_BENCH_BROKERS (3 or 6), RIVULET_BENCH_SHAPES (e.g. "seed-40000,throughput"),
//! RIVULET_BENCH_PAYLOADS (e.g. "100,1024"), RIVULET_BENCH_TICK_MS (how often the seed shape's
//! producers are offered their due records, default 20), RIVULET_BENCH_IO_THREADS,
//! RIVULET_BENCH_CONSUMERS, RIVULET_BENCH_CLIENT_MODES (e.g. "in-process,processes"),
//! RIVULET_BENCH_CHILD_TICK_MS (how often client processes offer their producers records, 1),
//! RIVULET_BENCH_LISTENERS (e.g. "plaintext,ssl").

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

#[path = "../../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

mod broker_cpu;
mod broker_metrics;
mod clients;
mod processes;
mod summary;
mod workload;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};

use broker_cpu::{brokers_cpu_ns, host_cpu_ticks, set_brokers, BrokerCpu};
use broker_metrics::Counters;
use clients::{ClientMode, ClientSet};
use summary::{percentile, RunSummary, REFERENCE_PER_CORE};
use support::{Cluster, ClusterOptions};
use workload::{Plan, Rate};

const PARTITIONS: i32 = 10;
/// Consumers in the group (RIVULET_BENCH_CONSUMERS, default 10 as in the reference shape).
fn consumers() -> usize {
    std::env::var("RIVULET_BENCH_CONSUMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// The listener the clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientListener {
    Plaintext,
    Ssl,
}

impl ClientListener {
    fn name(self) -> &'static str {
        match self {
            ClientListener::Plaintext => "plaintext",
            ClientListener::Ssl => "ssl",
        }
    }

    fn parse(s: &str) -> Option<ClientListener> {
        match s.trim() {
            "plaintext" => Some(ClientListener::Plaintext),
            "ssl" => Some(ClientListener::Ssl),
            _ => None,
        }
    }
}

/// A CA-signed certificate for the brokers, its key and the CA, as PEM.
struct Certificates {
    keystore: tempfile::NamedTempFile,
    ca: String,
}

fn certificates() -> Certificates {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa,
        KeyPair,
    };
    // Distinct subjects: a leaf whose subject equals its issuer's looks self-signed to OpenSSL.
    let subject = |name: &str| {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name = subject("rivulet bench CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA");
    let key = KeyPair::generate().expect("broker key");
    let mut broker = CertificateParams::new(vec!["localhost".to_string()]).expect("broker params");
    broker.distinguished_name = subject("rivulet bench broker");
    let cert = broker.signed_by(&key, &ca).expect("broker certificate");
    let keystore = tempfile::NamedTempFile::new().expect("keystore file");
    std::fs::write(
        keystore.path(),
        format!("{}{}", key.serialize_pem(), cert.pem()),
    )
    .expect("write keystore");
    Certificates {
        keystore,
        ca: ca.pem(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Seed(u32),
    Throughput,
}

impl Shape {
    fn name(&self) -> String {
        match self {
            Shape::Seed(rate) => format!("seed-{rate}"),
            Shape::Throughput => "throughput".to_string(),
        }
    }

    fn parse(s: &str) -> Option<Shape> {
        match s.trim() {
            "throughput" => Some(Shape::Throughput),
            other => other
                .strip_prefix("seed-")
                .and_then(|r| r.parse().ok())
                .map(Shape::Seed),
        }
    }
}

/// Runtime threads per broker (RIVULET_BENCH_IO_THREADS, default 1: several brokers and all
/// clients share this machine's cores, so one thread per broker avoids cross-thread wake-ups).
fn io_threads() -> usize {
    std::env::var("RIVULET_BENCH_IO_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn create_topic(cluster: &Cluster, topic: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(support::kafka::create_topic(
        &cluster.bootstrap(),
        topic,
        PARTITIONS,
        3,
        &[("min.insync.replicas", "2")],
    ));
}

fn run(
    criterion: &mut Criterion<BrokerCpu>,
    brokers: usize,
    shape: Shape,
    payload: usize,
    mode: ClientMode,
    listener: ClientListener,
) -> RunSummary {
    let mut options = ClusterOptions::new(brokers)
        .property("default.replication.factor", 3)
        .property("min.insync.replicas", 2)
        .property("num.io.threads", io_threads());
    let certificates = (listener == ClientListener::Ssl).then(certificates);
    let mut client_settings = Vec::new();
    if let Some(c) = &certificates {
        options = options
            .listener("SSL")
            .property(
                "listener.security.protocol.map",
                "CLIENT:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL",
            )
            .property("ssl.keystore.location", c.keystore.path().display());
        client_settings = [
            ("security.protocol", "SSL"),
            ("ssl.ca.pem", c.ca.as_str()),
            ("ssl.endpoint.identification.algorithm", "none"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    }
    let cluster = Cluster::start(options);
    set_brokers((0..brokers).filter_map(|i| cluster.pid(i)).collect());
    let topic = format!(
        "bench-{}-{payload}-{}-{}",
        shape.name(),
        mode.name(),
        listener.name()
    );
    create_topic(&cluster, &topic);
    let bootstrap = match listener {
        ClientListener::Plaintext => cluster.bootstrap(),
        ClientListener::Ssl => (0..brokers)
            .map(|i| cluster.listener_address(i, "SSL").to_string())
            .collect::<Vec<_>>()
            .join(","),
    };

    let (producers, rate, settings, per_iteration): (usize, Rate, Vec<(String, String)>, u64) =
        match shape {
            Shape::Seed(r) => (80, Rate::Fixed(r), vec![], u64::from(r)),
            Shape::Throughput => (
                4,
                Rate::Unlimited,
                [
                    ("batch.size", "1048576"),
                    ("queue.buffering.max.messages", "1000000"),
                    ("queue.buffering.max.kbytes", "1048576"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                if payload >= 1024 { 200_000 } else { 1_000_000 },
            ),
        };
    let mut clients = ClientSet::start(
        mode,
        &Plan {
            bootstrap,
            topic: topic.clone(),
            partitions: PARTITIONS,
            producers,
            consumers: consumers(),
            payload,
            rate,
            producer_settings: settings,
            client_settings,
        },
    );
    let stats = clients.stats();
    // Let the pipeline reach steady state before measuring: the offered rate at its full value,
    // enough records through, and the backlog the start-up built (producers connecting, the
    // group forming) consumed, so the measurement neither drains it nor counts its latencies.
    // A cluster that never gets there within a minute is measured as it is.
    let warm = Instant::now();
    let backlog_limit = match rate {
        Rate::Fixed(r) => u64::from(r / 10).max(1000),
        Rate::Unlimited => u64::MAX,
    };
    loop {
        let consumed = stats.consumed.load(Ordering::Relaxed);
        let backlog = stats
            .offered
            .load(Ordering::Relaxed)
            .saturating_sub(consumed);
        let ramped = rate == Rate::Unlimited || warm.elapsed() >= workload::RAMP_UP;
        let steady = ramped && consumed >= per_iteration.min(50_000) && backlog < backlog_limit;
        if steady || warm.elapsed() >= Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let warm_up_seconds = warm.elapsed().as_secs_f64();
    clients.start_measuring();

    let mut measured_wall = Duration::ZERO;
    let mut measured_cpu_ns = 0u64;
    let mut measured_client_cpu_ns = 0u64;
    let mut measured_records = 0u64;
    let mut measured_counters = Counters::default();
    let (mut host_busy, mut host_total) = (0u64, 0u64);
    let acked_before = stats.acked.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut group = criterion.benchmark_group(format!("pipeline/{brokers}-brokers"));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1))
        .throughput(Throughput::Elements(per_iteration));
    group.bench_function(
        format!(
            "{}/{payload}B/{}/{}",
            shape.name(),
            mode.name(),
            listener.name()
        ),
        |b| {
            b.iter_custom(|iters| {
                let counters_start = broker_metrics::scrape(&cluster, brokers);
                let host_start = host_cpu_ticks();
                let cpu_start = brokers_cpu_ns();
                let clients_start = clients.cpu_ns();
                let wall_start = Instant::now();
                let target = stats.consumed.load(Ordering::Relaxed) + iters * per_iteration;
                let deadline = Instant::now() + Duration::from_secs(120) * iters as u32;
                while stats.consumed.load(Ordering::Relaxed) < target {
                    assert!(
                        Instant::now() < deadline,
                        "the cluster stopped delivering records"
                    );
                    std::thread::sleep(Duration::from_millis(2));
                }
                let cpu = brokers_cpu_ns().saturating_sub(cpu_start);
                measured_client_cpu_ns += clients.cpu_ns().saturating_sub(clients_start);
                let host_end = host_cpu_ticks();
                host_busy += host_end.0.saturating_sub(host_start.0);
                host_total += host_end.1.saturating_sub(host_start.1);
                measured_counters
                    .add(&broker_metrics::scrape(&cluster, brokers).since(&counters_start));
                measured_wall += wall_start.elapsed();
                measured_cpu_ns += cpu;
                measured_records += iters * per_iteration;
                cpu
            });
        },
    );
    group.finish();
    let elapsed = started.elapsed();
    let acked = stats.acked.load(Ordering::Relaxed) - acked_before;
    let failed = stats.failed.load(Ordering::Relaxed);
    let max_lag_s = stats.max_lag_us.load(Ordering::Relaxed) as f64 / 1e6;
    // Client processes hand over their latency samples as they stop.
    clients.stop();
    let mut produce = std::mem::take(
        &mut *stats
            .produce_latency_us
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    let mut e2e = std::mem::take(
        &mut *stats
            .e2e_latency_us
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    drop(cluster);

    let wall_s = measured_wall.as_secs_f64().max(1e-9);
    let cpu_s = measured_cpu_ns as f64 / 1e9;
    let per_core = measured_records as f64 / cpu_s.max(1e-9);
    let c = measured_counters;
    RunSummary {
        brokers,
        shape: shape.name(),
        client_mode: mode.name(),
        listener: listener.name(),
        offered_rate: match rate {
            Rate::Fixed(r) => Some(r),
            Rate::Unlimited => None,
        },
        payload_bytes: payload,
        producers,
        consumers: consumers(),
        measured_seconds: wall_s,
        delivered_msgs_per_s: measured_records as f64 / wall_s,
        broker_cpu_cores: cpu_s / wall_s,
        client_cpu_cores: measured_client_cpu_ns as f64 / 1e9 / wall_s,
        msgs_per_broker_cpu_s: per_core,
        ratio_to_reference: per_core / REFERENCE_PER_CORE,
        requests_per_s: c.requests / wall_s,
        produce_requests_per_s: c.produce / wall_s,
        fetch_requests_per_s: c.fetch / wall_s,
        records_per_produce_request: measured_records as f64 / c.produce.max(1.0),
        broker_cpu_us_per_request: measured_cpu_ns as f64 / 1e3 / c.requests.max(1.0),
        connections: c.connections,
        host_busy: host_busy as f64 / host_total.max(1) as f64,
        produce_p50_ms: percentile(&mut produce, 50.0) / 1000.0,
        produce_p99_ms: percentile(&mut produce, 99.0) / 1000.0,
        e2e_p50_ms: percentile(&mut e2e, 50.0) / 1000.0,
        e2e_p99_ms: percentile(&mut e2e, 99.0) / 1000.0,
        max_consumer_lag_s: max_lag_s,
        acked_during_run: acked,
        failed,
        run_seconds: elapsed.as_secs_f64(),
        warm_up_seconds,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(processes::CHILD_FLAG) {
        processes::child_main(&args[2..]);
        return;
    }
    let brokers: usize = std::env::var("RIVULET_BENCH_BROKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let shapes: Vec<Shape> = env_list(
        "RIVULET_BENCH_SHAPES",
        "seed-20000,seed-40000,seed-80000,throughput",
    )
    .iter()
    .filter_map(|s| Shape::parse(s))
    .collect();
    let payloads: Vec<usize> = env_list("RIVULET_BENCH_PAYLOADS", "100,1024")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let modes: Vec<ClientMode> = env_list("RIVULET_BENCH_CLIENT_MODES", "in-process")
        .iter()
        .filter_map(|s| ClientMode::parse(s))
        .collect();
    let listeners: Vec<ClientListener> = env_list("RIVULET_BENCH_LISTENERS", "plaintext")
        .iter()
        .filter_map(|s| ClientListener::parse(s))
        .collect();
    let mut criterion = Criterion::default()
        .with_measurement(BrokerCpu)
        .configure_from_args();
    let mut results = Vec::new();
    for payload in &payloads {
        for shape in &shapes {
            for mode in &modes {
                for listener in &listeners {
                    let summary = run(&mut criterion, brokers, *shape, *payload, *mode, *listener);
                    eprintln!("{}", summary.line());
                    results.push(summary);
                }
            }
        }
    }
    criterion.final_summary();
    let tick_ms = workload::pacing_tick().as_millis();
    summary::print_table(&results, tick_ms);
    match summary::write_json(&results, tick_ms) {
        Ok(path) => eprintln!("summary written to {}", path.display()),
        Err(e) => eprintln!("could not write the summary: {e}"),
    }
}

//! Does a normal producer keep its throughput while the broker holds 10,000 idle connections and
//! other sockets flood it with garbage frames?
//!
//! One `rivulet` process on loopback, one librdkafka producer (acks=1, linger.ms=5) writing
//! 100-byte records to a single-partition topic. Criterion measures the wall time of producing
//! and acknowledging a fixed number of records, first with nothing else going on, then with
//! 10,000 idle connections (spread over ten 127.0.0.x source addresses) open and flooding
//! sockets that keep connecting, sending a garbage frame and waiting for the broker to close
//! them. The ratio of the two throughputs is printed at the end (and is the README figure).
//!
//! Environment: RIVULET_BENCH_IDLE (idle connections, default 10000), RIVULET_BENCH_FLOODERS
//! (garbage-sending sockets at a time, default 8).

#![allow(clippy::expect_used, clippy::unwrap_used)] // bench code: a failed expectation is a failed run

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::{kafka, Cluster, ClusterOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RECORDS: u64 = 20_000;
const PAYLOAD: usize = 100;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Lifts the soft file-descriptor limit to the hard one; the broker child inherits it.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

fn source_ip(i: usize) -> IpAddr {
    IpAddr::from([127, 0, 0, 2 + (i % 10) as u8])
}

async fn connect_from(
    source: IpAddr,
    target: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(target).await
}

/// Idle connections and garbage flooders, on a runtime of their own.
struct Flood {
    runtime: tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    garbage_frames: Arc<AtomicU64>,
    idle: Vec<tokio::net::TcpStream>,
}

impl Flood {
    fn start(target: SocketAddr, idle: usize, flooders: usize) -> Flood {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("flood runtime");
        let open = runtime.block_on(async {
            let mut open = Vec::with_capacity(idle);
            for i in 0..idle {
                open.push(
                    connect_from(source_ip(i), target)
                        .await
                        .expect("idle connection"),
                );
            }
            open
        });
        let stop = Arc::new(AtomicBool::new(false));
        let garbage_frames = Arc::new(AtomicU64::new(0));
        for f in 0..flooders {
            let stop = stop.clone();
            let sent = garbage_frames.clone();
            runtime.spawn(async move {
                // An HTTP request, as a misdirected health check would send: its "length" is
                // 0x47455420 (over socket.request.max.bytes), its "API key" not one.
                let garbage = b"GET /health HTTP/1.1\r\nHost: broker\r\n\r\n";
                let mut buf = [0u8; 256];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut c) = connect_from(source_ip(f), target).await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    if c.write_all(garbage).await.is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                        // The broker closes it; wait for that so the flood is paced by the broker.
                        while let Ok(n) = c.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                        }
                    }
                }
            });
        }
        Flood {
            runtime,
            stop,
            garbage_frames,
            idle: open,
        }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.garbage_frames.load(Ordering::Relaxed);
        let Flood { runtime, idle, .. } = self;
        drop(idle);
        runtime.shutdown_timeout(Duration::from_secs(5));
        sent
    }
}

/// Produces `RECORDS` records per iteration and waits for every acknowledgement.
fn produce(producer: &FutureProducer, topic: &str, iters: u64) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let payload = vec![b'x'; PAYLOAD];
    let started = Instant::now();
    for _ in 0..iters {
        runtime.block_on(async {
            let mut pending = Vec::with_capacity(RECORDS as usize);
            for _ in 0..RECORDS {
                pending.push(
                    producer.send_result(FutureRecord::<(), [u8]>::to(topic).payload(&payload)),
                );
            }
            for p in pending {
                let delivery = p.expect("queued").await.expect("delivery report");
                delivery.expect("acknowledged");
            }
        });
    }
    started.elapsed()
}

fn main() {
    let fds = raise_fd_limit();
    let idle = env_usize("RIVULET_BENCH_IDLE", 10_000);
    let flooders = env_usize("RIVULET_BENCH_FLOODERS", 8);
    assert!(
        fds as usize > idle + 1000,
        "RLIMIT_NOFILE is {fds}: too low for {idle} idle connections"
    );
    let cluster = Cluster::start(
        ClusterOptions::new(1)
            .property("num.io.threads", 1)
            .property("connections.max.idle.ms", 3_600_000),
    );
    let bootstrap = cluster.bootstrap();
    let topic = "limits-bench";
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(kafka::create_topic(&bootstrap, topic, 1, 1, &[]));
    let producer = kafka::producer(
        &bootstrap,
        &[
            ("acks", "1"),
            ("linger.ms", "5"),
            ("queue.buffering.max.messages", "1000000"),
        ],
    );

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let rates: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
    let mut group = c.benchmark_group("limits");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(RECORDS));

    let measured = |name: &str, group: &mut criterion::BenchmarkGroup<'_, _>| {
        let total = Arc::new(Mutex::new((0u64, Duration::ZERO)));
        let seen = total.clone();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let spent = produce(&producer, topic, iters);
                let mut t = seen.lock().unwrap();
                t.0 += iters * RECORDS;
                t.1 += spent;
                spent
            })
        });
        let (records, spent) = *total.lock().unwrap();
        let rate = records as f64 / spent.as_secs_f64().max(1e-9);
        rates.lock().unwrap().push((name.to_string(), rate));
    };

    measured("producer_alone", &mut group);
    let flood = Flood::start(cluster.client_address(0), idle, flooders);
    let open = cluster
        .metric(
            0,
            "kafka_server_socketservermetrics_connection_count{listener=\"CLIENT\"}",
        )
        .unwrap_or(0.0);
    let flood_started = Instant::now();
    measured("producer_with_idle_and_garbage", &mut group);
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let garbage = flood.stop();
    group.finish();

    let rates = rates.lock().unwrap();
    let alone = rates[0].1;
    let flooded = rates[1].1;
    eprintln!(
        "limits: producer alone {alone:.0} rec/s; with {open:.0} open connections ({idle} idle) and \
         {garbage} garbage frames ({:.0}/s) {flooded:.0} rec/s; ratio {:.3}",
        garbage as f64 / flood_secs,
        flooded / alone
    );
    c.final_summary();
}

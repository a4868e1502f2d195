//! The clients of a benchmark run: rate-limited or unthrottled idempotent acks=all producers,
//! each its own librdkafka instance and connection set, and a consumer group reading
//! everything. Every record carries its send time, so end-to-end latency is measured.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

/// Latencies in microseconds and counters, shared by all clients.
#[derive(Default)]
pub struct Stats {
    /// Records handed to producers.
    pub offered: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub consumed: AtomicU64,
    pub produce_latency_us: Mutex<Vec<u32>>,
    pub e2e_latency_us: Mutex<Vec<u32>>,
    /// Largest time a consumed record had spent between send and receipt, in µs.
    pub max_lag_us: AtomicU64,
    /// Partitions assigned to the group's members.
    pub assigned: AtomicU64,
    /// Send time (µs since the epoch) from which records count in the latency and lag figures,
    /// 0 before measuring starts; records sent earlier belong to the warm-up, whenever they are
    /// acknowledged or consumed.
    measured_from_us: AtomicU64,
}

impl Stats {
    /// Latencies and lag from now on count records sent from now on; returns that instant (µs
    /// since the epoch).
    pub fn start_measuring(&self) -> u64 {
        let from = now_us();
        self.measure_from(from);
        from
    }

    /// Latencies and lag count records sent from `from_us` (µs since the epoch) on.
    pub fn measure_from(&self, from_us: u64) {
        self.measured_from_us.store(from_us, Ordering::SeqCst);
    }

    fn measured(&self, sent_us: u64) -> bool {
        let from = self.measured_from_us.load(Ordering::Relaxed);
        from != 0 && sent_us >= from
    }
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// How producers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Aggregate records/s over all producers.
    Fixed(u32),
    /// As fast as the cluster acknowledges.
    Unlimited,
}

pub struct Clients {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub stats: Arc<Stats>,
}

impl Clients {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c.set("broker.address.family", "v4");
    c
}

/// Starts `consumers` members of the group `bench-<topic>` reading `topic`; each adds the
/// partitions it owns to `stats.assigned`.
pub fn start_consumers(
    bootstrap: &str,
    topic: &str,
    consumers: usize,
    settings: &[(String, String)],
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let group = format!("bench-{topic}");
    let mut threads = Vec::new();
    for _ in 0..consumers {
        let (stats, stop) = (stats.clone(), stop.clone());
        let mut config = client_config(bootstrap);
        for (k, v) in settings {
            config.set(k, v);
        }
        let consumer: BaseConsumer = config
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        threads.push(std::thread::spawn(move || {
            let mut counted = 0u64;
            let mut local = Vec::with_capacity(4096);
            // Asking for the assignment is a round trip to librdkafka's main thread: do it a few
            // times a second, not per record.
            let mut next_check = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                if Instant::now() >= next_check {
                    next_check = Instant::now() + Duration::from_millis(100);
                    let owned = consumer.assignment().map(|a| a.count() as u64).unwrap_or(0);
                    if owned != counted {
                        stats
                            .assigned
                            .fetch_add(owned.wrapping_sub(counted), Ordering::SeqCst);
                        counted = owned;
                    }
                }
                match consumer.poll(Duration::from_millis(50)) {
                    Some(Ok(m)) => {
                        let now = now_us();
                        if let Some(p) = m.payload() {
                            if p.len() >= 8 {
                                let sent = u64::from_be_bytes(p[..8].try_into().unwrap_or([0; 8]));
                                if stats.measured(sent) {
                                    let lag = now.saturating_sub(sent);
                                    local.push(lag.min(u64::from(u32::MAX)) as u32);
                                    stats.max_lag_us.fetch_max(lag, Ordering::Relaxed);
                                }
                            }
                        }
                        stats.consumed.fetch_add(1, Ordering::Relaxed);
                        if local.len() >= 4096 {
                            stats
                                .e2e_latency_us
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .append(&mut local);
                        }
                    }
                    Some(Err(_)) | None => {
                        if !local.is_empty() {
                            stats
                                .e2e_latency_us
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .append(&mut local);
                        }
                    }
                }
            }
        }));
    }
    threads
}

/// Waits until the group owns every partition.
pub fn wait_assigned(stats: &Stats, partitions: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.assigned.load(Ordering::SeqCst) < partitions as u64 {
        assert!(
            Instant::now() < deadline,
            "consumer group did not take all partitions"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Records acknowledgements and produce latency; the opaque is the send time in µs.
struct Acknowledger {
    stats: Arc<Stats>,
}

impl ClientContext for Acknowledger {}

impl ProducerContext for Acknowledger {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        match result {
            Ok(_) => {
                self.stats.acked.fetch_add(1, Ordering::Relaxed);
                if self.stats.measured(sent_us as u64) {
                    let latency = now_us()
                        .saturating_sub(sent_us as u64)
                        .min(u64::from(u32::MAX)) as u32;
                    self.stats
                        .produce_latency_us
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(latency);
                }
            }
            Err(_) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Producers are polled by the thread that feeds them (no poll thread of their own), so
/// delivery reports cost no extra wake-ups.
type Producer = BaseProducer<Acknowledger>;

/// Serves every delivery report waiting. `poll(0)` serves one event, and an event carries the
/// reports of one produce response; each served event shrinks the count of records in flight.
fn serve_reports(producer: &Producer) {
    loop {
        let before = producer.in_flight_count();
        producer.poll(Duration::ZERO);
        if producer.in_flight_count() == before {
            return;
        }
    }
}

/// Sends one record stamped with the current time; false if the local queue is full.
fn send(producer: &Producer, topic: &str, value: &mut [u8], stats: &Stats) -> bool {
    let sent = now_us();
    value[..8].copy_from_slice(&sent.to_be_bytes());
    match producer
        .send(BaseRecord::<(), [u8], usize>::with_opaque_to(topic, sent as usize).payload(value))
    {
        Ok(()) => {
            stats.offered.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => false,
        Err(_) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            true
        }
    }
}

/// How often rate-limited producers are offered their due records (RIVULET_BENCH_TICK_MS,
/// default 20). Every producer with records lingering wakes its librdkafka threads once per
/// tick. With 5 ms ticks the 80 producers send so many small requests that, once acks=all takes
/// longer than five of them (the idempotent in-flight limit), librdkafka's broker threads
/// busy-poll: on two shared cores the clients then starve themselves and the brokers.
pub fn pacing_tick() -> Duration {
    let ms = std::env::var("RIVULET_BENCH_TICK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    Duration::from_millis(ms)
}

/// The offered rate climbs linearly to its full value over this long. Starting 80 producers at
/// full rate at once makes a burst while they are still connecting; on two shared cores that
/// burst can push acks=all latency past five pacing ticks, where librdkafka's idempotent
/// producers (at their in-flight limit) busy-poll and never let the cluster catch up.
pub const RAMP_UP: Duration = Duration::from_secs(5);

/// Seconds' worth of records due `elapsed` after the start, at full rate after the ramp-up.
fn ramped_seconds(elapsed: Duration) -> f64 {
    let (t, ramp) = (elapsed.as_secs_f64(), RAMP_UP.as_secs_f64());
    if t < ramp {
        t * t / (2.0 * ramp)
    } else {
        t - ramp / 2.0
    }
}

/// How the producers of one process are driven.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Their aggregate rate.
    pub rate: Rate,
    /// How often rate-limited producers are offered their due records.
    pub tick: Duration,
}

/// Starts `producers` producer clients (each its own librdkafka instance and connections)
/// sending `payload`-byte records to `topic` at `pacing.rate`.
#[allow(clippy::too_many_arguments)]
pub fn start_producers(
    bootstrap: &str,
    topic: &str,
    producers: usize,
    payload: usize,
    pacing: Pacing,
    producer_settings: &[(String, String)],
    stats: &Arc<Stats>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let clients: Vec<Producer> = (0..producers)
        .map(|_| {
            let mut config = client_config(bootstrap);
            config
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "5")
                .set("message.timeout.ms", "60000");
            for (k, v) in producer_settings {
                config.set(k, v);
            }
            config
                .create_with_context(Acknowledger {
                    stats: stats.clone(),
                })
                .expect("producer")
        })
        .collect();
    let mut threads = Vec::new();
    match pacing.rate {
        Rate::Fixed(total) => {
            // One pacing thread keeps every producer on its share of the schedule, offering
            // each its due records once per tick, and serves their delivery reports.
            let (topic, stats, stop) = (topic.to_string(), stats.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let per_producer = f64::from(total) / clients.len() as f64;
                let mut sent = vec![0u64; clients.len()];
                let mut value = vec![b'x'; payload.max(8)];
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    let due = (ramped_seconds(started.elapsed()) * per_producer) as u64;
                    for (i, producer) in clients.iter().enumerate() {
                        while sent[i] < due && send(producer, &topic, &mut value, &stats) {
                            sent[i] += 1;
                        }
                        serve_reports(producer);
                    }
                    std::thread::sleep(pacing.tick);
                }
                for producer in &clients {
                    let _ = producer.flush(Duration::from_secs(10));
                }
            }));
        }
        Rate::Unlimited => {
            for producer in clients {
                let (topic, stats, stop) = (topic.to_string(), stats.clone(), stop.clone());
                threads.push(std::thread::spawn(move || {
                    let mut value = vec![b'x'; payload.max(8)];
                    while !stop.load(Ordering::SeqCst) {
                        if !send(&producer, &topic, &mut value, &stats) {
                            producer.poll(Duration::from_millis(1));
                        }
                    }
                    let _ = producer.flush(Duration::from_secs(10));
                }));
            }
        }
    }
    threads
}

/// The clients a run starts, whichever way they run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub producers: usize,
    pub consumers: usize,
    pub payload: usize,
    /// The producers' aggregate rate.
    pub rate: Rate,
    pub producer_settings: Vec<(String, String)>,
    /// librdkafka settings of every client (the security protocol and its CA).
    pub client_settings: Vec<(String, String)>,
}

impl Plan {
    /// What the producers are configured with: the client settings, then the shape's own.
    pub fn all_producer_settings(&self) -> Vec<(String, String)> {
        let mut settings = self.client_settings.clone();
        settings.extend(self.producer_settings.iter().cloned());
        settings
    }
}

/// Starts the plan's consumers and, once they own every partition, its producers, all in this
/// process; a fixed rate is offered once per [`pacing_tick`].
pub fn start(plan: &Plan) -> Clients {
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let mut threads = start_consumers(
        &plan.bootstrap,
        &plan.topic,
        plan.consumers,
        &plan.client_settings,
        stats.clone(),
        stop.clone(),
    );
    wait_assigned(&stats, plan.partitions);
    threads.extend(start_producers(
        &plan.bootstrap,
        &plan.topic,
        plan.producers,
        plan.payload,
        Pacing {
            rate: plan.rate,
            tick: pacing_tick(),
        },
        &plan.all_producer_settings(),
        &stats,
        &stop,
    ));
    Clients {
        stop,
        threads,
        stats,
    }
}

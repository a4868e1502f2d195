//! The nemesis runner: three brokers (one per rack) with size-limited data dirs, idempotent
//! acks=all producers and a two-member consumer group at work while faults chosen by a seeded
//! PRNG hit the cluster one after another: kill -9 (biased to partition leaders and the active
//! controller), SIGSTOP/SIGCONT, two brokers down at once, one broker or the active controller
//! cut off, a bridge partition, added latency and a full disk.
//!
//! After the faults it heals everything and checks: every broker back, every partition back to
//! full ISR within a bounded time, every producer acknowledged and the group consuming again,
//! no acknowledged record lost, none duplicated by the brokers (a record found twice is looked
//! up: two copies under successive epochs of one producer were sent twice by the client and
//! are reported apart), each producer's order kept in every partition, and no committed offset
//! of the group read back lower than one the brokers had already acknowledged to a member.
//! (librdkafka may retry an older async commit after a newer one; the later acknowledgment
//! wins, as in Kafka, so a read may match it.)
//!
//! A test target without libtest (`harness = false`). With no arguments (how `cargo test` runs
//! it) it runs the short form: fixed seeds, about three minutes. By hand:
//! `cargo test --test nemesis -- --seed 7 --duration 1h --faults kill,pause,bridge`.
//! The seed fixes the fault schedule; timing on a loaded machine still varies.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test
#![allow(clippy::print_stdout)] // the runner's report is its output

mod support;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use support::record_producer::producer_of;
use support::workload::{check, Acks, Workload};
use support::{kafka, wait_until, Cluster, ClusterOptions};

const BROKERS: usize = 3;
const PARTITIONS: i32 = 6;
const PRODUCERS: usize = 2;
const CONSUMERS: usize = 2;
/// Records per second per producer.
const RATE: u32 = 100;
/// Size of each broker's data dir (a tmpfs).
const DATA_DIR_BYTES: u64 = 128 << 20;

/// How long after a full disk is freed a broker may still exit because of it.
const DISK_EXIT_GRACE: Duration = Duration::from_secs(1);
/// How long a broker whose log dir went offline may take to shut down and exit.
const DISK_EXIT_BOUND: Duration = Duration::from_secs(30);
/// The short form: these seeds, each with this much fault time.
const SHORT_SEEDS: [u64; 2] = [1, 2];
const SHORT_DURATION: Duration = Duration::from_secs(80);
/// Bound on the return to full ISR once the faults stop.
const ISR_RECOVERY_BOUND: Duration = Duration::from_secs(90);
/// Once the faults stop and the ISR is full, the group must consume again within this long
/// (members rejoin, the coordinator answers, fetches resume).
const GROUP_RESUME_BOUND: Duration = Duration::from_secs(60);
/// How long a group member may take to stop at the end.
const CONSUMER_STOP_BOUND: Duration = Duration::from_secs(30);

/// splitmix64: a tiny deterministic PRNG, so a seed replays the same fault schedule.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Kill,
    Pause,
    TwoDown,
    Isolate,
    IsolateController,
    Bridge,
    Latency,
    DiskFull,
}

impl Fault {
    const ALL: [Fault; 8] = [
        Fault::Kill,
        Fault::Pause,
        Fault::TwoDown,
        Fault::Isolate,
        Fault::IsolateController,
        Fault::Bridge,
        Fault::Latency,
        Fault::DiskFull,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::TwoDown => "two-down",
            Fault::Isolate => "isolate",
            Fault::IsolateController => "isolate-controller",
            Fault::Bridge => "bridge",
            Fault::Latency => "latency",
            Fault::DiskFull => "disk",
        }
    }

    fn parse(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

#[derive(Debug)]
struct Args {
    seeds: Vec<u64>,
    duration: Duration,
    faults: Vec<Fault>,
    list_only: bool,
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Our options; anything else (libtest's flags and filters, which cargo may pass) is ignored.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut seed = None;
    let mut duration = None;
    let mut faults = Fault::ALL.to_vec();
    let mut list_only = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--seed" => {
                let v = value("--seed")?;
                seed = Some(v.parse().map_err(|_| format!("bad --seed {v}"))?);
            }
            "--duration" => {
                let v = value("--duration")?;
                duration = Some(parse_duration(&v).ok_or(format!("bad --duration {v}"))?);
            }
            "--faults" => {
                let v = value("--faults")?;
                faults = v
                    .split(',')
                    .map(|f| Fault::parse(f.trim()).ok_or(format!("unknown fault {f}")))
                    .collect::<Result<_, _>>()?;
            }
            "--list" => list_only = true,
            _ => {}
        }
    }
    if faults.is_empty() {
        return Err("--faults names no fault".to_string());
    }
    let seeds = match (seed, duration) {
        (Some(s), _) => vec![s],
        (None, None) => SHORT_SEEDS.to_vec(),
        (None, Some(_)) => vec![SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)],
    };
    Ok(Args {
        seeds,
        duration: duration.unwrap_or(SHORT_DURATION),
        faults,
        list_only,
    })
}

/// Metadata of the topic: partition -> (leader, ISR size); None when no broker answered.
fn partition_states(probe: &BaseConsumer, topic: &str) -> Option<BTreeMap<i32, (i32, usize)>> {
    let md = probe
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() {
        return None;
    }
    Some(
        t.partitions()
            .iter()
            .map(|p| (p.id(), (p.leader(), p.isr().len())))
            .collect(),
    )
}

fn full_isr(probe: &BaseConsumer, topic: &str) -> bool {
    partition_states(probe, topic).is_some_and(|s| {
        s.len() == PARTITIONS as usize && s.values().all(|(l, isr)| *l >= 0 && *isr == BROKERS)
    })
}

/// librdkafka debug contexts for the producers and group members (its `debug` setting), from
/// `RIVULET_NEMESIS_CLIENT_DEBUG`, e.g. `eos,cgrp,protocol`; unset, they log only librdkafka's
/// errors.
const CLIENT_DEBUG_ENV: &str = "RIVULET_NEMESIS_CLIENT_DEBUG";

/// A group member's context: librdkafka's log lines go to stderr with a wall-clock time, so they
/// can be lined up with the brokers' logs; acknowledged commits go to the shared [`CommitLog`].
struct MemberLog {
    client: String,
    commits: Arc<CommitLog>,
}

impl ClientContext for MemberLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        kafka::print_client_log(&self.client, level, fac, message);
    }
}

impl ConsumerContext for MemberLog {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if result.is_ok() {
            self.commits.acknowledged(offsets);
        }
    }
}

/// Every offset commit the brokers acknowledged to a group member, in the order the members
/// learned of them: (when, partition, offset).
#[derive(Default)]
struct CommitLog {
    acks: Mutex<Vec<(Instant, i32, i64)>>,
}

impl CommitLog {
    fn acknowledged(&self, offsets: &TopicPartitionList) {
        let now = Instant::now();
        let mut acks = self.acks.lock().expect("commit log");
        for e in offsets.elements() {
            if let (Ok(()), Offset::Offset(offset)) = (e.error(), e.offset()) {
                acks.push((now, e.partition(), offset));
            }
        }
    }

    /// The committed offsets `reads` saw that are lower than one already acknowledged when the
    /// read began, unless a member was acknowledged that very offset later (its commit landed
    /// after the higher one and the read raced its acknowledgment).
    fn regressions(&self, reads: &[OffsetRead]) -> Vec<String> {
        let acks = self.acks.lock().expect("commit log");
        // Per partition: acknowledgments in time order, and when each offset was last acked.
        let mut timeline: BTreeMap<i32, Vec<(Instant, i64)>> = BTreeMap::new();
        let mut last_acked: BTreeMap<(i32, i64), Instant> = BTreeMap::new();
        for &(at, partition, offset) in acks.iter() {
            timeline.entry(partition).or_default().push((at, offset));
            last_acked.insert((partition, offset), at);
        }
        let mut found = Vec::new();
        for read in reads {
            let Some(acked) = timeline.get(&read.partition) else {
                continue;
            };
            let before = acked.partition_point(|(at, _)| *at < read.start);
            let Some(&(_, latest)) = before.checked_sub(1).and_then(|i| acked.get(i)) else {
                continue;
            };
            let acked_later = last_acked
                .get(&(read.partition, read.offset))
                .is_some_and(|at| *at >= read.start);
            if read.offset < latest && !acked_later {
                let line = format!(
                    "partition {}: committed offset {} read after {latest} was acknowledged",
                    read.partition, read.offset
                );
                if !found.contains(&line) {
                    found.push(line);
                }
            }
        }
        found
    }
}

/// Two consumers in one group, committing what they read every second.
struct Group {
    stop: Arc<AtomicBool>,
    consumed: Arc<AtomicUsize>,
    errors: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl Group {
    fn start(bootstrap: &str, topic: &str, group: &str, commits: &Arc<CommitLog>) -> Group {
        let stop = Arc::new(AtomicBool::new(false));
        let consumed = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let threads = (0..CONSUMERS)
            .map(|n| {
                let client = format!("nemesis-consumer-{n}");
                let mut config = kafka::config(
                    bootstrap,
                    &[
                        ("group.id", group),
                        ("client.id", &client),
                        ("enable.auto.commit", "false"),
                        ("auto.offset.reset", "earliest"),
                        ("session.timeout.ms", "6000"),
                        ("heartbeat.interval.ms", "1000"),
                        ("fetch.wait.max.ms", "200"),
                    ],
                );
                if let Ok(debug) = std::env::var(CLIENT_DEBUG_ENV) {
                    config
                        .set("debug", debug)
                        .set_log_level(RDKafkaLogLevel::Debug);
                }
                let consumer: BaseConsumer<MemberLog> = config
                    .create_with_context(MemberLog {
                        client,
                        commits: commits.clone(),
                    })
                    .expect("group consumer");
                consumer.subscribe(&[topic]).expect("subscribe");
                let (stop, consumed, errors) = (stop.clone(), consumed.clone(), errors.clone());
                std::thread::spawn(move || {
                    let mut last_commit = Instant::now();
                    let mut uncommitted = false;
                    while !stop.load(Ordering::SeqCst) {
                        match consumer.poll(Duration::from_millis(100)) {
                            Some(Ok(_)) => {
                                consumed.fetch_add(1, Ordering::Relaxed);
                                uncommitted = true;
                            }
                            Some(Err(_)) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                            None => {}
                        }
                        if uncommitted && last_commit.elapsed() > Duration::from_secs(1) {
                            // Failures (coordinator moving, rebalance) are retried next second.
                            let _ = consumer.commit_consumer_state(CommitMode::Async);
                            last_commit = Instant::now();
                            uncommitted = false;
                        }
                    }
                    // Not a synchronous commit: librdkafka waits for one without bound while the
                    // member has no coordinator.
                    let _ = consumer.commit_consumer_state(CommitMode::Async);
                    let _ = consumer.poll(Duration::from_millis(500));
                })
            })
            .collect();
        Group {
            stop,
            consumed,
            errors,
            threads,
        }
    }

    fn consumed_so_far(&self) -> usize {
        self.consumed.load(Ordering::SeqCst)
    }

    /// Stops the members; returns records consumed, consumer errors, and how many members did
    /// not stop within [`CONSUMER_STOP_BOUND`] (left running: closing them could block too).
    fn stop(self) -> (usize, usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + CONSUMER_STOP_BOUND;
        while Instant::now() < deadline && !self.threads.iter().all(|t| t.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut stuck = 0;
        for t in self.threads {
            if t.is_finished() {
                t.join().expect("consumer thread");
            } else {
                stuck += 1;
            }
        }
        (
            self.consumed.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
            stuck,
        )
    }
}

/// One committed offset the monitor read, and when the read began.
struct OffsetRead {
    start: Instant,
    partition: i32,
    offset: i64,
}

/// Polls the group's committed offsets (OffsetFetch, outside the group), keeping every read for
/// [`CommitLog::regressions`] and the highest offset seen per partition.
struct OffsetMonitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    highest: Arc<Mutex<BTreeMap<i32, i64>>>,
    reads: Arc<Mutex<Vec<OffsetRead>>>,
}

impl OffsetMonitor {
    fn start(bootstrap: &str, topic: &str, group: &str) -> OffsetMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let highest = Arc::new(Mutex::new(BTreeMap::new()));
        let reads = Arc::new(Mutex::new(Vec::new()));
        let probe: BaseConsumer = kafka::config(bootstrap, &[("group.id", group)])
            .create()
            .expect("offset monitor");
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition(topic, p);
        }
        let (s, h, r) = (stop.clone(), highest.clone(), reads.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let start = Instant::now();
                if let Ok(committed) = probe.committed_offsets(tpl.clone(), Duration::from_secs(5))
                {
                    let mut highest = h.lock().expect("offsets");
                    let mut reads = r.lock().expect("reads");
                    for e in committed.elements() {
                        let Offset::Offset(offset) = e.offset() else {
                            continue;
                        };
                        let seen = highest.entry(e.partition()).or_insert(offset);
                        *seen = (*seen).max(offset);
                        reads.push(OffsetRead {
                            start,
                            partition: e.partition(),
                            offset,
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        OffsetMonitor {
            stop,
            thread,
            highest,
            reads,
        }
    }

    /// Stops polling; returns the highest committed offsets and every read.
    fn stop(self) -> (BTreeMap<i32, i64>, Vec<OffsetRead>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("offset monitor thread");
        let highest = std::mem::take(&mut *self.highest.lock().expect("offsets"));
        let reads = std::mem::take(&mut *self.reads.lock().expect("reads"));
        (highest, reads)
    }
}

/// One fault applied: what, to whom, and from its start to the end of its healing.
#[derive(Debug)]
struct Episode {
    fault: Fault,
    targets: Vec<usize>,
    start: Instant,
    end: Instant,
    /// Brokers that exited on their own during the fault (found dead at healing).
    exited: Vec<usize>,
}

/// Applies faults and heals them; knows which brokers are paused.
struct Nemesis<'a> {
    cluster: &'a mut Cluster,
    probe: BaseConsumer,
    topic: String,
    rng: Rng,
}

impl Nemesis<'_> {
    /// The broker leading most partitions, if metadata answers.
    fn busiest_leader(&self) -> Option<usize> {
        let states = partition_states(&self.probe, &self.topic)?;
        let mut counts = [0usize; BROKERS];
        for (leader, _) in states.values() {
            if let Ok(l) = usize::try_from(*leader) {
                if l < BROKERS {
                    counts[l] += 1;
                }
            }
        }
        (0..BROKERS).max_by_key(|i| counts[*i])
    }

    fn controller(&self) -> Option<usize> {
        let all: Vec<usize> = (0..BROKERS).collect();
        self.cluster.active_controller(&all)
    }

    fn any_broker(&mut self) -> usize {
        self.rng.below(BROKERS as u64) as usize
    }

    /// kill -9 targets: half the time the busiest leader, a third the active controller.
    fn kill_target(&mut self) -> usize {
        let roll = self.rng.below(100);
        let biased = if roll < 50 {
            self.busiest_leader()
        } else if roll < 80 {
            self.controller()
        } else {
            None
        };
        biased.unwrap_or_else(|| self.any_broker())
    }

    fn restart_dead(&mut self, among: &[usize]) -> Vec<usize> {
        let mut exited = Vec::new();
        for &i in among {
            if !self.cluster.is_running(i) {
                exited.push(i);
                self.cluster.restart(i);
            }
        }
        exited
    }

    /// Applies `fault`, holds it for `hold`, heals it.
    fn run(&mut self, fault: Fault, hold: Duration) -> Episode {
        let start = Instant::now();
        let targets: Vec<usize>;
        let mut exited = Vec::new();
        match fault {
            Fault::Kill => {
                let i = self.kill_target();
                targets = vec![i];
                self.cluster.kill(i);
                std::thread::sleep(hold);
                self.cluster.restart(i);
            }
            Fault::Pause => {
                let i = if self.rng.chance(50) {
                    self.busiest_leader().unwrap_or(0)
                } else {
                    self.any_broker()
                };
                targets = vec![i];
                self.cluster.pause(i);
                std::thread::sleep(hold);
                self.cluster.resume(i);
            }
            Fault::TwoDown => {
                let a = self.kill_target();
                let b = (a + 1 + self.rng.below(BROKERS as u64 - 1) as usize) % BROKERS;
                targets = vec![a, b];
                self.cluster.kill(a);
                self.cluster.kill(b);
                std::thread::sleep(hold);
                self.cluster.restart(a);
                self.cluster.restart(b);
            }
            Fault::Isolate | Fault::IsolateController => {
                let i = match fault {
                    Fault::IsolateController => self.controller(),
                    _ => None,
                }
                .unwrap_or_else(|| self.any_broker());
                targets = vec![i];
                self.cluster.isolate(i);
                std::thread::sleep(hold);
                self.cluster.heal_all();
                exited = self.restart_dead(&targets);
            }
            Fault::Bridge => {
                // The bridge (the one still talking to both sides) is the active controller
                // half the time.
                let bridge = if self.rng.chance(50) {
                    self.controller().unwrap_or(0)
                } else {
                    self.any_broker()
                };
                let (a, b) = ((bridge + 1) % BROKERS, (bridge + 2) % BROKERS);
                targets = vec![a, b];
                self.cluster.cut(a, b);
                std::thread::sleep(hold);
                self.cluster.heal_all();
                exited = self.restart_dead(&targets);
            }
            Fault::Latency => {
                let i = self.any_broker();
                let delay = self.rng.millis(20, 250);
                targets = vec![i];
                self.cluster.set_latency(i, delay);
                std::thread::sleep(hold);
                self.cluster.set_latency(i, Duration::ZERO);
            }
            Fault::DiskFull => {
                let i = if self.rng.chance(50) {
                    self.busiest_leader().unwrap_or(0)
                } else {
                    self.any_broker()
                };
                targets = vec![i];
                let log_start = self.cluster.log_len(i);
                let filled = self.cluster.fill_disk(i);
                eprintln!("nemesis: broker {i} data dir filled ({filled} bytes of ballast)");
                std::thread::sleep(hold);
                self.cluster.free_disk(i);
                // A write that failed just before the space came back still takes the log dir
                // offline; give that a moment to happen. A broker whose log dir went offline
                // is on its way out (controlled shutdown, then exit): wait for it, so its exit
                // counts as this fault's.
                std::thread::sleep(DISK_EXIT_GRACE);
                if self
                    .cluster
                    .log_since(i, log_start)
                    .contains("log dir failed; taking it offline")
                {
                    let deadline = Instant::now() + DISK_EXIT_BOUND;
                    while self.cluster.is_running(i) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                exited = self.restart_dead(&targets);
            }
        }
        Episode {
            fault,
            targets,
            start,
            end: Instant::now(),
            exited,
        }
    }
}

/// Everything one seed's run found.
#[derive(Debug, Default)]
struct Outcome {
    violations: Vec<String>,
}

fn run(seed: u64, duration: Duration, faults: &[Fault]) -> Outcome {
    println!(
        "nemesis: seed {seed}, {}s of faults from [{}]",
        duration.as_secs(),
        faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut out = Outcome::default();
    let mut cluster = Cluster::start(
        ClusterOptions::new(BROKERS)
            .data_dir_size(DATA_DIR_BYTES)
            .property("min.insync.replicas", 2)
            .property("default.replication.factor", 3),
    );
    let bootstrap = cluster.bootstrap();
    let topic = format!("nemesis-{seed}");
    let group = format!("nemesis-group-{seed}");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(kafka::create_topic(
            &bootstrap,
            &topic,
            PARTITIONS,
            BROKERS as i32,
            &[("min.insync.replicas", "2")],
        ));
    let client_debug = std::env::var(CLIENT_DEBUG_ENV).ok();
    let producers: Vec<Workload> = (0..PRODUCERS)
        .map(|n| {
            let client = format!("nemesis-producer-{n}");
            let mut settings = vec![
                ("message.timeout.ms", "120000"),
                ("client.id", client.as_str()),
                // A one-line state summary every 10 s on stderr (see `kafka::StderrLog`), so a
                // producer that stops getting acknowledgements shows where its messages sit.
                ("statistics.interval.ms", "10000"),
            ];
            if let Some(debug) = &client_debug {
                settings.push(("debug", debug.as_str()));
            }
            Workload::start_tagged(
                &bootstrap,
                &topic,
                PARTITIONS,
                RATE,
                &settings,
                &format!("p{n}"),
            )
        })
        .collect();
    let commits = Arc::new(CommitLog::default());
    let consumers = Group::start(&bootstrap, &topic, &group, &commits);
    let monitor = OffsetMonitor::start(&bootstrap, &topic, &group);
    assert!(
        wait_until(Duration::from_secs(30), || producers
            .iter()
            .all(|p| p.acked_so_far() > 100)),
        "producers made no progress before the faults"
    );

    let probe: BaseConsumer = kafka::config(&bootstrap, &[("group.id", "nemesis-probe")])
        .create()
        .expect("metadata probe");
    let mut nemesis = Nemesis {
        cluster: &mut cluster,
        probe,
        topic: topic.clone(),
        rng: Rng(seed),
    };
    let faults_end = Instant::now() + duration;
    let mut episodes = Vec::new();
    while Instant::now() < faults_end {
        let fault = faults[nemesis.rng.below(faults.len() as u64) as usize];
        let hold = nemesis.rng.millis(2_000, 7_000);
        let rest = nemesis.rng.millis(1_000, 4_000);
        let e = nemesis.run(fault, hold);
        println!(
            "nemesis: {:>18} on {:?} for {:.1}s{}",
            fault.name(),
            e.targets,
            e.end.duration_since(e.start).as_secs_f64(),
            if e.exited.is_empty() {
                String::new()
            } else {
                format!(" (exited on its own: {:?}, restarted)", e.exited)
            }
        );
        // A broker that died without being killed crashed; a full disk may legitimately make
        // one exit (its log dir offline), which `run` already restarted.
        for i in 0..BROKERS {
            if !nemesis.cluster.is_running(i) {
                out.violations.push(format!(
                    "broker {i} exited during {} on {:?} ({}):\n{}\ndata dir:\n{}",
                    fault.name(),
                    e.targets,
                    nemesis.cluster.process_state(i),
                    nemesis.cluster.log_tail(i, 30),
                    nemesis.cluster.data_dir_usage(i)
                ));
                nemesis.cluster.restart(i);
            }
        }
        episodes.push(e);
        // Let the cluster settle a little (up to `rest`, less once the ISR is full again).
        let settle_until = Instant::now() + rest;
        std::thread::sleep(Duration::from_millis(500));
        while Instant::now() < settle_until && !full_isr(&nemesis.probe, &topic) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // Heal everything: no network fault, nobody paused, every broker running.
    let healed_at = Instant::now();
    cluster.heal_all();
    for i in 0..BROKERS {
        cluster.resume(i);
        if !cluster.is_running(i) {
            cluster.restart(i);
        }
    }
    for i in 0..BROKERS {
        cluster.wait_ready(i, Duration::from_secs(60));
    }
    let probe: BaseConsumer = kafka::config(&bootstrap, &[("group.id", "nemesis-probe")])
        .create()
        .expect("metadata probe");
    let isr_ok = wait_until(ISR_RECOVERY_BOUND, || full_isr(&probe, &topic));
    let isr_time = healed_at.elapsed();
    if !isr_ok {
        out.violations.push(format!(
            "ISR not full {}s after the faults stopped: {:?}",
            ISR_RECOVERY_BOUND.as_secs(),
            partition_states(&probe, &topic)
        ));
    }
    // The producers are still sending: each gets acknowledgements again, and a live group
    // consumes some of it.
    let acked_at_isr: Vec<usize> = producers.iter().map(Workload::acked_so_far).collect();
    let consumed_at_isr = consumers.consumed_so_far();
    let producers_resumed = wait_until(GROUP_RESUME_BOUND, || {
        producers
            .iter()
            .zip(&acked_at_isr)
            .all(|(p, at_isr)| p.acked_so_far() > *at_isr)
    });
    if !producers_resumed {
        let stuck: Vec<usize> = producers
            .iter()
            .zip(&acked_at_isr)
            .enumerate()
            .filter(|(_, (p, at_isr))| p.acked_so_far() <= **at_isr)
            .map(|(n, _)| n)
            .collect();
        out.violations.push(format!(
            "producers {stuck:?} got no acknowledgement in the {}s after the ISR was full again",
            GROUP_RESUME_BOUND.as_secs()
        ));
    }
    let group_resumed = wait_until(GROUP_RESUME_BOUND, || {
        consumers.consumed_so_far() > consumed_at_isr
    });
    if !group_resumed {
        out.violations.push(format!(
            "the consumer group consumed nothing in the {}s after the ISR was full again \
             ({consumed_at_isr} records consumed during the faults)",
            GROUP_RESUME_BOUND.as_secs()
        ));
    }
    // A little more traffic on the healed cluster, then drain.
    std::thread::sleep(Duration::from_secs(2));
    let acks: Vec<Acks> = producers.into_iter().map(Workload::stop).collect();
    let (group_consumed, group_errors, stuck_members) = consumers.stop();
    if stuck_members > 0 {
        out.violations.push(format!(
            "{stuck_members} group members did not stop within {}s",
            CONSUMER_STOP_BOUND.as_secs()
        ));
    }
    let (committed, reads) = monitor.stop();
    out.violations.extend(commits.regressions(&reads));

    let (records, complete) =
        kafka::read_to_end(&bootstrap, &topic, PARTITIONS, Duration::from_secs(90));
    if !complete {
        out.violations
            .push("could not read every partition up to its high watermark".to_string());
    }
    let acked: Vec<&Acks> = acks.iter().collect();
    let found = check(&records, &acked);
    for ((tag, p), lost) in &found.lost {
        out.violations.push(format!(
            "{} acknowledged records of {} lost from partition {p}, e.g. {:?}",
            lost.len(),
            tag.as_deref().unwrap_or("-"),
            &lost[..lost.len().min(10)]
        ));
    }
    // A duplicate is the broker's fault only if both copies carry one producer epoch; a copy
    // under a later epoch of the same producer is the client sending it again (see
    // `ProducerIdentity::bumped_to`).
    let leaders = kafka::leaders(&bootstrap, &topic);
    let mut resent = Vec::new();
    for d in &found.duplicates {
        let origin = |offset| {
            let leader = *leaders.get(&d.stream.1)?;
            producer_of(
                cluster.client_address(usize::try_from(leader).ok()?),
                &topic,
                d.stream.1,
                offset,
            )
            .ok()
            .flatten()
        };
        match (origin(d.first_offset), origin(d.offset)) {
            (Some(first), Some(again)) if first.bumped_to(again) => resent.push(format!(
                "{d} (producer {}, epochs {} and {})",
                first.id, first.epoch, again.epoch
            )),
            (first, again) => out.violations.push(format!(
                "record duplicated by the broker: {d}, written by {first:?} and {again:?}"
            )),
        }
    }
    for (what, list) in [
        ("out of order", &found.reordered),
        ("malformed", &found.malformed),
    ] {
        if !list.is_empty() {
            out.violations.push(format!(
                "{} records {what}, e.g. {:?}",
                list.len(),
                &list[..list.len().min(10)]
            ));
        }
    }

    // Summary.
    let total_acked: usize = acks.iter().map(Acks::total).sum();
    let failures: usize = acks.iter().map(|a| a.failures).sum();
    let mut ack_times: Vec<Instant> = acks.iter().flat_map(|a| a.ack_times.clone()).collect();
    ack_times.sort();
    let all_acks = Acks {
        ack_times,
        ..Acks::default()
    };
    let mut by_kind: BTreeMap<Fault, (usize, Duration, usize)> = BTreeMap::new();
    for e in &episodes {
        let entry = by_kind.entry(e.fault).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(all_acks.longest_stall(e.start, e.end));
        entry.2 += e.exited.len();
    }
    println!("nemesis: seed {seed} summary");
    println!("  faults applied: {}", episodes.len());
    for (fault, (count, stall, exited)) in &by_kind {
        println!(
            "  {:>18}: {count:>3} times, longest produce stall {:.1}s{}",
            fault.name(),
            stall.as_secs_f64(),
            if *exited > 0 {
                format!(", broker exited on its own {exited} times")
            } else {
                String::new()
            }
        );
    }
    println!(
        "  records acknowledged {total_acked}, failed to deliver {failures}{}, read back {}, \
         lost {}, duplicated {} ({} under one producer epoch, {} sent again under a new \
         epoch), out of order {}",
        acks.iter()
            .find_map(|a| a.first_error.as_ref())
            .map(|e| format!(" (first error: {e})"))
            .unwrap_or_default(),
        found.consumed,
        found.lost_count(),
        found.duplicates.len(),
        found.duplicates.len() - resent.len(),
        resent.len(),
        found.reordered.len()
    );
    if !resent.is_empty() {
        println!(
            "  sent again by a producer under a new epoch (librdkafka #4953; not deduplicable \
             by any broker): {}",
            resent.join(", ")
        );
    }
    println!(
        "  group consumed {group_consumed} records ({group_errors} consumer errors), \
         highest committed offsets {committed:?}"
    );
    println!(
        "  back to full ISR {:.1}s after the faults stopped",
        isr_time.as_secs_f64()
    );
    if !out.violations.is_empty() {
        for i in 0..BROKERS {
            println!(
                "---- broker {i} log (tail) ----\n{}",
                cluster.log_tail(i, 80)
            );
            // The fixture's temp dir goes with the cluster: keep the whole logs for a look.
            let kept = std::env::temp_dir().join(format!("nemesis-{seed}-broker-{i}.log"));
            if std::fs::copy(cluster.log_path(i), &kept).is_ok() {
                println!("broker {i} log kept at {}", kept.display());
            }
        }
    }
    out
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nemesis: {e}");
            return ExitCode::from(2);
        }
    };
    if args.list_only {
        return ExitCode::SUCCESS;
    }
    let mut failed = Vec::new();
    for &seed in &args.seeds {
        let outcome = run(seed, args.duration, &args.faults);
        for v in &outcome.violations {
            println!("nemesis: VIOLATION (seed {seed}): {v}");
        }
        if !outcome.violations.is_empty() {
            failed.push(seed);
        }
    }
    if failed.is_empty() {
        println!("nemesis: all invariants held for seeds {:?}", args.seeds);
        return ExitCode::SUCCESS;
    }
    for seed in failed {
        println!(
            "nemesis: FAILED seed {seed}; replay with: cargo test --test nemesis -- --seed {seed} \
             --duration {}s",
            args.duration.as_secs()
        );
    }
    ExitCode::FAILURE
}

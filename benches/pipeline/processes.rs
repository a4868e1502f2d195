//! Clients as separate processes, the way applications run them: the bench binary re-executes
//! itself (`--rivulet-bench-child`) as producer processes, each holding its share of the
//! producers (one librdkafka instance and connection set per producer) offered their records
//! every millisecond, and as consumer processes holding the group's members.
//!
//! A child reports its running totals on stdout every 20 ms (`progress ...`), takes `measure
//! <µs>` and `stop` on stdin, and on `stop` (or when its stdin closes) flushes, writes its latency
//! samples (`produce ...`, `e2e ...`) and `done`, and exits.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::broker_cpu::process_cpu_ns;
use crate::workload::{self, Pacing, Plan, Rate, Stats};

/// The first argument that makes the bench binary a client process.
pub const CHILD_FLAG: &str = "--rivulet-bench-child";
/// Producer processes (the producers are split evenly between them).
const PRODUCER_PROCESSES: usize = 4;
/// Consumer processes (the group's members are split evenly between them).
const CONSUMER_PROCESSES: usize = 2;
/// How often a child's producers are offered their due records (RIVULET_BENCH_CHILD_TICK_MS,
/// default 1): close to steady arrival, so librdkafka's own linger.ms decides when requests go
/// out, as in an application.
fn child_tick() -> Duration {
    let ms = std::env::var("RIVULET_BENCH_CHILD_TICK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    Duration::from_millis(ms)
}
/// Niceness of the client processes (RIVULET_BENCH_CLIENT_NICE, default 10). Clients and
/// brokers share this machine's cores, where in a deployment they do not: at equal priority the
/// producers' several hundred librdkafka threads outnumber the brokers' few, and once acks=all
/// slows, librdkafka's broker threads (at their in-flight limit with linger expired) spin and
/// take the cores the brokers need to catch up.
fn client_nice() -> i32 {
    std::env::var("RIVULET_BENCH_CLIENT_NICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// How often a child reports its totals.
const PROGRESS_EVERY: Duration = Duration::from_millis(20);
/// Latency samples per output line.
const SAMPLES_PER_LINE: usize = 4096;

/// What a client process runs.
#[derive(Debug, Clone, Copy)]
enum Role {
    Producers,
    Consumers,
}

/// A client process's whole instruction, passed as its arguments.
#[derive(Debug, Clone)]
struct ChildSpec {
    role: Role,
    bootstrap: String,
    topic: String,
    clients: usize,
    payload: usize,
    rate: Rate,
    settings: Vec<(String, String)>,
}

impl ChildSpec {
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            CHILD_FLAG.to_string(),
            match self.role {
                Role::Producers => "producers",
                Role::Consumers => "consumers",
            }
            .to_string(),
            self.bootstrap.clone(),
            self.topic.clone(),
            self.clients.to_string(),
            self.payload.to_string(),
            match self.rate {
                Rate::Fixed(r) => r.to_string(),
                Rate::Unlimited => "unlimited".to_string(),
            },
        ];
        args.extend(self.settings.iter().map(|(k, v)| format!("{k}={v}")));
        args
    }

    /// Parses the arguments after [`CHILD_FLAG`].
    fn parse(args: &[String]) -> Option<ChildSpec> {
        let [role, bootstrap, topic, clients, payload, rate, settings @ ..] = args else {
            return None;
        };
        Some(ChildSpec {
            role: match role.as_str() {
                "producers" => Role::Producers,
                "consumers" => Role::Consumers,
                _ => return None,
            },
            bootstrap: bootstrap.clone(),
            topic: topic.clone(),
            clients: clients.parse().ok()?,
            payload: payload.parse().ok()?,
            rate: match rate.as_str() {
                "unlimited" => Rate::Unlimited,
                r => Rate::Fixed(r.parse().ok()?),
            },
            settings: settings
                .iter()
                .map(|s| {
                    s.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect::<Option<_>>()?,
        })
    }
}

/// The counters a child reports, in the order of its `progress` line.
fn totals(stats: &Stats) -> [u64; 6] {
    [
        stats.offered.load(Ordering::Relaxed),
        stats.acked.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        stats.consumed.load(Ordering::Relaxed),
        stats.max_lag_us.load(Ordering::Relaxed),
        stats.assigned.load(Ordering::Relaxed),
    ]
}

fn write_progress(stats: &Stats) {
    let t = totals(stats);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "progress {} {} {} {} {} {}",
        t[0], t[1], t[2], t[3], t[4], t[5]
    );
    let _ = out.flush();
}

fn write_samples(kind: &str, samples: &Mutex<Vec<u32>>) {
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    let mut out = std::io::stdout().lock();
    for chunk in samples.chunks(SAMPLES_PER_LINE) {
        let line: Vec<String> = chunk.iter().map(u32::to_string).collect();
        let _ = writeln!(out, "{kind} {}", line.join(" "));
    }
    let _ = out.flush();
}

/// Runs a client process; `args` follow [`CHILD_FLAG`].
pub fn child_main(args: &[String]) {
    let Some(spec) = ChildSpec::parse(args) else {
        eprintln!("bench client: bad arguments {args:?}");
        std::process::exit(2);
    };
    // SAFETY: nice(2) only changes this process's scheduling priority.
    if unsafe { libc::nice(client_nice()) } == -1 {
        eprintln!("bench client: could not lower its priority");
    }
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = match spec.role {
        Role::Producers => workload::start_producers(
            &spec.bootstrap,
            &spec.topic,
            spec.clients,
            spec.payload,
            Pacing {
                rate: spec.rate,
                tick: child_tick(),
            },
            &spec.settings,
            &stats,
            &stop,
        ),
        Role::Consumers => workload::start_consumers(
            &spec.bootstrap,
            &spec.topic,
            spec.clients,
            &spec.settings,
            stats.clone(),
            stop.clone(),
        ),
    };
    let reporting = Arc::new(AtomicBool::new(true));
    let reporter = {
        let (stats, reporting) = (stats.clone(), reporting.clone());
        std::thread::spawn(move || {
            while reporting.load(Ordering::SeqCst) {
                write_progress(&stats);
                std::thread::sleep(PROGRESS_EVERY);
            }
        })
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.split_once(' ') {
            Some(("measure", from)) => {
                if let Ok(from) = from.trim().parse() {
                    stats.measure_from(from);
                }
            }
            _ if line.trim() == "stop" => break,
            _ => eprintln!("bench client: unknown command {line:?}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads.drain(..) {
        let _ = t.join();
    }
    reporting.store(false, Ordering::SeqCst);
    let _ = reporter.join();
    write_progress(&stats);
    write_samples("produce", &stats.produce_latency_us);
    write_samples("e2e", &stats.e2e_latency_us);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "done");
    let _ = out.flush();
}

/// Folds one child's stdout into the shared `stats`: its totals as deltas, its samples appended.
fn absorb(stdout: impl BufRead, stats: &Stats) {
    let mut last = [0u64; 6];
    for line in stdout.lines() {
        let Ok(line) = line else { return };
        let (kind, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match kind {
            "progress" => {
                let now: Vec<u64> = rest
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let Ok(now) = <[u64; 6]>::try_from(now) else {
                    continue;
                };
                let d = |i: usize| now[i].wrapping_sub(last[i]);
                stats.offered.fetch_add(d(0), Ordering::Relaxed);
                stats.acked.fetch_add(d(1), Ordering::Relaxed);
                stats.failed.fetch_add(d(2), Ordering::Relaxed);
                stats.consumed.fetch_add(d(3), Ordering::Relaxed);
                stats.max_lag_us.fetch_max(now[4], Ordering::Relaxed);
                stats.assigned.fetch_add(d(5), Ordering::SeqCst);
                last = now;
            }
            "produce" | "e2e" => {
                let target = if kind == "produce" {
                    &stats.produce_latency_us
                } else {
                    &stats.e2e_latency_us
                };
                target.lock().unwrap_or_else(|e| e.into_inner()).extend(
                    rest.split_whitespace()
                        .filter_map(|v| v.parse::<u32>().ok()),
                );
            }
            "done" => return,
            _ => {}
        }
    }
}

struct ChildProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ChildProcess {
    fn spawn(spec: &ChildSpec, stats: &Arc<Stats>) -> ChildProcess {
        let exe = std::env::current_exe().expect("bench binary path");
        let mut child = Command::new(exe)
            .args(spec.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bench client process");
        let stdout = child.stdout.take().expect("piped stdout");
        let stats = stats.clone();
        let reader = std::thread::spawn(move || absorb(BufReader::new(stdout), &stats));
        ChildProcess {
            stdin: child.stdin.take(),
            child,
            reader: Some(reader),
        }
    }

    fn tell(&mut self, command: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{command}");
            let _ = stdin.flush();
        }
    }

    /// Waits for a child told to stop: its last report, then its exit.
    fn finish(&mut self) {
        self.stdin = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The client processes of one run, their totals folded into `stats`.
pub struct ProcessClients {
    children: Vec<ChildProcess>,
    pub stats: Arc<Stats>,
}

/// Splits `total` into `parts` near-equal shares, dropping empty ones.
fn shares(total: usize, parts: usize) -> Vec<usize> {
    let parts = parts.clamp(1, total.max(1));
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .filter(|n| *n > 0)
        .collect()
}

impl ProcessClients {
    /// Starts the consumer processes and, once the group owns every partition, the producer
    /// processes; a fixed rate is split between producers in proportion to their number.
    pub fn start(plan: &Plan) -> ProcessClients {
        let stats = Arc::new(Stats::default());
        let spec =
            |role: Role, clients: usize, rate: Rate, settings: &[(String, String)]| ChildSpec {
                role,
                bootstrap: plan.bootstrap.clone(),
                topic: plan.topic.clone(),
                clients,
                payload: plan.payload,
                rate,
                settings: settings.to_vec(),
            };
        let mut children: Vec<ChildProcess> = shares(plan.consumers, CONSUMER_PROCESSES)
            .into_iter()
            .map(|n| {
                let consumers = spec(Role::Consumers, n, Rate::Unlimited, &plan.client_settings);
                ChildProcess::spawn(&consumers, &stats)
            })
            .collect();
        workload::wait_assigned(&stats, plan.partitions);
        children.extend(
            shares(plan.producers, PRODUCER_PROCESSES)
                .into_iter()
                .map(|n| {
                    let rate = match plan.rate {
                        Rate::Fixed(total) => Rate::Fixed(
                            (u64::from(total) * n as u64 / plan.producers as u64) as u32,
                        ),
                        Rate::Unlimited => Rate::Unlimited,
                    };
                    ChildProcess::spawn(
                        &spec(Role::Producers, n, rate, &plan.all_producer_settings()),
                        &stats,
                    )
                }),
        );
        ProcessClients { children, stats }
    }

    /// Latencies and lag from now on count records sent from now on, in every process.
    pub fn start_measuring(&mut self) {
        let from = self.stats.start_measuring();
        for c in &mut self.children {
            c.tell(&format!("measure {from}"));
        }
    }

    /// CPU time of every client process and this one, in nanoseconds.
    pub fn cpu_ns(&self) -> u64 {
        process_cpu_ns(std::process::id())
            + self
                .children
                .iter()
                .map(|c| process_cpu_ns(c.child.id()))
                .sum::<u64>()
    }

    /// Stops every process (producers flush first) and collects their samples.
    pub fn stop(mut self) {
        for c in &mut self.children {
            c.tell("stop");
        }
        for c in &mut self.children {
            c.finish();
        }
    }
}

//! A continuous, checkable produce workload: idempotent acks=all producers writing numbered
//! records to every partition, remembering exactly which records were acknowledged and when,
//! so a test can prove that nothing acknowledged was lost and measure client stalls.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::FutureRecord;

use super::kafka::{self, Record};

/// What the workload saw.
#[derive(Debug, Default)]
pub struct Acks {
    /// partition -> acknowledged sequence numbers.
    pub acked: BTreeMap<i32, BTreeSet<u64>>,
    /// Completion time of every acknowledgement, in order.
    pub ack_times: Vec<Instant>,
    pub failures: usize,
    pub first_error: Option<String>,
}

impl Acks {
    pub fn total(&self) -> usize {
        self.acked.values().map(|s| s.len()).sum()
    }

    /// The longest time without any acknowledgement, between `from` and `to`.
    pub fn longest_stall(&self, from: Instant, to: Instant) -> Duration {
        let mut times: Vec<Instant> = self
            .ack_times
            .iter()
            .copied()
            .filter(|t| *t >= from && *t <= to)
            .collect();
        times.sort();
        let mut worst = Duration::ZERO;
        let mut prev = from;
        for t in times {
            worst = worst.max(t.duration_since(prev));
            prev = t;
        }
        worst.max(to.saturating_duration_since(prev))
    }
}

/// A running workload; `stop()` ends it and returns what was acknowledged.
pub struct Workload {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Acks>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Workload {
    /// Produces about `rate` records/s round-robin over `partitions` partitions.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        rate: u32,
        extra: &[(&str, &str)],
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Acks::default()));
        let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (s, a) = (stop.clone(), acks.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut settings: Vec<(&str, &str)> = vec![
                    ("enable.idempotence", "true"),
                    ("acks", "all"),
                    ("linger.ms", "1"),
                    ("retry.backoff.ms", "20"),
                    ("retry.backoff.max.ms", "200"),
                    ("message.timeout.ms", "60000"),
                    ("topic.metadata.refresh.interval.ms", "1000"),
                ];
                for (k, v) in &extra {
                    settings.push((k.as_str(), v.as_str()));
                }
                let producer = kafka::producer(&bootstrap, &settings);
                let mut next: BTreeMap<i32, u64> = BTreeMap::new();
                let mut tick = tokio::time::interval(Duration::from_micros(
                    1_000_000 / u64::from(rate.max(1)),
                ));
                let mut pending = tokio::task::JoinSet::new();
                let mut i: i64 = 0;
                while !s.load(Ordering::SeqCst) {
                    tick.tick().await;
                    let partition = (i % i64::from(partitions)) as i32;
                    i += 1;
                    let seq = {
                        let n = next.entry(partition).or_insert(0);
                        *n += 1;
                        *n
                    };
                    let value = format!("{partition}:{seq}");
                    let record = FutureRecord::<(), _>::to(&topic)
                        .partition(partition)
                        .payload(&value);
                    let Ok(delivery) = producer.send_result(record) else {
                        continue;
                    };
                    let a = a.clone();
                    pending.spawn(async move {
                        let outcome = delivery.await;
                        let mut acks = a.lock().expect("acks");
                        match outcome {
                            Ok(Ok(_)) => {
                                acks.acked.entry(partition).or_default().insert(seq);
                                acks.ack_times.push(Instant::now());
                            }
                            Ok(Err((e, _))) => {
                                acks.failures += 1;
                                acks.first_error.get_or_insert_with(|| e.to_string());
                            }
                            Err(_) => acks.failures += 1,
                        }
                    });
                    while pending.try_join_next().is_some() {}
                }
                while pending.join_next().await.is_some() {}
            });
        });
        Workload {
            stop,
            acks,
            thread: Some(thread),
        }
    }

    /// Acknowledged records so far.
    pub fn acked_so_far(&self) -> usize {
        self.acks.lock().expect("acks").total()
    }

    pub fn stop(mut self) -> Acks {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("workload thread");
        }
        std::mem::take(&mut *self.acks.lock().expect("acks"))
    }
}

/// Checks consumed records against the acknowledgements: every acknowledged record present,
/// no record twice, per-partition order preserved. Returns the number of records consumed.
pub fn verify(records: &[Record], acks: &Acks) -> usize {
    let mut by_partition: BTreeMap<i32, Vec<(i64, u64)>> = BTreeMap::new();
    for r in records {
        let text = String::from_utf8(r.value.clone().unwrap_or_default()).expect("utf8 value");
        let (p, seq) = text.split_once(':').expect("partition:seq");
        let p: i32 = p.parse().expect("partition");
        let seq: u64 = seq.parse().expect("seq");
        assert_eq!(p, r.partition, "record {text} in partition {}", r.partition);
        by_partition.entry(p).or_default().push((r.offset, seq));
    }
    for (p, mut list) in by_partition.clone() {
        list.sort();
        let seqs: Vec<u64> = list.iter().map(|(_, s)| *s).collect();
        for w in seqs.windows(2) {
            assert!(
                w[0] < w[1],
                "partition {p}: sequence {} follows {} (duplicate or reordering)",
                w[1],
                w[0]
            );
        }
    }
    for (p, acked) in &acks.acked {
        let have: BTreeSet<u64> = by_partition
            .get(p)
            .map(|l| l.iter().map(|(_, s)| *s).collect())
            .unwrap_or_default();
        let lost: Vec<&u64> = acked.difference(&have).take(10).collect();
        assert!(
            lost.is_empty(),
            "partition {p}: acknowledged records lost, e.g. {lost:?} ({} acked, {} present)",
            acked.len(),
            have.len()
        );
    }
    records.len()
}

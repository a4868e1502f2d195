//! A continuous, checkable produce workload: idempotent acks=all producers writing numbered
//! records to every partition, remembering exactly which records were acknowledged and when,
//! so a test can prove that nothing acknowledged was lost and measure client stalls.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::kafka::{self, Record, StderrLog};

/// What the workload saw.
#[derive(Debug, Default)]
pub struct Acks {
    /// The producer's tag, written into every record it sends (see `Workload::start_tagged`).
    pub tag: Option<String>,
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
    /// Produces about `rate` records/s round-robin over `partitions` partitions; each record's
    /// value is `<partition>:<sequence>`.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        rate: u32,
        extra: &[(&str, &str)],
    ) -> Workload {
        Workload::spawn(bootstrap, topic, partitions, rate, extra, None)
    }

    /// Like `start`, for one of several producers on the same topic: records are keyed by `tag`
    /// and their value is `<tag>:<partition>:<sequence>`, so `check` tells the producers apart.
    /// Its librdkafka log lines go to stderr, named by its `client.id` (else `producer-<tag>`).
    pub fn start_tagged(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        rate: u32,
        extra: &[(&str, &str)],
        tag: &str,
    ) -> Workload {
        Workload::spawn(
            bootstrap,
            topic,
            partitions,
            rate,
            extra,
            Some(tag.to_string()),
        )
    }

    fn spawn(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        rate: u32,
        extra: &[(&str, &str)],
        tag: Option<String>,
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Acks {
            tag: tag.clone(),
            ..Acks::default()
        }));
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
            let mut config = kafka::config(&bootstrap, &settings);
            let run = Run {
                topic,
                partitions,
                rate,
                tag: tag.clone(),
                stop: s,
                acks: a,
            };
            match tag {
                // One of several producers on a topic (the nemesis): its librdkafka log lines
                // go to stderr, at debug level when `debug` contexts are set.
                Some(tag) => {
                    if extra.iter().any(|(k, _)| k == "debug") {
                        config.set_log_level(RDKafkaLogLevel::Debug);
                    }
                    let client = extra
                        .iter()
                        .find(|(k, _)| k == "client.id")
                        .map_or_else(|| format!("producer-{tag}"), |(_, v)| v.clone());
                    let producer: FutureProducer<StderrLog> = config
                        .create_with_context(StderrLog { client })
                        .expect("producer");
                    rt.block_on(run.produce(producer));
                }
                None => {
                    let producer: FutureProducer = config.create().expect("producer");
                    rt.block_on(run.produce(producer));
                }
            }
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

    /// The acknowledgement times so far (for stall figures while the workload runs).
    pub fn ack_times(&self) -> Vec<Instant> {
        self.acks.lock().expect("acks").ack_times.clone()
    }

    pub fn stop(mut self) -> Acks {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("workload thread");
        }
        std::mem::take(&mut *self.acks.lock().expect("acks"))
    }
}

/// What one workload thread produces, and where it records the outcome.
struct Run {
    topic: String,
    partitions: i32,
    rate: u32,
    tag: Option<String>,
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Acks>>,
}

impl Run {
    /// Offers `rate` records/s until stopped, then waits for every delivery report.
    async fn produce<C: ClientContext + 'static>(self, producer: FutureProducer<C>) {
        let mut next: BTreeMap<i32, u64> = BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_micros(
            1_000_000 / u64::from(self.rate.max(1)),
        ));
        let mut pending = tokio::task::JoinSet::new();
        let mut i: i64 = 0;
        while !self.stop.load(Ordering::SeqCst) {
            tick.tick().await;
            let partition = (i % i64::from(self.partitions)) as i32;
            i += 1;
            let seq = {
                let n = next.entry(partition).or_insert(0);
                *n += 1;
                *n
            };
            let key = self.tag.clone().unwrap_or_default();
            let value = match &self.tag {
                Some(tag) => format!("{tag}:{partition}:{seq}"),
                None => format!("{partition}:{seq}"),
            };
            let mut record = FutureRecord::to(&self.topic)
                .partition(partition)
                .payload(&value);
            if self.tag.is_some() {
                record = record.key(&key);
            }
            let Ok(delivery) = producer.send_result(record) else {
                continue;
            };
            let a = self.acks.clone();
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
    }
}

/// One producer's records in one partition: (producer tag, partition).
pub type Stream = (Option<String>, i32);

/// What `check` found when comparing consumed records with the acknowledgements.
#[derive(Debug, Default)]
pub struct Check {
    pub consumed: usize,
    /// (tag, partition) -> acknowledged sequence numbers not found.
    pub lost: BTreeMap<Stream, Vec<u64>>,
    /// Records whose (tag, partition, sequence) appeared at an earlier offset too.
    pub duplicates: Vec<Duplicate>,
    /// Records with a lower sequence than one before them in the same partition.
    pub reordered: Vec<String>,
    /// Records that are not `[<tag>:]<partition>:<sequence>` or sit in another partition.
    pub malformed: Vec<String>,
}

impl Check {
    pub fn lost_count(&self) -> usize {
        self.lost.values().map(Vec::len).sum()
    }

    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicates.is_empty()
            && self.reordered.is_empty()
            && self.malformed.is_empty()
    }
}

/// A record found a second time: its stream and sequence, the offset of the copy seen first
/// and the offset of this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub stream: Stream,
    pub sequence: u64,
    pub first_offset: i64,
    pub offset: i64,
}

impl std::fmt::Display for Duplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{} at offsets {} and {}",
            self.stream.0.as_deref().unwrap_or("-"),
            self.stream.1,
            self.sequence,
            self.first_offset,
            self.offset
        )
    }
}

/// Compares consumed records with what each producer had acknowledged: every acknowledged
/// record present, none twice, and each producer's sequence increasing with the offset in every
/// partition. Records of producers not in `acks` are checked for order and duplicates too.
pub fn check(records: &[Record], acks: &[&Acks]) -> Check {
    let mut out = Check {
        consumed: records.len(),
        ..Check::default()
    };
    let mut by_stream: BTreeMap<Stream, Vec<(i64, u64)>> = BTreeMap::new();
    for r in records {
        let text = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
        let fields: Vec<&str> = text.split(':').collect();
        let (tag, p, seq) = match fields[..] {
            [p, seq] => (None, p, seq),
            [tag, p, seq] => (Some(tag.to_string()), p, seq),
            _ => {
                out.malformed.push(text);
                continue;
            }
        };
        let (Ok(p), Ok(seq)) = (p.parse::<i32>(), seq.parse::<u64>()) else {
            out.malformed.push(text);
            continue;
        };
        if p != r.partition {
            out.malformed
                .push(format!("{text} in partition {}", r.partition));
            continue;
        }
        by_stream.entry((tag, p)).or_default().push((r.offset, seq));
    }
    let mut present: BTreeMap<Stream, BTreeMap<u64, i64>> = BTreeMap::new();
    for (stream, mut list) in by_stream {
        list.sort();
        let seen = present.entry(stream.clone()).or_default();
        let mut highest = 0;
        for (offset, seq) in list {
            if let Some(&first_offset) = seen.get(&seq) {
                out.duplicates.push(Duplicate {
                    stream: stream.clone(),
                    sequence: seq,
                    first_offset,
                    offset,
                });
            } else {
                seen.insert(seq, offset);
                if seq < highest {
                    out.reordered.push(format!(
                        "{}:{}:{seq} at offset {offset}",
                        stream.0.as_deref().unwrap_or("-"),
                        stream.1
                    ));
                }
            }
            highest = highest.max(seq);
        }
    }
    for a in acks {
        for (p, acked) in &a.acked {
            let stream = (a.tag.clone(), *p);
            let have = present.get(&stream);
            let lost: Vec<u64> = acked
                .iter()
                .filter(|seq| !have.is_some_and(|h| h.contains_key(seq)))
                .copied()
                .collect();
            if !lost.is_empty() {
                out.lost.insert(stream, lost);
            }
        }
    }
    out
}

/// Checks consumed records against the acknowledgements: every acknowledged record present,
/// no record twice, per-partition order preserved. Returns the number of records consumed.
pub fn verify(records: &[Record], acks: &Acks) -> usize {
    let found = check(records, &[acks]);
    assert!(
        found.malformed.is_empty(),
        "malformed records: {:?}",
        found.malformed
    );
    assert!(
        found.duplicates.is_empty() && found.reordered.is_empty(),
        "duplicate or reordered records: {:?} {:?}",
        found.duplicates,
        found.reordered
    );
    for ((_, p), lost) in &found.lost {
        assert!(
            lost.is_empty(),
            "partition {p}: acknowledged records lost, e.g. {:?} ({} acked)",
            &lost[..lost.len().min(10)],
            acks.acked.get(p).map_or(0, BTreeSet::len)
        );
    }
    found.consumed
}

//! Kafka client helpers over librdkafka (the `rdkafka` crate).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigEntry, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Headers, Message};
use rdkafka::producer::{FutureProducer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// A consumed record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    pub fn from_message(m: &BorrowedMessage<'_>) -> Record {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| (x.key.to_string(), x.value.map(|v| v.to_vec())))
                    .collect()
            })
            .unwrap_or_default();
        Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(|k| k.to_vec()),
            value: m.payload().map(|p| p.to_vec()),
            timestamp: m.timestamp().to_millis(),
            headers,
        }
    }
}

pub fn config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c.set("broker.address.family", "v4");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// A producer context that counts the payload bytes the broker acknowledged.
pub struct AckedBytes(pub Arc<AtomicU64>);

impl ClientContext for AckedBytes {}

impl ProducerContext for AckedBytes {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = result {
            let len = m.payload().map_or(0, <[u8]>::len) as u64;
            self.0.fetch_add(len, Ordering::Relaxed);
        }
    }
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    config(bootstrap, extra).create().expect("producer")
}

/// Prints one librdkafka log line to stderr with a wall-clock time and the client's name, so
/// it can be lined up with the brokers' logs.
pub fn print_client_log(client: &str, level: RDKafkaLogLevel, fac: &str, message: &str) {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!(
        "{}.{:03} {client} {level:?} {fac}: {message}",
        since_epoch.as_secs(),
        since_epoch.subsec_millis(),
    );
}

/// A client context that prints librdkafka's log lines (see [`print_client_log`]) and, when
/// `statistics.interval.ms` is set, a one-line summary of each statistics report.
#[derive(Debug, Clone)]
pub struct StderrLog {
    pub client: String,
}

impl ClientContext for StderrLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        print_client_log(&self.client, level, fac, message);
    }

    fn stats(&self, statistics: Statistics) {
        print_client_log(
            &self.client,
            RDKafkaLogLevel::Info,
            "STATS",
            &summarize_stats(&statistics),
        );
    }
}

/// What a stuck producer's state looks like in one line: the idempotence state, every broker
/// handle's connection state and queues, and each partition's broker, leader and messages
/// queued or in flight.
fn summarize_stats(s: &Statistics) -> String {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let mut out = String::new();
    if let Some(eos) = &s.eos {
        let _ = write!(
            out,
            "idemp={} age={}ms producer_id={} epoch={};",
            eos.idemp_state, eos.idemp_stateage, eos.producer_id, eos.producer_epoch
        );
    }
    let brokers: BTreeMap<&String, _> = s.brokers.iter().collect();
    for (name, b) in brokers {
        let _ = write!(
            out,
            " broker {name} id={} {} outbuf={} waitresp={};",
            b.nodeid, b.state, b.outbuf_cnt, b.waitresp_cnt
        );
    }
    let topics: BTreeMap<&String, _> = s.topics.iter().collect();
    for (name, t) in topics {
        let partitions: BTreeMap<&i32, _> = t.partitions.iter().filter(|(p, _)| **p >= 0).collect();
        for (p, part) in partitions {
            let _ = write!(
                out,
                " {name}[{p}] broker={} leader={} inflight={} msgq={} xmitq={} acked_msgid={};",
                part.broker,
                part.leader,
                part.msgs_inflight,
                part.msgq_cnt,
                part.xmit_msgq_cnt,
                part.acked_msgid
            );
        }
    }
    out
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    config(bootstrap, &[]).create().expect("admin client")
}

/// The topic's config entries as DescribeConfigs returns them.
pub async fn describe_topic_configs(bootstrap: &str, topic: &str) -> Vec<ConfigEntry> {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin(bootstrap)
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
        .await
        .expect("describe_configs");
    results
        .into_iter()
        .next()
        .expect("one result")
        .expect("described")
        .entries
}

/// Creates a topic and waits until every partition has a leader that answers.
pub async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
) {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    create(bootstrap, topic, configs).await;
}

/// Creates a topic whose partition `p` is placed on the brokers `assignment[p]` (the first one
/// its preferred leader) and waits until every partition has a leader that answers.
pub async fn create_assigned_topic(
    bootstrap: &str,
    name: &str,
    assignment: &[&[i32]],
    configs: &[(&str, &str)],
) {
    let topic = NewTopic::new(
        name,
        assignment.len() as i32,
        TopicReplication::Variable(assignment),
    );
    create(bootstrap, topic, configs).await;
}

/// Creates `topic` with `configs` and waits until every partition has a leader that answers.
async fn create<'a>(bootstrap: &str, mut topic: NewTopic<'a>, configs: &[(&'a str, &'a str)]) {
    let (name, partitions) = (topic.name, topic.num_partitions);
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin(bootstrap)
        .create_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create_topics request");
    for r in results {
        r.expect("topic created");
    }
    wait_for_leaders(bootstrap, name, partitions, Duration::from_secs(30));
}

/// ISR size of each partition of `topic`, from metadata (empty if metadata is unavailable).
pub fn isr_sizes(bootstrap: &str, topic: &str) -> Vec<usize> {
    let consumer: BaseConsumer = config(bootstrap, &[("group.id", "isr-probe")])
        .create()
        .expect("consumer");
    let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return Vec::new();
    };
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.isr().len()).collect())
        .unwrap_or_default()
}

/// Waits until metadata shows a leader for every partition of `topic`.
pub fn wait_for_leaders(bootstrap: &str, topic: &str, partitions: i32, timeout: Duration) {
    let consumer: BaseConsumer = config(bootstrap, &[("group.id", "metadata-probe")])
        .create()
        .expect("consumer");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                if t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions()
                        .iter()
                        .all(|p| p.leader() >= 0 && p.error().is_none())
                {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} has no leaders after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Current leader of each partition, from metadata.
pub fn leaders(bootstrap: &str, topic: &str) -> BTreeMap<i32, i32> {
    let consumer: BaseConsumer = config(bootstrap, &[("group.id", "metadata-probe")])
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| {
            t.partitions()
                .iter()
                .map(|p| (p.id(), p.leader()))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads every partition of `topic` from the beginning until `expected` records arrived or
/// `timeout` passed (partition assignment, no group), plus a short grace period to catch extras.
pub fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    let consumer: BaseConsumer = config(
        bootstrap,
        &[
            ("group.id", &format!("reader-{topic}")),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "false"),
            ("fetch.wait.max.ms", "100"),
        ],
    )
    .create()
    .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + timeout;
    let mut grace: Option<Instant> = None;
    loop {
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            match result {
                Ok(m) => out.push(Record::from_message(&m)),
                // Broker-down and similar events are transient: librdkafka recovers and the
                // caller checks what arrived.
                Err(e) => eprintln!("consumer event: {e}"),
            }
        }
        if out.len() >= expected && grace.is_none() {
            grace = Some(Instant::now() + Duration::from_millis(500));
        }
        if grace.is_some_and(|g| Instant::now() > g) || Instant::now() > deadline {
            return out;
        }
    }
}

/// Reads every partition of `topic` from the beginning up to the high watermarks it finds when
/// it starts (partition assignment, no group), so records written but never acknowledged are
/// read too. Returns what it read and whether it reached every high watermark before `timeout`.
pub fn read_to_end(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> (Vec<Record>, bool) {
    let consumer: BaseConsumer = config(
        bootstrap,
        &[
            ("group.id", &format!("reader-{topic}")),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "false"),
            ("fetch.wait.max.ms", "100"),
        ],
    )
    .create()
    .expect("consumer");
    let deadline = Instant::now() + timeout;
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for p in 0..partitions {
        loop {
            match consumer.fetch_watermarks(topic, p, Duration::from_secs(5)) {
                Ok((_, high)) => {
                    ends.insert(p, high);
                    break;
                }
                Err(e) if Instant::now() < deadline => eprintln!("watermarks of {topic}-{p}: {e}"),
                Err(_) => return (Vec::new(), false),
            }
        }
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut next: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    let mut out = Vec::new();
    while ends.iter().any(|(p, end)| next[p] < *end) {
        if Instant::now() > deadline {
            return (out, false);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                next.insert(m.partition(), m.offset() + 1);
                out.push(Record::from_message(&m));
            }
            Some(Err(e)) => eprintln!("consumer event: {e}"),
            None => {}
        }
    }
    (out, true)
}

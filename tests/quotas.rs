//! Client quotas on a real broker process: set and described with AlterClientQuotas /
//! DescribeClientQuotas, then enforced — a librdkafka producer over its `producer_byte_rate`
//! is held within 20% of it over 20 s while an unthrottled producer on the same broker keeps
//! its rate; a raw client that ignores `throttle_time_ms` is held back by the muted
//! connection; a consumer is held to its `consumer_byte_rate`. The broker keeps the default
//! quota window (1 s of allowance at once).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_core::ErrorCode;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::Message;
use support::kafka::AckedBytes;
use support::raw::RawConnection;
use support::{kafka, unique_topic, Cluster, ClusterOptions};

const KIB: f64 = 1024.0;

fn broker() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(ClusterOptions::new(1)))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// `(entity_type, name)` pairs; a `None` name is the default entity.
type Entity<'a> = &'a [(&'a str, Option<&'a str>)];

fn entry(entity: Entity<'_>, ops: &[(&str, Option<f64>)]) -> EntryData {
    EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(kind, name)| {
                    EntityData::default()
                        .with_entity_type(text(kind))
                        .with_entity_name(name.map(text))
                })
                .collect(),
        )
        .with_ops(
            ops.iter()
                .map(|(key, value)| {
                    OpData::default()
                        .with_key(text(key))
                        .with_value(value.unwrap_or(0.0))
                        .with_remove(value.is_none())
                })
                .collect(),
        )
}

fn alter(entries: Vec<EntryData>, validate_only: bool) -> AlterClientQuotasResponse {
    let mut c = RawConnection::connect(broker().client_address(0));
    let request = AlterClientQuotasRequest::default()
        .with_entries(entries)
        .with_validate_only(validate_only);
    c.request(&request, 1).expect("AlterClientQuotas")
}

fn set_quota(entity: Entity<'_>, key: &str, value: f64) {
    let response = alter(vec![entry(entity, &[(key, Some(value))])], false);
    assert_eq!(
        response.entries[0].error_code, 0,
        "{:?}",
        response.entries[0]
    );
}

fn describe(components: &[(&str, i8, Option<&str>)], strict: bool) -> DescribeClientQuotasResponse {
    let mut c = RawConnection::connect(broker().client_address(0));
    let request = DescribeClientQuotasRequest::default()
        .with_components(
            components
                .iter()
                .map(|(kind, match_type, name)| {
                    ComponentData::default()
                        .with_entity_type(text(kind))
                        .with_match_type(*match_type)
                        .with_match(name.map(text))
                })
                .collect(),
        )
        .with_strict(strict);
    c.request(&request, 1).expect("DescribeClientQuotas")
}

/// The described entries as `(entity, [(key, value)])`, with entities as `type=name` text.
fn described(response: &DescribeClientQuotasResponse) -> Vec<(String, Vec<(String, f64)>)> {
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let mut entries: Vec<(String, Vec<(String, f64)>)> = response
        .entries
        .as_ref()
        .expect("entries")
        .iter()
        .map(|e| {
            let entity = e
                .entity
                .iter()
                .map(|p| {
                    let name = p.entity_name.as_ref().map_or("<default>", |n| n.as_str());
                    format!("{}={name}", p.entity_type.as_str())
                })
                .collect::<Vec<_>>()
                .join(",");
            let values = e
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            (entity, values)
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[test]
fn quotas_are_set_described_and_removed_with_the_admin_apis() {
    let alice_app = [("user", Some("q-alice")), ("client-id", Some("q-app"))];
    let alice = [("user", Some("q-alice"))];
    set_quota(&alice, "producer_byte_rate", 1_048_576.0);
    let response = alter(
        vec![entry(
            &alice_app,
            &[
                ("consumer_byte_rate", Some(2048.0)),
                ("request_percentage", Some(12.5)),
            ],
        )],
        false,
    );
    assert_eq!(response.entries[0].error_code, 0);

    let exact = described(&describe(&[("user", 0, Some("q-alice"))], false));
    assert_eq!(
        exact,
        vec![
            (
                "user=q-alice".to_string(),
                vec![("producer_byte_rate".to_string(), 1_048_576.0)]
            ),
            (
                "user=q-alice,client-id=q-app".to_string(),
                vec![
                    ("consumer_byte_rate".to_string(), 2048.0),
                    ("request_percentage".to_string(), 12.5)
                ]
            ),
        ]
    );
    let strict = described(&describe(&[("user", 0, Some("q-alice"))], true));
    assert_eq!(
        strict.len(),
        1,
        "strict leaves out the (user, client-id) entity: {strict:?}"
    );

    // Refused entries fail alone, with INVALID_REQUEST; the good one in the same request lands.
    let response = alter(
        vec![
            entry(
                &[("user", Some("q-bob"))],
                &[("producer_byte_rate", Some(10.5))],
            ),
            entry(&[("user", Some("q-bob"))], &[("no_such_quota", Some(1.0))]),
            entry(
                &[("ip", Some("127.0.0.1"))],
                &[("connection_creation_rate", Some(5.0))],
            ),
            entry(&[("user", None)], &[("request_percentage", Some(-1.0))]),
            entry(&[("user", None)], &[("consumer_byte_rate", Some(4096.0))]),
        ],
        false,
    );
    let codes: Vec<i16> = response.entries.iter().map(|e| e.error_code).collect();
    let invalid = ErrorCode::INVALID_REQUEST.code();
    assert_eq!(codes, vec![invalid, invalid, invalid, invalid, 0]);
    assert!(response
        .entries
        .iter()
        .take(4)
        .all(|e| e.error_message.is_some()));
    let defaults = described(&describe(&[("user", 1, None)], false));
    assert_eq!(
        defaults,
        vec![(
            "user=<default>".to_string(),
            vec![("consumer_byte_rate".to_string(), 4096.0)]
        )]
    );

    // validate_only checks without writing.
    let response = alter(
        vec![entry(
            &[("client-id", Some("q-dry"))],
            &[("producer_byte_rate", Some(1.0))],
        )],
        true,
    );
    assert_eq!(response.entries[0].error_code, 0);
    assert!(described(&describe(&[("client-id", 0, Some("q-dry"))], false)).is_empty());

    // An unknown entity type in the filter fails the describe.
    let bad = describe(&[("group", 2, None)], false);
    assert_eq!(bad.error_code, invalid);
    assert!(bad.entries.is_none());

    // Removing every key forgets the entity.
    let response = alter(
        vec![
            entry(&alice, &[("producer_byte_rate", None)]),
            entry(
                &alice_app,
                &[("consumer_byte_rate", None), ("request_percentage", None)],
            ),
            entry(&[("user", None)], &[("consumer_byte_rate", None)]),
        ],
        false,
    );
    assert!(response.entries.iter().all(|e| e.error_code == 0));
    assert!(described(&describe(&[("user", 2, None)], false)).is_empty());
}

/// Produces 1000-byte records as `client_id` until `stop`, at most `rate` bytes per second
/// (`None`: as fast as the client can); the bytes acknowledged so far, readable while it runs.
fn start_producer(
    topic: &str,
    client_id: &str,
    rate: Option<f64>,
    run_for: Duration,
) -> (Arc<AtomicU64>, thread::JoinHandle<()>) {
    let acked = Arc::new(AtomicU64::new(0));
    let producer: ThreadedProducer<AckedBytes> = kafka::config(
        &broker().bootstrap(),
        &[
            ("client.id", client_id),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.size", "65536"),
            ("queue.buffering.max.kbytes", "512"),
        ],
    )
    .create_with_context(AckedBytes(acked.clone()))
    .expect("producer");
    let topic = topic.to_string();
    let handle = thread::spawn(move || {
        let value = vec![b'q'; 1000];
        let started = Instant::now();
        let mut sent = 0f64;
        while started.elapsed() < run_for {
            if rate.is_some_and(|r| sent >= r * started.elapsed().as_secs_f64()) {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            match producer.send::<[u8], [u8]>(BaseRecord::to(&topic).payload(&value)) {
                Ok(()) => sent += value.len() as f64,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => panic!("produce failed: {e}"),
            }
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("every record acknowledged");
    });
    (acked, handle)
}

#[test]
fn a_producer_is_held_to_its_byte_rate_while_an_unthrottled_one_keeps_its_rate() {
    let quota = 256.0 * KIB;
    let offered = 4096.0 * KIB;
    set_quota(
        &[("client-id", Some("quota-slow"))],
        "producer_byte_rate",
        quota,
    );
    let topic = unique_topic("quota-produce");
    runtime().block_on(kafka::create_topic(
        &broker().bootstrap(),
        &topic,
        2,
        1,
        &[],
    ));

    let window = Duration::from_secs(20);
    let (slow, slow_thread) = start_producer(&topic, "quota-slow", None, window);
    let (fast, fast_thread) = start_producer(&topic, "quota-fast", Some(offered), window);
    let started = Instant::now();
    thread::sleep(window);
    let elapsed = started.elapsed().as_secs_f64();
    let slow_rate = slow.load(Ordering::Relaxed) as f64 / elapsed;
    let fast_rate = fast.load(Ordering::Relaxed) as f64 / elapsed;
    slow_thread.join().expect("slow producer");
    fast_thread.join().expect("fast producer");
    eprintln!(
        "over {elapsed:.1} s: quota-limited producer {:.0} KiB/s against a quota of {:.0} KiB/s \
         ({:.2}x); unthrottled producer {:.0} KiB/s of {:.0} offered ({:.2}x)",
        slow_rate / KIB,
        quota / KIB,
        slow_rate / quota,
        fast_rate / KIB,
        offered / KIB,
        fast_rate / offered
    );
    assert!(
        (slow_rate - quota).abs() <= 0.2 * quota,
        "the limited producer ran at {:.0} KiB/s, not within 20% of {:.0} KiB/s",
        slow_rate / KIB,
        quota / KIB
    );
    assert!(
        fast_rate >= 0.8 * offered,
        "the unthrottled producer only reached {:.0} of {:.0} KiB/s",
        fast_rate / KIB,
        offered / KIB
    );
    let throttled = broker()
        .metric(
            0,
            "rivulet_client_quota_throttle_seconds_total{quota=\"producer_byte_rate\"}",
        )
        .unwrap_or(0.0);
    assert!(throttled > 1.0, "throttle time is counted: {throttled}");
}

fn produce(topic: &str, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

#[test]
fn a_client_ignoring_throttle_time_is_held_back_by_the_muted_connection() {
    // The raw client's client id; no other test produces with it.
    let quota = 100.0 * KIB;
    set_quota(
        &[("client-id", Some("raw-test"))],
        "producer_byte_rate",
        quota,
    );
    let topic = unique_topic("quota-raw");
    runtime().block_on(kafka::create_topic(
        &broker().bootstrap(),
        &topic,
        1,
        1,
        &[],
    ));
    let records = support::batches::batch(32, false, |_| Bytes::from(vec![b'r'; 1000]), None);
    let mut c = RawConnection::connect(broker().client_address(0));
    c.set_read_timeout(Duration::from_secs(20));
    let run_for = Duration::from_secs(8);
    let started = Instant::now();
    let (mut accepted, mut throttled_responses) = (0f64, 0);
    while started.elapsed() < run_for {
        // Sent at once after each response: throttle_time_ms is ignored.
        let response = c
            .request(&produce(&topic, records.clone()), 7)
            .expect("produce");
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        accepted += records.len() as f64;
        if response.throttle_time_ms > 0 {
            throttled_responses += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // One window (1 s) of allowance, then the quota.
    let allowed = quota * (elapsed + 1.0);
    eprintln!(
        "raw client ignoring throttle_time: {:.0} KiB in {elapsed:.1} s, {:.0} KiB allowed, \
         {throttled_responses} throttled responses",
        accepted / KIB,
        allowed / KIB
    );
    assert!(throttled_responses > 0, "responses carry throttle_time_ms");
    assert!(
        accepted <= 1.2 * allowed,
        "{:.0} KiB accepted, more than the quota allows ({:.0} KiB)",
        accepted / KIB,
        allowed / KIB
    );
    assert!(
        accepted >= 0.5 * quota * elapsed,
        "the client still makes progress"
    );
}

#[test]
fn a_consumer_is_held_to_its_byte_rate() {
    let quota = 128.0 * KIB;
    set_quota(
        &[("client-id", Some("quota-consumer"))],
        "consumer_byte_rate",
        quota,
    );
    let topic = unique_topic("quota-fetch");
    runtime().block_on(kafka::create_topic(
        &broker().bootstrap(),
        &topic,
        1,
        1,
        &[],
    ));
    // More to read than the quota lets through while the test reads.
    let (loaded, loader) = start_producer(
        &topic,
        "quota-loader",
        Some(8192.0 * KIB),
        Duration::from_millis(600),
    );
    loader.join().expect("loader");
    let loaded = loaded.load(Ordering::Relaxed) as f64;
    assert!(loaded >= 3.0 * 1024.0 * KIB, "loaded only {loaded} bytes");

    let consumer: BaseConsumer = kafka::config(
        &broker().bootstrap(),
        &[
            ("client.id", "quota-consumer"),
            ("group.id", "quota-consumer"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
        ],
    )
    .create()
    .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut consumed = 0f64;
    let mut started = None;
    let run_for = Duration::from_secs(8);
    let deadline = Instant::now() + Duration::from_secs(60);
    while started.is_none_or(|s: Instant| s.elapsed() < run_for) && consumed < loaded {
        assert!(Instant::now() < deadline, "the consumer never started");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            started.get_or_insert_with(Instant::now);
            consumed += m.payload().map_or(0, <[u8]>::len) as f64;
        }
    }
    let elapsed = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let allowed = quota * (elapsed + 1.0);
    eprintln!(
        "consumer: {:.0} KiB in {elapsed:.1} s, {:.0} KiB allowed",
        consumed / KIB,
        allowed / KIB
    );
    assert!(
        consumed <= 1.2 * allowed,
        "{:.0} KiB consumed",
        consumed / KIB
    );
    assert!(
        consumed >= quota * elapsed * 0.5,
        "the consumer still makes progress"
    );
}

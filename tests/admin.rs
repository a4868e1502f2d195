//! Admin operations with librdkafka's admin client: create topics with configs, describe and
//! alter configs, add partitions, delete records, delete topics, and ListOffsets by timestamp.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use rdkafka::admin::{
    AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use support::{kafka, unique_topic, wait_until, Cluster, ClusterOptions};

fn broker() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(ClusterOptions::new(1)))
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

fn configs_of(bootstrap: &str, topic: &str) -> HashMap<String, (Option<String>, ConfigSource)> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(kafka::describe_topic_configs(bootstrap, topic))
        .into_iter()
        .map(|e| (e.name, (e.value, e.source)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_describe_alter_and_delete_topics() {
    let bootstrap = broker().bootstrap();
    let admin = kafka::admin(&bootstrap);
    let topic = unique_topic("admin");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))
                .set("retention.ms", "3600000")
                .set("cleanup.policy", "compact")],
            &opts(),
        )
        .await
        .expect("create_topics");
    assert!(created[0].is_ok(), "{created:?}");

    // Creating it again fails with TOPIC_ALREADY_EXISTS.
    let again = admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &opts(),
        )
        .await
        .expect("create_topics");
    assert!(
        matches!(
            again[0],
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists))
        ),
        "{again:?}"
    );

    // Invalid settings are refused with Kafka's codes.
    let bad = admin
        .create_topics(
            &[
                NewTopic::new(&unique_topic("bad-rf"), 1, TopicReplication::Fixed(3)),
                NewTopic::new(&unique_topic("bad-config"), 1, TopicReplication::Fixed(1))
                    .set("retention.ms", "soon"),
                NewTopic::new("bad name!", 1, TopicReplication::Fixed(1)),
            ],
            &opts(),
        )
        .await
        .expect("create_topics");
    assert!(
        matches!(
            bad[0],
            Err((
                _,
                rdkafka::types::RDKafkaErrorCode::InvalidReplicationFactor
            ))
        ),
        "{:?}",
        bad[0]
    );
    assert!(
        matches!(
            bad[1],
            Err((_, rdkafka::types::RDKafkaErrorCode::InvalidConfig))
        ),
        "{:?}",
        bad[1]
    );
    assert!(
        matches!(
            bad[2],
            Err((_, rdkafka::types::RDKafkaErrorCode::InvalidTopic))
        ),
        "{:?}",
        bad[2]
    );

    let b = bootstrap.clone();
    let t = topic.clone();
    let configs = tokio::task::spawn_blocking(move || configs_of(&b, &t))
        .await
        .unwrap();
    assert_eq!(
        configs["retention.ms"],
        (Some("3600000".to_string()), ConfigSource::DynamicTopic)
    );
    assert_eq!(
        configs["cleanup.policy"],
        (Some("compact".to_string()), ConfigSource::DynamicTopic)
    );
    assert_eq!(configs["segment.bytes"].0.as_deref(), Some("1073741824"));
    assert_eq!(configs["segment.bytes"].1, ConfigSource::Default);

    let altered = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("retention.ms", "60000")],
            &opts(),
        )
        .await
        .expect("alter_configs");
    assert!(altered[0].is_ok(), "{altered:?}");
    let b = bootstrap.clone();
    let t = topic.clone();
    let configs = tokio::task::spawn_blocking(move || configs_of(&b, &t))
        .await
        .unwrap();
    assert_eq!(configs["retention.ms"].0.as_deref(), Some("60000"));
    // Legacy AlterConfigs replaces the whole set: cleanup.policy is back to its default.
    assert_eq!(
        configs["cleanup.policy"],
        (Some("delete".to_string()), ConfigSource::Default)
    );

    let grown = admin
        .create_partitions(&[NewPartitions::new(&topic, 5)], &opts())
        .await
        .expect("create_partitions");
    assert!(grown[0].is_ok(), "{grown:?}");
    kafka::wait_for_leaders(&bootstrap, &topic, 5, Duration::from_secs(30));
    let shrink = admin
        .create_partitions(&[NewPartitions::new(&topic, 2)], &opts())
        .await
        .expect("create_partitions");
    assert!(
        matches!(
            shrink[0],
            Err((_, rdkafka::types::RDKafkaErrorCode::InvalidPartitions))
        ),
        "{shrink:?}"
    );

    let deleted = admin
        .delete_topics(&[&topic], &opts())
        .await
        .expect("delete_topics");
    assert!(deleted[0].is_ok(), "{deleted:?}");
    let missing = admin
        .delete_topics(&[&topic], &opts())
        .await
        .expect("delete_topics");
    assert!(
        matches!(
            missing[0],
            Err((_, rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition))
        ),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_by_timestamp_and_delete_records() {
    let bootstrap = broker().bootstrap();
    let topic = unique_topic("timestamps");
    kafka::create_topic(&bootstrap, &topic, 1, 1, &[]).await;
    let producer = kafka::producer(&bootstrap, &[("acks", "all"), ("linger.ms", "20")]);
    let base = 1_600_000_000_000i64;
    for i in 0..100i64 {
        let value = i.to_string();
        producer
            .send(
                FutureRecord::<(), _>::to(&topic)
                    .partition(0)
                    .payload(&value)
                    .timestamp(base + i * 1000),
                Duration::from_secs(30),
            )
            .await
            .expect("delivered");
    }
    let b = bootstrap.clone();
    let t = topic.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = kafka::config(&b, &[("group.id", "ts-probe")])
            .create()
            .expect("consumer");
        let lookup = |ts: i64| {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&t, 0, Offset::Offset(ts)).unwrap();
            let found = consumer
                .offsets_for_times(tpl, Duration::from_secs(10))
                .expect("offsets_for_times");
            found.elements()[0].offset()
        };
        assert_eq!(lookup(base), Offset::Offset(0));
        assert_eq!(lookup(base + 41_000), Offset::Offset(41));
        assert_eq!(
            lookup(base + 41_500),
            Offset::Offset(42),
            "first record at or after the timestamp"
        );
        assert_eq!(lookup(base - 5), Offset::Offset(0));
        assert_eq!(lookup(base + 1_000_000), Offset::End, "no record that late");
        let (low, high) = consumer
            .fetch_watermarks(&t, 0, Duration::from_secs(10))
            .expect("watermarks");
        assert_eq!((low, high), (0, 100));
    })
    .await
    .unwrap();

    let admin = kafka::admin(&bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(30))
        .unwrap();
    admin
        .delete_records(&tpl, &opts())
        .await
        .expect("delete_records");
    let b = bootstrap.clone();
    let t = topic.clone();
    let moved = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = kafka::config(&b, &[("group.id", "ts-probe")])
            .create()
            .expect("consumer");
        wait_until(Duration::from_secs(10), || {
            consumer
                .fetch_watermarks(&t, 0, Duration::from_secs(5))
                .map(|w| w.0)
                .ok()
                == Some(30)
        })
    })
    .await
    .unwrap();
    assert!(moved, "log start offset advanced to 30");
}

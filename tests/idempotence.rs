//! Idempotent producers: duplicates of a batch are answered with the original offsets,
//! sequence gaps get OUT_OF_ORDER_SEQUENCE_NUMBER, and librdkafka retrying through a stalled
//! broker writes every record exactly once.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;
use support::raw::RawConnection;
use support::record_producer::producer_of;
use support::{kafka, unique_topic, Cluster, ClusterOptions};

fn idempotent_batch(producer_id: i64, epoch: i16, first_sequence: i32, count: usize) -> Bytes {
    support::batches::batch(
        count,
        false,
        |i| Bytes::from(format!("seq-{}", first_sequence + i as i32)),
        Some(support::batches::Producer {
            id: producer_id,
            epoch,
            first_sequence,
        }),
    )
}

fn produce(c: &mut RawConnection, topic: &str, batch: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let response = c.request(&request, 9).expect("produce response");
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// A one-broker cluster with a one-partition topic, a raw connection to it and a fresh
/// idempotent producer id (epoch 0) from InitProducerId.
fn cluster_with_producer_id(prefix: &str) -> (Cluster, String, RawConnection, i64) {
    let cluster = Cluster::start(ClusterOptions::new(1));
    let topic = unique_topic(prefix);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(kafka::create_topic(&cluster.bootstrap(), &topic, 1, 1, &[]));
    let mut c = RawConnection::connect(cluster.client_address(0));
    let init = init_producer_id(&mut c);
    assert_eq!(init.error_code, 0);
    assert!(init.producer_id.0 >= 0);
    assert_eq!(init.producer_epoch, 0);
    (cluster, topic, c, init.producer_id.0)
}

fn init_producer_id(c: &mut RawConnection) -> InitProducerIdResponse {
    c.request(
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(-1),
        4,
    )
    .expect("init producer id")
}

#[test]
fn duplicate_and_out_of_order_batches() {
    let (cluster, topic, mut c, pid) = cluster_with_producer_id("idem-raw");
    let second = init_producer_id(&mut c);
    assert_ne!(
        second.producer_id.0, pid,
        "every idempotent producer gets its own id"
    );

    assert_eq!(
        produce(&mut c, &topic, idempotent_batch(pid, 0, 0, 3)),
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, &topic, idempotent_batch(pid, 0, 3, 2)),
        (0, 3)
    );
    // A retried batch: same producer, epoch and sequences -> the original offsets, nothing written.
    assert_eq!(
        produce(&mut c, &topic, idempotent_batch(pid, 0, 0, 3)),
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, &topic, idempotent_batch(pid, 0, 3, 2)),
        (0, 3)
    );
    // A gap in the sequence.
    assert_eq!(
        produce(&mut c, &topic, idempotent_batch(pid, 0, 9, 1)).0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    assert_eq!(
        produce(&mut c, &topic, idempotent_batch(pid, 0, 5, 1)),
        (0, 5)
    );
    let records = kafka::read_all(&cluster.bootstrap(), &topic, 1, 6, Duration::from_secs(30));
    assert_eq!(records.len(), 6, "duplicates were not written");
}

/// A client that re-sends records after bumping its epoch writes them again (sequences restart
/// at 0 in a new epoch, as in Kafka); the workload check finds the copies and the raw lookup
/// tells them apart from a broker duplicate by their batches' producer epochs.
#[test]
fn records_resent_under_a_new_epoch_are_told_apart_by_their_producer_epoch() {
    let (cluster, topic, mut c, pid) = cluster_with_producer_id("idem-epoch");
    let workload_batch = |epoch: i16, first: usize, count: usize| {
        support::batches::batch(
            count,
            false,
            |i| Bytes::from(format!("0:{}", first + i)),
            Some(support::batches::Producer {
                id: pid,
                epoch,
                first_sequence: 0,
            }),
        )
    };
    assert_eq!(produce(&mut c, &topic, workload_batch(0, 0, 3)), (0, 0));
    // Epoch 1 starts again at sequence 0 and carries records 1 and 2 once more, then record 3.
    assert_eq!(produce(&mut c, &topic, workload_batch(1, 1, 3)), (0, 3));
    let records = kafka::read_all(&cluster.bootstrap(), &topic, 1, 6, Duration::from_secs(30));
    let found = support::workload::check(&records, &[]);
    let repeated: Vec<(u64, i64, i64)> = found
        .duplicates
        .iter()
        .map(|d| (d.sequence, d.first_offset, d.offset))
        .collect();
    assert_eq!(repeated, vec![(1, 1, 3), (2, 2, 4)]);
    for d in &found.duplicates {
        let origin = |offset| {
            producer_of(cluster.client_address(0), &topic, 0, offset)
                .expect("fetch")
                .expect("record at offset")
        };
        let (first, again) = (origin(d.first_offset), origin(d.offset));
        assert_eq!(
            (first.id, first.epoch, again.id, again.epoch),
            (pid, 0, pid, 1)
        );
        assert!(first.bumped_to(again), "{d}");
        assert!(!first.bumped_to(first), "one epoch is a broker duplicate");
    }
}

#[test]
fn retries_through_a_stalled_broker_write_each_record_once() {
    let cluster = Cluster::start(ClusterOptions::new(1));
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("idem-retry");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(kafka::create_topic(&bootstrap, &topic, 3, 1, &[]));
    const COUNT: usize = 20_000;
    rt.block_on(async {
        let producer = kafka::producer(
            &bootstrap,
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "2"),
                ("request.timeout.ms", "1000"),
                ("socket.timeout.ms", "1000"),
                ("message.timeout.ms", "120000"),
                ("retry.backoff.ms", "100"),
            ],
        );
        let mut futures = Vec::with_capacity(COUNT);
        for i in 0..COUNT {
            let value = format!("r{i}");
            futures.push(
                producer
                    .send_result(FutureRecord::<(), _>::to(&topic).payload(&value))
                    .expect("enqueue"),
            );
            if i == COUNT / 2 {
                // Freeze the broker mid-stream: requests time out and are retried.
                cluster.pause(0);
                tokio::time::sleep(Duration::from_secs(3)).await;
                cluster.resume(0);
            }
        }
        for f in futures {
            f.await
                .expect("delivery")
                .expect("delivered despite the stall");
        }
    });
    let records = kafka::read_all(&bootstrap, &topic, 3, COUNT, Duration::from_secs(60));
    let values: BTreeSet<Vec<u8>> = records.iter().filter_map(|r| r.value.clone()).collect();
    assert_eq!(values.len(), COUNT, "every record delivered");
    assert_eq!(records.len(), COUNT, "no record written twice");
}

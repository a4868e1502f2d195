//! Bad input never crashes the broker: truncated frames, garbage, unknown API keys, unsupported
//! versions, oversized frames, malformed bodies, batches with a bad CRC or magic. Each gets the
//! answer Apache Kafka gives (an error code, or the connection closed where Kafka closes it),
//! and the broker keeps serving other clients throughout.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_core::ErrorCode;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use support::raw::RawConnection;
use support::{unique_topic, Cluster, ClusterOptions};

fn broker() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        Cluster::start(ClusterOptions::new(1).property("socket.request.max.bytes", 1_048_576 * 4))
    })
}

/// The broker still answers a normal request on a fresh connection.
fn assert_alive(cluster: &Cluster) {
    let mut c = RawConnection::connect(cluster.client_address(0));
    let response = c
        .request(&ApiVersionsRequest::default(), 0)
        .expect("broker answers ApiVersions after bad input");
    assert_eq!(ErrorCode::from_code(response.error_code), ErrorCode::NONE);
    assert!(!response.api_keys.is_empty());
}

fn batch(records: usize) -> Bytes {
    support::batches::batch(records, true, |i| Bytes::from(format!("v{i}")), None)
}

fn produce(topic: &str, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

fn produce_error(cluster: &Cluster, topic: &str, records: Bytes) -> ErrorCode {
    let mut c = RawConnection::connect(cluster.client_address(0));
    let response = c
        .request(&produce(topic, records, 1), 9)
        .expect("produce response");
    ErrorCode::from_code(response.responses[0].partition_responses[0].error_code)
}

fn topic_with_partition(cluster: &Cluster) -> String {
    let topic = unique_topic("bad-input");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(support::kafka::create_topic(
        &cluster.bootstrap(),
        &topic,
        1,
        1,
        &[],
    ));
    topic
}

#[test]
fn garbage_and_truncated_frames_close_the_connection() {
    let cluster = broker();
    // A long-lived healthy connection that must survive everything below.
    let mut bystander = RawConnection::connect(cluster.client_address(0));

    let mut c = RawConnection::connect(cluster.client_address(0));
    c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "HTTP garbage must close the connection"
    );

    let mut c = RawConnection::connect(cluster.client_address(0));
    c.send_raw(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]).unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "negative frame length must close"
    );

    let mut c = RawConnection::connect(cluster.client_address(0));
    c.send_raw(&[0, 0, 0, 3, 0, 3, 0]).unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "frame too short for a header must close"
    );

    // Truncated: announce 100 bytes, send 10, hang up.
    let mut c = RawConnection::connect(cluster.client_address(0));
    c.send_raw(&[0, 0, 0, 100, 0, 3, 0, 9, 0, 0, 0, 1, 0, 0])
        .unwrap();
    drop(c);

    let r = bystander
        .request(&ApiVersionsRequest::default(), 2)
        .expect("bystander still served");
    assert_eq!(ErrorCode::from_code(r.error_code), ErrorCode::NONE);
    assert_alive(cluster);
}

#[test]
fn unknown_api_keys_and_versions() {
    let cluster = broker();
    let mut c = RawConnection::connect(cluster.client_address(0));
    let frame = c.frame_with_key(999, 0, |b| b.put_i32(0));
    c.send_raw(&frame).unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "unknown api key closes the connection (as Kafka)"
    );

    // An unsupported Metadata version: Kafka closes the connection.
    let mut c = RawConnection::connect(cluster.client_address(0));
    let frame = c.frame_with_key(ApiKey::Metadata as i16, 99, |b| b.put_i32(-1));
    c.send_raw(&frame).unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "unsupported version closes the connection"
    );

    // A known API the broker does not serve (transactions) closes the connection too.
    let mut c = RawConnection::connect(cluster.client_address(0));
    let frame = c.frame_with_key(ApiKey::EndTxn as i16, 3, |b| b.put_slice(&[0; 16]));
    c.send_raw(&frame).unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "unsupported api closes the connection"
    );

    // ApiVersions at a too-new version: answered at v0 with UNSUPPORTED_VERSION (KIP-511).
    let mut c = RawConnection::connect(cluster.client_address(0));
    let frame = c.frame_with_key(ApiKey::ApiVersions as i16, 77, |_| {});
    c.send_raw(&frame).unwrap();
    let mut body = c.read_frame().expect("ApiVersions answer");
    let _correlation = bytes::Buf::get_i32(&mut body);
    let response = ApiVersionsResponse::decode(&mut body, 0).expect("v0 response");
    assert_eq!(
        ErrorCode::from_code(response.error_code),
        ErrorCode::UNSUPPORTED_VERSION
    );
    let av = response
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("ApiVersions range listed");
    assert_eq!((av.min_version, av.max_version), (0, 4));
    assert_alive(cluster);
}

#[test]
fn oversized_frames_are_refused_without_reading_them() {
    let cluster = broker();
    let mut c = RawConnection::connect(cluster.client_address(0));
    // 64 MiB announced, above socket.request.max.bytes (4 MiB here).
    c.send_raw(&(64 * 1024 * 1024i32).to_be_bytes()).unwrap();
    c.send_raw(&[0, 3, 0, 9]).unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "oversized frame must close"
    );
    assert_alive(cluster);
}

#[test]
fn huge_array_counts_do_not_allocate() {
    let cluster = broker();
    // The published 8-byte reproducer: Metadata v0 declaring 54,265,856 topics.
    let mut c = RawConnection::connect(cluster.client_address(0));
    c.send_raw(&[
        0, 0, 0, 14, 0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0x03, 0x3c, 0x0c, 0x00,
    ])
    .unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "malformed metadata closes"
    );
    // A flexible request declaring 2^32-2 topics in a compact array.
    let mut c = RawConnection::connect(cluster.client_address(0));
    let frame = c.frame_with_key(ApiKey::Metadata as i16, 12, |b| {
        b.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f])
    });
    c.send_raw(&frame).unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "malformed compact array closes"
    );
    assert_alive(cluster);
}

#[test]
fn bad_batches_get_kafka_error_codes() {
    let cluster = broker();
    let topic = topic_with_partition(cluster);
    let good = batch(3);

    // CRC covers attributes..end; flip a byte of the payload.
    let mut bad_crc = BytesMut::from(&good[..]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert_eq!(
        produce_error(cluster, &topic, bad_crc.freeze()),
        ErrorCode::CORRUPT_MESSAGE,
        "a bad CRC"
    );

    // Magic 1 in a produce v9 request.
    let mut bad_magic = BytesMut::from(&good[..]);
    bad_magic[16] = 1;
    assert_eq!(
        produce_error(cluster, &topic, bad_magic.freeze()),
        ErrorCode::INVALID_RECORD,
        "magic 1"
    );

    // Batch length larger than the bytes sent.
    let truncated = good.slice(..good.len() - 5);
    assert_eq!(
        produce_error(cluster, &topic, truncated),
        ErrorCode::CORRUPT_MESSAGE,
        "a truncated batch"
    );

    // Nothing bad was appended: a good batch lands at offset 0.
    let mut c = RawConnection::connect(cluster.client_address(0));
    let response = c
        .request(&produce(&topic, good.clone(), 1), 9)
        .expect("produce");
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(
        (ErrorCode::from_code(p.error_code), p.base_offset),
        (ErrorCode::NONE, 0)
    );

    // acks=0 with a bad batch: Kafka signals the failure by closing the connection.
    let mut bad_crc = BytesMut::from(&good[..]);
    bad_crc[last] ^= 0x01;
    let mut c = RawConnection::connect(cluster.client_address(0));
    let frame = c.frame(&produce(&topic, bad_crc.freeze(), 0), 9);
    c.send_raw(&frame).unwrap();
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "failed acks=0 produce closes the connection"
    );
    assert_alive(cluster);
}

/// Deterministic pseudo-random frames of every API key and version: none may take the broker
/// down, and each connection either gets well-formed responses or is closed.
#[test]
fn random_frames_never_crash_the_broker() {
    let cluster = broker();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..400 {
        let mut c = RawConnection::connect(cluster.client_address(0));
        let key = (next() % 70) as i16;
        let version = (next() % 20) as i16;
        let len = (next() % 300) as usize;
        let frame = c.frame_with_key(key, version, |b| {
            for _ in 0..len {
                b.put_u8((next() & 0xff) as u8);
            }
        });
        c.send_raw(&frame).unwrap();
        // Read whatever comes back (a response or a close) without caring which.
        let _ = c.is_closed_within(Duration::from_millis(200));
        if round % 50 == 0 {
            assert_alive(cluster);
        }
    }
    // And a metadata request still works.
    let mut c = RawConnection::connect(cluster.client_address(0));
    let md = c
        .request(&MetadataRequest::default().with_topics(None), 12)
        .expect("metadata");
    assert_eq!(md.brokers.len(), 1);
}

//! Connection and request limits on a real broker process, through raw sockets bound to chosen
//! loopback source addresses and through librdkafka: `max.connections.per.ip` (+ overrides),
//! `max.connections` (the inter-broker listener exempt), `socket.request.max.bytes`,
//! `queued.max.requests` back-pressure, `max.connection.creation.rate`, and garbage first frames.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::ApiVersionsRequest;
use rdkafka::producer::FutureRecord;
use support::raw::{consumer_fetch, RawConnection};
use support::{kafka, unique_topic, wait_until, Cluster, ClusterOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Whether the broker answers an ApiVersions request on `c` within its read timeout.
fn answers(c: &mut RawConnection) -> bool {
    c.request(&ApiVersionsRequest::default(), 2).is_ok()
}

fn connect_from(source: &str, cluster: &Cluster) -> RawConnection {
    RawConnection::connect_from(source, cluster.client_address(0)).expect("tcp connect")
}

fn metric(cluster: &Cluster, name: &str) -> f64 {
    cluster.metric(0, name).unwrap_or(0.0)
}

#[test]
fn per_ip_limit_closes_extra_connections_from_one_address_only() {
    let cluster = Cluster::start(
        ClusterOptions::new(1)
            .property("max.connections.per.ip", 3)
            .property("max.connections.per.ip.overrides", "127.0.0.3:1"),
    );
    let mut from_one: Vec<RawConnection> = (0..3)
        .map(|_| connect_from("127.0.0.1", &cluster))
        .collect();
    for c in &mut from_one {
        assert!(answers(c), "connections within the per-IP limit are served");
    }
    let mut extra = connect_from("127.0.0.1", &cluster);
    assert!(
        extra.is_closed_within(Duration::from_secs(5)),
        "a fourth connection from 127.0.0.1 must be closed"
    );

    // Another source address has its own count.
    let mut from_two: Vec<RawConnection> = (0..3)
        .map(|_| connect_from("127.0.0.2", &cluster))
        .collect();
    for c in &mut from_two {
        assert!(
            answers(c),
            "127.0.0.2 is not limited by 127.0.0.1's connections"
        );
    }

    // The override allows 127.0.0.3 a single connection.
    let mut three = connect_from("127.0.0.3", &cluster);
    assert!(answers(&mut three));
    let mut extra_three = connect_from("127.0.0.3", &cluster);
    assert!(extra_three.is_closed_within(Duration::from_secs(5)));

    assert_eq!(
        metric(
            &cluster,
            "rivulet_network_connections_rejected_per_ip_total{listener=\"CLIENT\"}"
        ),
        2.0
    );
    assert!(cluster.log_tail(0, 200).contains("rejected connection"));

    // A freed slot is usable again.
    drop(from_one.pop());
    assert!(
        wait_until(Duration::from_secs(10), || {
            let mut c = connect_from("127.0.0.1", &cluster);
            c.set_read_timeout(Duration::from_secs(2));
            answers(&mut c)
        }),
        "after one closes, 127.0.0.1 may connect again"
    );
}

#[test]
fn broker_limit_pauses_accepting_until_a_connection_closes() {
    let cluster = Cluster::start(
        ClusterOptions::new(1)
            .property("max.connections", 3)
            .property("listener.name.replication.max.connections", 1),
    );
    let mut open: Vec<RawConnection> = (0..3)
        .map(|_| connect_from("127.0.0.1", &cluster))
        .collect();
    for c in &mut open {
        assert!(answers(c));
    }

    // The fourth gets through TCP (the listen backlog) but is not accepted: no answer.
    let mut waiting = connect_from("127.0.0.2", &cluster);
    let request = waiting.frame(&ApiVersionsRequest::default(), 2);
    waiting.send_raw(&request).expect("send");
    waiting.set_read_timeout(Duration::from_millis(1500));
    assert!(
        waiting.read_frame().is_err(),
        "beyond max.connections the request must wait"
    );

    // The inter-broker listener is exempt from the broker-wide limit (KIP-402), but its own
    // listener limit applies.
    let mut replication = RawConnection::connect(cluster.replication_address(0));
    assert!(answers(&mut replication), "inter-broker listener is exempt");
    let mut second_replication = RawConnection::connect(cluster.replication_address(0));
    second_replication.set_read_timeout(Duration::from_millis(1000));
    assert!(
        !answers(&mut second_replication),
        "listener.name.replication.max.connections applies"
    );

    // One client connection closes: the waiting one is accepted and answered.
    drop(open.pop());
    waiting.set_read_timeout(Duration::from_secs(10));
    let mut response = waiting.read_frame().expect("answered once a slot frees");
    assert_eq!(
        response.get_i32(),
        1,
        "correlation id of the waiting request"
    );
    assert!(wait_until(Duration::from_secs(5), || metric(
        &cluster,
        "rivulet_network_acceptor_blocked_total{listener=\"CLIENT\"}"
    ) >= 1.0));
    assert!(
        metric(
            &cluster,
            "rivulet_network_acceptor_blocked_seconds_total{listener=\"CLIENT\"}"
        ) > 1.0
    );
    assert!(cluster.log_tail(0, 200).contains("max.connections reached"));
}

/// One broker with small frame and pipelining limits for the frame tests.
fn small_limits() -> Cluster {
    Cluster::start(
        ClusterOptions::new(1)
            .property("socket.request.max.bytes", 65536)
            .property("queued.max.requests", 4),
    )
}

#[test]
fn frames_oversized_or_garbage_close_the_connection_and_pipelining_is_back_pressured() {
    let cluster = small_limits();
    let mut bystander = RawConnection::connect(cluster.client_address(0));
    assert!(answers(&mut bystander));

    // Oversized: the length prefix alone closes the connection.
    let mut c = RawConnection::connect(cluster.client_address(0));
    c.send_raw(&70_000i32.to_be_bytes()).expect("send");
    c.send_raw(&[0, 18, 0, 2, 0, 0, 0, 1]).expect("send");
    assert!(c.is_closed_within(Duration::from_secs(5)));
    assert!(wait_until(Duration::from_secs(5), || cluster
        .log_tail(0, 200)
        .contains("exceeds socket.request.max.bytes")));

    // Garbage first frame within the size limit: closed without waiting for its 60 kB body.
    let mut c = RawConnection::connect(cluster.client_address(0));
    c.send_raw(&60_000i32.to_be_bytes()).expect("send");
    c.send_raw(b"GARBAGE!").expect("send");
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "garbage must be refused from its first bytes"
    );
    assert!(wait_until(Duration::from_secs(5), || cluster
        .log_tail(0, 200)
        .contains("unknown api key")));

    // Pipelining: 8 long-polling fetches and an ApiVersions in one write. With
    // queued.max.requests=4 only 4 fetches may wait at a time; all 9 answers come back in order.
    let topic = unique_topic("pipelined");
    runtime().block_on(kafka::create_topic(&cluster.bootstrap(), &topic, 1, 1, &[]));
    let purgatory =
        "kafka_server_delayedoperationpurgatory_purgatorysize{delayedOperation=\"Fetch\"}";
    let mut c = RawConnection::connect(cluster.client_address(0));
    let mut burst = BytesMut::new();
    for _ in 0..8 {
        burst.extend_from_slice(&c.frame(&consumer_fetch(&topic, 0, 0, 2000), 12));
    }
    burst.extend_from_slice(&c.frame(&ApiVersionsRequest::default(), 2));
    c.send_raw(&burst).expect("send pipelined requests");
    assert!(
        wait_until(Duration::from_secs(5), || metric(&cluster, purgatory)
            >= 4.0),
        "four fetches wait in the purgatory"
    );
    let deadline = Instant::now() + Duration::from_millis(800);
    while Instant::now() < deadline {
        let waiting = metric(&cluster, purgatory);
        assert!(
            waiting <= 4.0,
            "{waiting} fetches of one connection in flight, queued.max.requests is 4"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.set_read_timeout(Duration::from_secs(15));
    let order: Vec<i32> = (0..9)
        .map(|_| {
            c.read_frame()
                .expect("every pipelined request answered")
                .get_i32()
        })
        .collect();
    assert_eq!(
        order,
        (1..=9).collect::<Vec<_>>(),
        "answers in request order"
    );
    assert!(answers(&mut bystander), "other connections unaffected");
}

#[test]
fn creation_rate_throttles_a_burst_without_refusing_it() {
    let cluster =
        Cluster::start(ClusterOptions::new(1).property("max.connection.creation.rate", 5));
    let started = Instant::now();
    let mut burst = Vec::new();
    for _ in 0..15 {
        let mut c = connect_from("127.0.0.1", &cluster);
        assert!(
            answers(&mut c),
            "throttled connections are delayed, not refused"
        );
        burst.push(c);
    }
    let elapsed = started.elapsed();
    // A burst of 5 (one second's worth), then 5 per second: the last 10 need about 2 s.
    assert!(
        elapsed >= Duration::from_millis(1500),
        "15 connections at 5/s were admitted in {elapsed:?}"
    );
    assert!(
        metric(
            &cluster,
            "rivulet_network_connections_throttled_total{listener=\"CLIENT\"}"
        ) >= 5.0
    );
    drop(burst);

    // A real client still works under the rate limit.
    let topic = unique_topic("rated");
    let producer = kafka::producer(&cluster.bootstrap(), &[("acks", "1")]);
    let delivered = runtime().block_on(producer.send(
        FutureRecord::<(), str>::to(&topic).payload("hello"),
        Duration::from_secs(30),
    ));
    assert!(delivered.is_ok(), "{delivered:?}");
}

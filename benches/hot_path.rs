//! Micro benchmarks of the broker's hot path:
//! - codec: decoding a produce request and encoding its response, encoding a fetch response
//!   around file regions versus the generated encoder with the records in memory;
//! - produce: an in-process two-broker cluster on loopback, one client connection sending
//!   single-batch produce requests with acks=1 (leader append) and acks=all (append plus
//!   replication to the follower);
//! - fetch transfer: sending 1 MiB of segment file to a socket with sendfile(2) versus reading
//!   it into memory and writing it.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use broker::config::{BrokerConfig, Origin, Properties};
use broker::wire::{encode, encode_fetch_response, FetchPartitionRecords};
use broker::Broker;
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafka_core::ErrorCode;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    FetchResponse, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use storage::FileRegion;

fn batch(records: usize, value_size: usize) -> Bytes {
    support::batches::batch(
        records,
        false,
        |_| Bytes::from(vec![b'v'; value_size]),
        None,
    )
}

fn produce_request(topic: &str, partitions: i32, acks: i16, records: &Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(
                (0..partitions)
                    .map(|p| {
                        PartitionProduceData::default()
                            .with_index(p)
                            .with_records(Some(records.clone()))
                    })
                    .collect(),
            )])
}

fn codec(c: &mut Criterion) {
    let records = batch(2, 100);
    let request = produce_request("orders", 2, -1, &records);
    let mut encoded = BytesMut::new();
    request.encode(&mut encoded, 9).expect("encode");
    let encoded = encoded.freeze();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode produce v9 (2 partitions)", |b| {
        b.iter(|| ProduceRequest::decode(&mut encoded.clone(), 9).expect("decode"))
    });
    let response = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(TopicName(StrBytes::from_static_str("orders")))
        .with_partition_responses(
            (0..2)
                .map(|p| {
                    PartitionProduceResponse::default()
                        .with_index(p)
                        .with_base_offset(1000)
                        .with_log_start_offset(0)
                })
                .collect(),
        )]);
    group.bench_function("encode produce response v9", |b| {
        b.iter(|| encode(&response, 9, 7, ErrorCode::NONE).expect("encode"))
    });

    let file = tempfile::tempfile().expect("temp file");
    let file = Arc::new(file);
    let payload = Bytes::from(vec![7u8; 16 * 1024]);
    let region = FileRegion {
        file,
        position: 0,
        len: payload.len() as u32,
    };
    let partitions: Vec<PartitionData> = (0..10)
        .map(|p| {
            PartitionData::default()
                .with_partition_index(p)
                .with_high_watermark(100)
                .with_last_stable_offset(100)
                .with_log_start_offset(0)
        })
        .collect();
    let mut inline =
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(partitions.clone())]);
    for p in &mut inline.responses[0].partitions {
        p.records = Some(payload.clone());
    }
    let spliced = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("orders")))
        .with_partitions(partitions)]);
    let regions = vec![(0..10)
        .map(|_| {
            Some(FetchPartitionRecords {
                regions: vec![region.clone()],
            })
        })
        .collect::<Vec<_>>()];
    group.bench_function("encode fetch v12, 10 x 16 KiB, regions", |b| {
        b.iter(|| encode_fetch_response(12, 7, &spliced, &regions).expect("encode"))
    });
    group.bench_function("encode fetch v12, 10 x 16 KiB, records in memory", |b| {
        b.iter(|| encode(&inline, 12, 7, ErrorCode::NONE).expect("encode"))
    });
    group.finish();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Cluster {
    runtime: tokio::runtime::Runtime,
    brokers: Vec<Broker>,
    _dirs: Vec<tempfile::TempDir>,
}

/// Two brokers in this process on loopback (a two-voter quorum).
fn start_cluster() -> Cluster {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ports: Vec<(u16, u16)> = (0..2).map(|_| (free_port(), free_port())).collect();
    let voters = ports
        .iter()
        .enumerate()
        .map(|(i, (_, c))| format!("{i}@127.0.0.1:{c}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut dirs = Vec::new();
    let mut brokers = Vec::new();
    for (i, (client, controller)) in ports.iter().enumerate() {
        let dir = tempfile::tempdir().expect("dir");
        let mut p = Properties::default();
        for (k, v) in [
            ("node.id", i.to_string()),
            (
                "listeners",
                format!("PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}"),
            ),
            ("controller.quorum.voters", voters.clone()),
            ("log.dirs", dir.path().display().to_string()),
            ("metrics.listener", format!("127.0.0.1:{}", free_port())),
            ("default.replication.factor", "2".to_string()),
            ("min.insync.replicas", "2".to_string()),
        ] {
            p.set(k, v, Origin::CommandLine);
        }
        let config = BrokerConfig::from_properties(p).expect("config");
        brokers.push(config);
        dirs.push(dir);
    }
    let brokers = runtime.block_on(async {
        let mut started = Vec::new();
        for config in brokers {
            started.push(tokio::spawn(Broker::start(config)));
        }
        let mut out = Vec::new();
        for s in started {
            out.push(s.await.expect("task").expect("broker"));
        }
        out
    });
    Cluster {
        runtime,
        brokers,
        _dirs: dirs,
    }
}

/// A blocking client that sends one request and reads one response.
struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            correlation: 0,
        }
    }

    fn produce(&mut self, request: &ProduceRequest) -> ProduceResponse {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(0)
            .with_request_api_version(9)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("bench")));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; 4]);
        encode_request_header_into_buffer(&mut buf, &header).expect("header");
        request.encode(&mut buf, 9).expect("body");
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf).expect("write");
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).expect("read length");
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).expect("read body");
        let mut body = Bytes::from(body);
        ResponseHeader::decode(&mut body, 1).expect("header");
        ProduceResponse::decode(&mut body, 9).expect("response")
    }
}

fn produce(c: &mut Criterion) {
    let cluster = start_cluster();
    let topic = "bench-produce";
    // Create the topic through a produce on an auto-created topic's metadata: use the admin path.
    cluster.runtime.block_on(async {
        let broker = &cluster.brokers[0];
        let spec = raft_controller::CreateTopicSpec {
            name: topic.to_string(),
            // Kafka's rule: explicit assignments come without a count or replication factor.
            num_partitions: -1,
            replication_factor: -1,
            assignments: [(0, vec![0, 1])].into_iter().collect(),
            configs: Default::default(),
        };
        let mut outcome = String::from("not tried");
        for _ in 0..100 {
            match broker
                .quorum()
                .create_topics(vec![spec.clone()], false)
                .await
            {
                Ok(results) if results.iter().all(|r| r.is_ok()) => {
                    outcome.clear();
                    break;
                }
                Ok(results) => outcome = format!("{results:?}"),
                Err(e) => outcome = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(outcome.is_empty(), "topic not created: {outcome}");
        // Wait until broker 0 leads it with both replicas in the ISR.
        for _ in 0..200 {
            let ready = broker
                .replica_status(topic, 0)
                .is_some_and(|r| r.is_leader && r.isr.len() == 2);
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("partition not ready");
    });
    let leader = cluster.brokers[0].client_addresses()[0];
    let records = batch(1, 100);
    let mut group = c.benchmark_group("produce");
    group
        .throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(5));
    for (acks, name) in [
        (1i16, "acks=1, leader append"),
        (-1, "acks=all, append + replicate to a follower"),
    ] {
        let mut client = Client::connect(leader);
        let request = produce_request(topic, 1, acks, &records);
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = client.produce(&request);
                assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
            })
        });
    }
    group.finish();
    let Cluster {
        runtime,
        brokers,
        _dirs,
    } = cluster;
    runtime.block_on(async {
        for b in brokers {
            let _ = b.shutdown(false).await;
        }
    });
}

fn fetch_transfer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut file = tempfile::tempfile().expect("temp file");
    let data = vec![42u8; 1 << 20];
    file.write_all(&data).expect("write");
    let region = FileRegion {
        file: Arc::new(file),
        position: 0,
        len: data.len() as u32,
    };
    // A sink that drains whatever arrives.
    let sink = TcpListener::bind("127.0.0.1:0").expect("sink");
    let sink_addr = sink.local_addr().expect("addr");
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = sink.accept() {
            let mut buf = vec![0u8; 1 << 20];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    let mut socket = runtime
        .block_on(tokio::net::TcpStream::connect(sink_addr))
        .expect("connect");
    let mut group = c.benchmark_group("fetch transfer");
    group.throughput(Throughput::Bytes(u64::from(region.len)));
    group.bench_function("1 MiB region, sendfile", |b| {
        b.iter(|| {
            runtime
                .block_on(broker::wire::send_region(&socket, &region))
                .expect("sendfile")
        })
    });
    group.bench_function("1 MiB region, read then write", |b| {
        b.iter_batched(
            || (),
            |_| {
                runtime.block_on(async {
                    use tokio::io::AsyncWriteExt;
                    let bytes = region.read_to_bytes().expect("pread");
                    socket.write_all(&bytes).await.expect("write");
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = hot_path;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = codec, produce, fetch_transfer
}
criterion_main!(hot_path);

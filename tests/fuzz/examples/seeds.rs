//! Writes the seed inputs into the corpora under `tests/fuzz/corpus/<target>/`: real encoded requests for every
//! API the broker serves (each checked against `broker::wire::decode_request`), real record
//! batches in every codec, recoverable segment files, and quorum RPC payloads the decoders
//! accept. Run from the repository root:
//! `cargo run --manifest-path tests/fuzz/Cargo.toml --example seeds`.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Encodable, HeaderVersion, Message, Request, StrBytes,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn corpus_dir(target: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    // Seeds are (re)written by name; what the fuzzer added beside them stays.
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn batch(compression: Compression, base_offset: i64, keys: &[&str]) -> Result<Bytes> {
    let records: Vec<Record> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: base_offset + i as i64,
            // One batch: the encoder splits where offset - sequence changes.
            sequence: (-1i32).wrapping_add(i as i32),
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::from_static(b"value")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )?;
    Ok(buf.freeze())
}

/// A request frame (length prefix removed) if the broker serves `T` at `version`.
fn frame<T: Request + Encodable + Message + HeaderVersion>(
    body: &T,
    version: i16,
) -> Option<Bytes> {
    let key = ApiKey::try_from(T::KEY).ok()?;
    let header = RequestHeader::default()
        .with_request_api_key(T::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("seed")));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).ok()?;
    body.encode(&mut buf, version).ok()?;
    let buf = buf.freeze();
    let decoded = broker::wire::decode_request(buf.clone()).ok()?;
    assert_eq!(decoded.api_key, key);
    Some(buf)
}

/// Writes `body` at the lowest and highest version the broker serves; returns how many.
fn write_request<T: Request + Encodable + Message + HeaderVersion>(
    dir: &Path,
    name: &str,
    body: &T,
) -> Result<usize> {
    let served: Vec<(i16, Bytes)> = (T::VERSIONS.min..=T::VERSIONS.max)
        .filter_map(|v| frame(body, v).map(|f| (v, f)))
        .collect();
    let mut picked: Vec<&(i16, Bytes)> = served.iter().take(1).collect();
    picked.extend(served.iter().skip(1).last());
    for (version, bytes) in &picked {
        fs::write(dir.join(format!("{name}-v{version}")), bytes)?;
    }
    Ok(picked.len())
}

fn topic(name: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(name))
}

fn requests() -> Result<()> {
    let dir = corpus_dir("request")?;
    let records = batch(Compression::None, 0, &["k"])?;
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic("t"))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records)),
            ])]);
    let fetch = FetchRequest::default()
        .with_max_wait_ms(100)
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic("t"))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic("t"))),
    ]));
    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(topic("t"))
            .with_num_partitions(3)
            .with_replication_factor(1),
    ]);
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_session_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(StrBytes::from_static_str("range"))
        .with_metadata(Bytes::from_static(b"\0\x01"))]);
    let mut written = 0;
    written += write_request(&dir, "produce", &produce)?;
    written += write_request(&dir, "fetch", &fetch)?;
    written += write_request(&dir, "metadata", &metadata)?;
    written += write_request(&dir, "create-topics", &create)?;
    written += write_request(&dir, "join-group", &join)?;
    macro_rules! defaults {
        ($($t:ty),* $(,)?) => {$(
            let n = write_request(&dir, stringify!($t), &<$t>::default())?;
            assert!(n > 0, "{} is not served at any version", stringify!($t));
            written += n;
        )*};
    }
    defaults!(
        ProduceRequest,
        FetchRequest,
        ListOffsetsRequest,
        MetadataRequest,
        OffsetCommitRequest,
        OffsetFetchRequest,
        FindCoordinatorRequest,
        JoinGroupRequest,
        HeartbeatRequest,
        LeaveGroupRequest,
        SyncGroupRequest,
        DescribeGroupsRequest,
        ListGroupsRequest,
        ApiVersionsRequest,
        CreateTopicsRequest,
        DeleteTopicsRequest,
        DeleteRecordsRequest,
        InitProducerIdRequest,
        OffsetForLeaderEpochRequest,
        DescribeConfigsRequest,
        AlterConfigsRequest,
        DescribeLogDirsRequest,
        CreatePartitionsRequest,
        DeleteGroupsRequest,
        ElectLeadersRequest,
        IncrementalAlterConfigsRequest,
        OffsetDeleteRequest,
        DescribeClusterRequest,
        DescribeProducersRequest,
    );
    println!("request: {written} seeds");
    Ok(())
}

fn record_batches() -> Result<()> {
    let dir = corpus_dir("record_batch")?;
    let codecs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    for (name, codec) in codecs {
        let bytes = batch(codec, 0, &["a", "b", "a"])?;
        let header = storage::BatchHeader::parse(&bytes)?;
        assert_eq!(header.size(), bytes.len());
        // Flags byte: 0 = delete policy, CreateTime; 1 = compacted (keys checked).
        for flags in [0u8, 1] {
            let mut seed = vec![flags];
            seed.extend_from_slice(&bytes);
            fs::write(dir.join(format!("{name}-{flags}")), seed)?;
        }
    }
    println!("record_batch: {} seeds", codecs.len() * 2);
    Ok(())
}

fn recovery() -> Result<()> {
    let dir = corpus_dir("recovery")?;
    let mut log = BytesMut::new();
    log.put(batch(Compression::None, 0, &["a", "b"])?);
    log.put(batch(Compression::Zstd, 2, &["c"])?);
    log.put(batch(Compression::None, 3, &["d"])?);
    let log = log.freeze();
    // Whole log, no flags.
    fs::write(dir.join("three-batches"), [&[0u8][..], &log].concat())?;
    // A torn tail: the last batch cut short.
    fs::write(
        dir.join("torn-tail"),
        [&[0u8][..], &log[..log.len() - 7]].concat(),
    )?;
    // A clean shutdown marker at offset 4 and empty indexes.
    let mut clean = vec![2u8 | 4];
    clean.extend_from_slice(&4i64.to_be_bytes());
    clean.extend_from_slice(&[0, 0, 0, 0]);
    clean.extend_from_slice(&log);
    fs::write(dir.join("clean-empty-indexes"), clean)?;
    // Zeroed CRCs, fixed up by the harness (flag bit 0), in a segment based at offset 0.
    let mut zeroed = log.to_vec();
    let mut pos = 0;
    while pos < zeroed.len() {
        let header = storage::BatchHeader::parse(&zeroed[pos..])?;
        zeroed[pos + 17..pos + 21].fill(0);
        pos += header.size();
    }
    fs::write(
        dir.join("fixed-crcs"),
        [&[1u8 | 8, 0, 0][..], &zeroed].concat(),
    )?;
    println!("recovery: 4 seeds");
    Ok(())
}

fn raft_rpc() -> Result<()> {
    let dir = corpus_dir("raft_rpc")?;
    let vote = r#"{"leader_id":{"term":2,"node_id":1},"committed":false}"#;
    let log_id = r#"{"leader_id":{"term":2,"node_id":1},"index":7}"#;
    let requests = [
        (
            "vote",
            format!(r#"{{"id":1,"body":{{"Vote":{{"vote":{vote},"last_log_id":{log_id}}}}}}}"#),
        ),
        (
            "append-entries",
            format!(
                r#"{{"id":2,"body":{{"AppendEntries":{{"vote":{vote},"prev_log_id":{log_id},"entries":[{{"log_id":{{"leader_id":{{"term":2,"node_id":1}},"index":8}},"payload":{{"Normal":{{"v":1,"op":{{"type":"RegisterBroker","broker_id":3,"incarnation_id":"67e55044-10b1-426f-9247-bb680e5fe0c8"}}}}}}}},{{"log_id":{{"leader_id":{{"term":2,"node_id":1}},"index":9}},"payload":"Blank"}}],"leader_commit":{log_id}}}}}}}"#
            ),
        ),
        (
            "add-learner",
            r#"{"id":3,"body":{"AddLearner":{"node_id":4,"addr":"127.0.0.1:9093"}}}"#.to_string(),
        ),
    ];
    for (name, json) in &requests {
        if let Err(e) = raft_controller::wire::decode_request(json.as_bytes()) {
            return Err(format!("seed {name} does not decode: {e}").into());
        }
        fs::write(dir.join(name), [&[0u8][..], json.as_bytes()].concat())?;
    }
    let responses = [
        (
            "vote-response",
            format!(
                r#"{{"id":1,"body":{{"Vote":{{"Ok":{{"vote":{vote},"vote_granted":true,"last_log_id":{log_id}}}}}}}}}"#
            ),
        ),
        (
            "bad-request",
            r#"{"id":3,"body":{"BadRequest":"unknown variant"}}"#.to_string(),
        ),
    ];
    for (name, json) in &responses {
        if let Err(e) = raft_controller::wire::decode_response(json.as_bytes()) {
            return Err(format!("seed {name} does not decode: {e}").into());
        }
        fs::write(dir.join(name), [&[1u8][..], json.as_bytes()].concat())?;
    }
    println!("raft_rpc: {} seeds", requests.len() + responses.len());
    Ok(())
}

fn main() -> Result<()> {
    requests()?;
    record_batches()?;
    recovery()?;
    raft_rpc()?;
    Ok(())
}

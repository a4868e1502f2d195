//! The records of `__consumer_offsets`, byte-compatible with Kafka's: offset commit key v1 /
//! value v3 (v1 when the commit carries an explicit expire timestamp), group metadata key v2 /
//! value v3, tombstones (null values) for deletions, written as uncompressed v2 record batches.
//! Decoding accepts every version Kafka has written (keys v0–v2, offset values v0–v4, group
//! values v0–v4, the v4s being flexible with tagged fields); keys of newer record types are
//! reported as [`RecordKey::Other`] so a loader can skip them.

use bytes::{BufMut, Bytes, BytesMut};

/// Offset commit keys are written at version 1 (versions 0 and 1 share the layout).
const OFFSET_KEY_VERSION: i16 = 1;
/// Group metadata keys are version 2.
const GROUP_KEY_VERSION: i16 = 2;
/// Offset commit values: v3 normally, v1 when an explicit expire timestamp is stored.
const OFFSET_VALUE_VERSION: i16 = 3;
const OFFSET_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
/// Group metadata values are written at version 3 (static membership).
const GROUP_VALUE_VERSION: i16 = 3;

/// A record of `__consumer_offsets` that cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("record ends inside {0}")]
    Truncated(&'static str),
    #[error("{what} has unknown version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("{0} has a negative length")]
    NegativeLength(&'static str),
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("{0} is too long for the record format")]
    TooLong(&'static str),
    #[error("encoding the record batch failed: {0}")]
    Batch(String),
}

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// A committed offset of `group` for `topic`-`partition`.
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    /// The metadata (members, generation, assignment) of `group`.
    GroupMetadata { group: String },
    /// A record type this broker does not use (e.g. KIP-848 consumer group records).
    Other { version: i16 },
}

/// The value of an offset commit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Only offset commits v2-v4 with an explicit retention time carry one.
    pub expire_timestamp: Option<i64>,
}

/// One member as stored in the group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's selected protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// The value of a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// "" for a group without a protocol type.
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 when unknown (values before v2).
    pub current_state_timestamp: i64,
    pub members: Vec<MemberMetadataValue>,
}

/// A key and value (None: tombstone) to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorRecord {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

impl CoordinatorRecord {
    pub fn offset_commit(
        group: &str,
        topic: &str,
        partition: i32,
        value: &OffsetCommitValue,
    ) -> Result<Self, FormatError> {
        Ok(CoordinatorRecord {
            key: encode_offset_key(group, topic, partition)?,
            value: Some(value.encode()?),
        })
    }

    pub fn offset_tombstone(group: &str, topic: &str, partition: i32) -> Result<Self, FormatError> {
        Ok(CoordinatorRecord {
            key: encode_offset_key(group, topic, partition)?,
            value: None,
        })
    }

    pub fn group_metadata(group: &str, value: &GroupMetadataValue) -> Result<Self, FormatError> {
        Ok(CoordinatorRecord {
            key: encode_group_key(group)?,
            value: Some(value.encode()?),
        })
    }

    pub fn group_tombstone(group: &str) -> Result<Self, FormatError> {
        Ok(CoordinatorRecord {
            key: encode_group_key(group)?,
            value: None,
        })
    }
}

/// Builds one uncompressed v2 record batch (offsets relative to 0; the log assigns real ones).
pub fn build_batch(records: &[CoordinatorRecord], now_ms: i64) -> Result<Bytes, FormatError> {
    let entries: Vec<_> = records
        .iter()
        .map(|r| (Some(r.key.clone()), r.value.clone()))
        .collect();
    storage::plain_batch(&entries, now_ms).map_err(|e| FormatError::Batch(e.to_string()))
}

fn put_string(buf: &mut BytesMut, s: &str, what: &'static str) -> Result<(), FormatError> {
    let len = i16::try_from(s.len()).map_err(|_| FormatError::TooLong(what))?;
    buf.put_i16(len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

fn put_nullable_string(
    buf: &mut BytesMut,
    s: Option<&str>,
    what: &'static str,
) -> Result<(), FormatError> {
    match s {
        Some(s) => put_string(buf, s, what),
        None => {
            buf.put_i16(-1);
            Ok(())
        }
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8], what: &'static str) -> Result<(), FormatError> {
    let len = i32::try_from(b.len()).map_err(|_| FormatError::TooLong(what))?;
    buf.put_i32(len);
    buf.put_slice(b);
    Ok(())
}

pub fn encode_offset_key(group: &str, topic: &str, partition: i32) -> Result<Bytes, FormatError> {
    let mut buf = BytesMut::with_capacity(8 + group.len() + topic.len());
    buf.put_i16(OFFSET_KEY_VERSION);
    put_string(&mut buf, group, "group id")?;
    put_string(&mut buf, topic, "topic")?;
    buf.put_i32(partition);
    Ok(buf.freeze())
}

pub fn encode_group_key(group: &str) -> Result<Bytes, FormatError> {
    let mut buf = BytesMut::with_capacity(4 + group.len());
    buf.put_i16(GROUP_KEY_VERSION);
    put_string(&mut buf, group, "group id")?;
    Ok(buf.freeze())
}

/// Decodes a record key.
pub fn decode_key(bytes: &[u8]) -> Result<RecordKey, FormatError> {
    let mut r = Reader::new(bytes, false);
    let version = r.i16("key version")?;
    match version {
        0 | 1 => Ok(RecordKey::Offset {
            group: r.string("group id")?,
            topic: r.string("topic")?,
            partition: r.i32("partition")?,
        }),
        2 => Ok(RecordKey::GroupMetadata {
            group: r.string("group id")?,
        }),
        v if v > 2 => Ok(RecordKey::Other { version: v }),
        v => Err(FormatError::UnknownVersion {
            what: "record key",
            version: v,
        }),
    }
}

impl OffsetCommitValue {
    pub fn encode(&self) -> Result<Bytes, FormatError> {
        let mut buf = BytesMut::with_capacity(32 + self.metadata.len());
        match self.expire_timestamp {
            Some(expire) => {
                buf.put_i16(OFFSET_VALUE_VERSION_WITH_EXPIRY);
                buf.put_i64(self.offset);
                put_string(&mut buf, &self.metadata, "offset metadata")?;
                buf.put_i64(self.commit_timestamp);
                buf.put_i64(expire);
            }
            None => {
                buf.put_i16(OFFSET_VALUE_VERSION);
                buf.put_i64(self.offset);
                buf.put_i32(self.leader_epoch);
                put_string(&mut buf, &self.metadata, "offset metadata")?;
                buf.put_i64(self.commit_timestamp);
            }
        }
        Ok(buf.freeze())
    }

    pub fn decode(bytes: &[u8]) -> Result<OffsetCommitValue, FormatError> {
        let version = Reader::new(bytes, false).i16("offset value version")?;
        if !(0..=4).contains(&version) {
            return Err(FormatError::UnknownVersion {
                what: "offset commit value",
                version,
            });
        }
        let mut r = Reader::new(bytes, version >= 4);
        r.i16("offset value version")?;
        let offset = r.i64("offset")?;
        let leader_epoch = if version >= 3 {
            r.i32("leader epoch")?
        } else {
            -1
        };
        let metadata = r.string("offset metadata")?;
        let commit_timestamp = r.i64("commit timestamp")?;
        let expire_timestamp = if version == 1 {
            Some(r.i64("expire timestamp")?).filter(|t| *t >= 0)
        } else {
            None
        };
        if version >= 4 {
            r.skip_tagged_fields()?;
        }
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            expire_timestamp,
        })
    }
}

impl GroupMetadataValue {
    pub fn encode(&self) -> Result<Bytes, FormatError> {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(GROUP_VALUE_VERSION);
        put_string(&mut buf, &self.protocol_type, "protocol type")?;
        buf.put_i32(self.generation);
        put_nullable_string(&mut buf, self.protocol.as_deref(), "protocol")?;
        put_nullable_string(&mut buf, self.leader.as_deref(), "leader")?;
        buf.put_i64(self.current_state_timestamp);
        let count =
            i32::try_from(self.members.len()).map_err(|_| FormatError::TooLong("members"))?;
        buf.put_i32(count);
        for m in &self.members {
            put_string(&mut buf, &m.member_id, "member id")?;
            put_nullable_string(
                &mut buf,
                m.group_instance_id.as_deref(),
                "group instance id",
            )?;
            put_string(&mut buf, &m.client_id, "client id")?;
            put_string(&mut buf, &m.client_host, "client host")?;
            buf.put_i32(m.rebalance_timeout_ms);
            buf.put_i32(m.session_timeout_ms);
            put_bytes(&mut buf, &m.subscription, "subscription")?;
            put_bytes(&mut buf, &m.assignment, "assignment")?;
        }
        Ok(buf.freeze())
    }

    pub fn decode(bytes: &[u8]) -> Result<GroupMetadataValue, FormatError> {
        let version = Reader::new(bytes, false).i16("group value version")?;
        if !(0..=4).contains(&version) {
            return Err(FormatError::UnknownVersion {
                what: "group metadata value",
                version,
            });
        }
        let mut r = Reader::new(bytes, version >= 4);
        r.i16("group value version")?;
        let protocol_type = r.string("protocol type")?;
        let generation = r.i32("generation")?;
        let protocol = r.nullable_string("protocol")?;
        let leader = r.nullable_string("leader")?;
        let current_state_timestamp = if version >= 2 {
            r.i64("current state timestamp")?
        } else {
            -1
        };
        let count = r.array_len("members")?;
        let mut members = Vec::with_capacity(count.min(r.remaining()));
        for _ in 0..count {
            let member_id = r.string("member id")?;
            let group_instance_id = if version >= 3 {
                r.nullable_string("group instance id")?
            } else {
                None
            };
            let client_id = r.string("client id")?;
            let client_host = r.string("client host")?;
            let session_or_rebalance = r.i32("timeout")?;
            let (rebalance_timeout_ms, session_timeout_ms) = if version >= 1 {
                (session_or_rebalance, r.i32("session timeout")?)
            } else {
                // v0 has only the session timeout, which Kafka also used as the rebalance timeout.
                (session_or_rebalance, session_or_rebalance)
            };
            let subscription = r.bytes("subscription")?;
            let assignment = r.bytes("assignment")?;
            if version >= 4 {
                r.skip_tagged_fields()?;
            }
            members.push(MemberMetadataValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        if version >= 4 {
            r.skip_tagged_fields()?;
        }
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

/// Reads Kafka's primitive types, in the classic or the flexible (compact, tagged) encoding.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Self {
        Reader {
            buf,
            pos: 0,
            flexible,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        if self.remaining() < n {
            return Err(FormatError::Truncated(what));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, FormatError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, FormatError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, FormatError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn unsigned_varint(&mut self, what: &'static str) -> Result<u32, FormatError> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.take(1, what)?[0];
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(FormatError::TooLong(what))
    }

    /// A length: i16/i32 in the classic encoding, unsigned varint (length + 1) when flexible.
    /// `None` means null.
    fn length(&mut self, wide: bool, what: &'static str) -> Result<Option<usize>, FormatError> {
        if self.flexible {
            let n = self.unsigned_varint(what)?;
            return Ok(if n == 0 { None } else { Some((n - 1) as usize) });
        }
        let n = if wide {
            self.i32(what)?
        } else {
            i32::from(self.i16(what)?)
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(FormatError::NegativeLength(what)),
            n => Ok(Some(n as usize)),
        }
    }

    fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>, FormatError> {
        match self.length(false, what)? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n, what)?;
                std::str::from_utf8(b)
                    .map(|s| Some(s.to_string()))
                    .map_err(|_| FormatError::NotUtf8(what))
            }
        }
    }

    fn string(&mut self, what: &'static str) -> Result<String, FormatError> {
        self.nullable_string(what)?
            .ok_or(FormatError::NegativeLength(what))
    }

    fn bytes(&mut self, what: &'static str) -> Result<Bytes, FormatError> {
        match self.length(true, what)? {
            None => Ok(Bytes::new()),
            Some(n) => Ok(Bytes::copy_from_slice(self.take(n, what)?)),
        }
    }

    fn array_len(&mut self, what: &'static str) -> Result<usize, FormatError> {
        Ok(self.length(true, what)?.unwrap_or(0))
    }

    fn skip_tagged_fields(&mut self) -> Result<(), FormatError> {
        let count = self.unsigned_varint("tagged fields")?;
        for _ in 0..count {
            self.unsigned_varint("tag")?;
            let size = self.unsigned_varint("tagged field size")? as usize;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::records::RecordBatchDecoder;

    fn sample_group() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".to_string(),
            generation: 7,
            protocol: Some("range".to_string()),
            leader: Some("c-1".to_string()),
            current_state_timestamp: 1_700_000_000_000,
            members: vec![
                MemberMetadataValue {
                    member_id: "c-1".to_string(),
                    group_instance_id: None,
                    client_id: "c".to_string(),
                    client_host: "/10.0.0.1".to_string(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"\x00\x01sub"),
                    assignment: Bytes::from_static(b"\x00\x01asg"),
                },
                MemberMetadataValue {
                    member_id: "i-2".to_string(),
                    group_instance_id: Some("i".to_string()),
                    client_id: "c".to_string(),
                    client_host: "/10.0.0.2".to_string(),
                    rebalance_timeout_ms: 60_000,
                    session_timeout_ms: 10_000,
                    subscription: Bytes::new(),
                    assignment: Bytes::new(),
                },
            ],
        }
    }

    #[test]
    fn keys_round_trip() {
        let key = encode_offset_key("g", "topic", 3).unwrap();
        assert_eq!(
            decode_key(&key).unwrap(),
            RecordKey::Offset {
                group: "g".into(),
                topic: "topic".into(),
                partition: 3
            }
        );
        let key = encode_group_key("group-1").unwrap();
        assert_eq!(
            decode_key(&key).unwrap(),
            RecordKey::GroupMetadata {
                group: "group-1".into()
            }
        );
    }

    #[test]
    fn offset_key_bytes_are_kafkas() {
        // OffsetCommitKey v1: version, group, topic, partition.
        let expected: &[u8] = &[0, 1, 0, 2, b'g', b'1', 0, 3, b'f', b'o', b'o', 0, 0, 0, 5];
        assert_eq!(&encode_offset_key("g1", "foo", 5).unwrap()[..], expected);
        // GroupMetadataKey v2.
        assert_eq!(
            &encode_group_key("g1").unwrap()[..],
            &[0, 2, 0, 2, b'g', b'1']
        );
        // Version 0 offset keys (written by Kafka before 2.x) decode the same way.
        let v0: &[u8] = &[0, 0, 0, 2, b'g', b'1', 0, 3, b'f', b'o', b'o', 0, 0, 0, 5];
        assert_eq!(
            decode_key(v0).unwrap(),
            RecordKey::Offset {
                group: "g1".into(),
                topic: "foo".into(),
                partition: 5
            }
        );
        // KIP-848 record keys are recognised as something else, not an error.
        assert_eq!(
            decode_key(&[0, 3, 0, 1, b'x']).unwrap(),
            RecordKey::Other { version: 3 }
        );
    }

    #[test]
    fn offset_values_round_trip() {
        let v = OffsetCommitValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp: 1234,
            expire_timestamp: None,
        };
        let bytes = v.encode().unwrap();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), v);
        let with_expiry = OffsetCommitValue {
            leader_epoch: -1,
            expire_timestamp: Some(9999),
            ..v
        };
        let bytes = with_expiry.encode().unwrap();
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), with_expiry);
    }

    #[test]
    fn offset_value_bytes_as_kafka_writes_them() {
        // v3: offset=100, leaderEpoch=5, metadata="", commitTimestamp=0x0102030405.
        let v3: &[u8] = &[
            0, 3, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 5, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5,
        ];
        let v = OffsetCommitValue::decode(v3).unwrap();
        assert_eq!(
            (
                v.offset,
                v.leader_epoch,
                v.metadata.as_str(),
                v.commit_timestamp
            ),
            (100, 5, "", 0x0102030405)
        );
        assert_eq!(v.encode().unwrap().as_ref(), v3);
        // v0: offset, metadata, timestamp.
        let v0: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, b'm', 0, 0, 0, 0, 0, 0, 0, 9,
        ];
        let v = OffsetCommitValue::decode(v0).unwrap();
        assert_eq!(
            (
                v.offset,
                v.leader_epoch,
                v.metadata.as_str(),
                v.commit_timestamp
            ),
            (7, -1, "m", 9)
        );
        // v2: like v0 (the expire timestamp of v1 is gone).
        let v2: &[u8] = &[0, 2, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        assert_eq!(OffsetCommitValue::decode(v2).unwrap().offset, 7);
        // v4 (flexible): offset, leaderEpoch, compact metadata "ab", commitTimestamp, tags (one unknown tag).
        let v4: &[u8] = &[
            0, 4, 0, 0, 0, 0, 0, 0, 0, 8, 255, 255, 255, 255, 3, b'a', b'b', 0, 0, 0, 0, 0, 0, 0,
            1, 1, 0, 2, 0xaa, 0xbb,
        ];
        let v = OffsetCommitValue::decode(v4).unwrap();
        assert_eq!(
            (
                v.offset,
                v.leader_epoch,
                v.metadata.as_str(),
                v.commit_timestamp
            ),
            (8, -1, "ab", 1)
        );
    }

    #[test]
    fn group_values_round_trip() {
        let g = sample_group();
        let bytes = g.encode().unwrap();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(GroupMetadataValue::decode(&bytes).unwrap(), g);
        let empty = GroupMetadataValue {
            protocol_type: String::new(),
            generation: 1,
            protocol: None,
            leader: None,
            current_state_timestamp: -1,
            members: vec![],
        };
        assert_eq!(
            GroupMetadataValue::decode(&empty.encode().unwrap()).unwrap(),
            empty
        );
    }

    #[test]
    fn group_value_bytes_as_kafka_writes_them() {
        // v3 with one static member, laid out field by field as in GroupMetadataValue.json.
        let mut b: Vec<u8> = vec![0, 3];
        b.extend_from_slice(&[0, 8]);
        b.extend_from_slice(b"consumer");
        b.extend_from_slice(&2i32.to_be_bytes()); // generation
        b.extend_from_slice(&[0, 5]);
        b.extend_from_slice(b"range"); // protocol
        b.extend_from_slice(&[0, 3]);
        b.extend_from_slice(b"m-1"); // leader
        b.extend_from_slice(&77i64.to_be_bytes()); // currentStateTimestamp
        b.extend_from_slice(&1i32.to_be_bytes()); // members
        b.extend_from_slice(&[0, 3]);
        b.extend_from_slice(b"m-1");
        b.extend_from_slice(&[0, 2]);
        b.extend_from_slice(b"i1"); // groupInstanceId
        b.extend_from_slice(&[0, 1, b'c']); // clientId
        b.extend_from_slice(&[0, 2, b'/', b'h']); // clientHost
        b.extend_from_slice(&300_000i32.to_be_bytes());
        b.extend_from_slice(&10_000i32.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&[0xde, 0xad]);
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&[0xbe]);
        let g = GroupMetadataValue::decode(&b).unwrap();
        assert_eq!(g.protocol_type, "consumer");
        assert_eq!(g.generation, 2);
        assert_eq!(g.protocol.as_deref(), Some("range"));
        assert_eq!(g.leader.as_deref(), Some("m-1"));
        assert_eq!(g.current_state_timestamp, 77);
        let m = &g.members[0];
        assert_eq!(m.member_id, "m-1");
        assert_eq!(m.group_instance_id.as_deref(), Some("i1"));
        assert_eq!((m.client_id.as_str(), m.client_host.as_str()), ("c", "/h"));
        assert_eq!(
            (m.rebalance_timeout_ms, m.session_timeout_ms),
            (300_000, 10_000)
        );
        assert_eq!(
            (&m.subscription[..], &m.assignment[..]),
            (&[0xde, 0xad][..], &[0xbe][..])
        );
        // Our encoder writes exactly these bytes back.
        assert_eq!(g.encode().unwrap().as_ref(), &b[..]);

        // v0: no currentStateTimestamp, no instance id, no rebalance timeout; null protocol/leader.
        let mut v0: Vec<u8> = vec![0, 0, 0, 0];
        v0.extend_from_slice(&5i32.to_be_bytes());
        v0.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        v0.extend_from_slice(&1i32.to_be_bytes());
        v0.extend_from_slice(&[0, 1, b'm', 0, 1, b'c', 0, 1, b'h']);
        v0.extend_from_slice(&6000i32.to_be_bytes());
        v0.extend_from_slice(&0i32.to_be_bytes());
        v0.extend_from_slice(&(-1i32).to_be_bytes());
        let g = GroupMetadataValue::decode(&v0).unwrap();
        assert_eq!(
            (
                g.generation,
                g.protocol.clone(),
                g.leader.clone(),
                g.current_state_timestamp
            ),
            (5, None, None, -1)
        );
        assert_eq!(
            (
                g.members[0].rebalance_timeout_ms,
                g.members[0].session_timeout_ms
            ),
            (6000, 6000)
        );
        assert!(g.members[0].assignment.is_empty());

        // v4 (flexible): compact strings/bytes/array and tagged fields.
        let mut v4: Vec<u8> = vec![0, 4, 9];
        v4.extend_from_slice(b"consumer");
        v4.extend_from_slice(&3i32.to_be_bytes());
        v4.extend_from_slice(&[4, b'r', b'n', b'g']); // protocol "rng"
        v4.push(0); // leader null
        v4.extend_from_slice(&(-1i64).to_be_bytes());
        v4.push(2); // one member
        v4.extend_from_slice(&[2, b'm', 0, 2, b'c', 2, b'h']);
        v4.extend_from_slice(&1000i32.to_be_bytes());
        v4.extend_from_slice(&2000i32.to_be_bytes());
        v4.extend_from_slice(&[2, 0x01, 1, 0]); // subscription [1], assignment [], member tags
        v4.push(0); // group tags
        let g = GroupMetadataValue::decode(&v4).unwrap();
        assert_eq!(
            (g.generation, g.protocol.as_deref(), g.leader.clone()),
            (3, Some("rng"), None)
        );
        assert_eq!(g.members[0].member_id, "m");
        assert_eq!(g.members[0].group_instance_id, None);
        assert_eq!(
            (
                g.members[0].rebalance_timeout_ms,
                g.members[0].session_timeout_ms
            ),
            (1000, 2000)
        );
        assert_eq!(&g.members[0].subscription[..], &[1]);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert!(decode_key(&[]).is_err());
        assert!(decode_key(&[0, 1, 0, 9, b'a']).is_err());
        assert!(decode_key(&[0xff, 0xff]).is_err());
        assert!(OffsetCommitValue::decode(&[0, 3, 1]).is_err());
        assert!(OffsetCommitValue::decode(&[0, 9]).is_err());
        assert!(GroupMetadataValue::decode(&[0, 3, 0, 1, b'c']).is_err());
        let mut huge = vec![0, 3, 0, 0];
        huge.extend_from_slice(&1i32.to_be_bytes());
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        huge.extend_from_slice(&0i64.to_be_bytes());
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(GroupMetadataValue::decode(&huge).is_err());
        let bad_utf8: &[u8] = &[0, 2, 0, 1, 0xff];
        assert_eq!(decode_key(bad_utf8), Err(FormatError::NotUtf8("group id")));
    }

    #[test]
    fn batches_decode_with_keys_and_tombstones() {
        let records = vec![
            CoordinatorRecord::offset_commit(
                "g",
                "t",
                0,
                &OffsetCommitValue {
                    offset: 5,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp: 10,
                    expire_timestamp: None,
                },
            )
            .unwrap(),
            CoordinatorRecord::group_tombstone("g").unwrap(),
        ];
        let batch = build_batch(&records, 10).unwrap();
        let mut buf = batch.clone();
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.records[0].key.as_ref(), Some(&records[0].key));
        assert_eq!(set.records[1].value, None);
        assert_eq!((set.records[0].offset, set.records[1].offset), (0, 1));
        assert!(!buf.has_remaining(), "one batch");
        let header = storage::BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.records_count, 2);
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.base_sequence, -1);
    }
}

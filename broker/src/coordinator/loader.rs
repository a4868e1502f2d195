//! Replaying a `__consumer_offsets` partition into group metadata and committed offsets, as a
//! new coordinator does when it takes over the partition: every record from the log start to
//! the log end, later records overriding earlier ones, tombstones deleting.
//!
//! The whole log is read (not only up to the high watermark): a new leader keeps its entire log,
//! so records it holds beyond the high watermark it inherited become committed under it, and
//! skipping them would lose commits the previous coordinator acknowledged.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use storage::{BatchHeader, Log, StorageError, TopicPartition};
use tracing::{debug, warn};

use super::offsets::{CommittedOffset, GroupOffsets};
use super::offsets_topic::{decode_key, GroupMetadataValue, OffsetCommitValue, RecordKey};

/// Bytes read from the log per step (Kafka's offsets.load.buffer.size default).
const LOAD_BUFFER_BYTES: u32 = 5 * 1024 * 1024;

/// A group as read back from the log.
#[derive(Debug, Default)]
pub struct LoadedGroup {
    /// None when the group only has offsets (standalone consumers) or its metadata was deleted.
    pub metadata: Option<GroupMetadataValue>,
    pub offsets: GroupOffsets,
}

/// Everything a partition holds.
#[derive(Debug, Default)]
pub struct LoadedPartition {
    pub groups: BTreeMap<String, LoadedGroup>,
    pub records: u64,
    pub skipped: u64,
    pub end_offset: i64,
}

#[derive(Debug, Default)]
struct Replay {
    metadata: BTreeMap<String, GroupMetadataValue>,
    offsets: BTreeMap<String, BTreeMap<TopicPartition, CommittedOffset>>,
    records: u64,
    skipped: u64,
}

impl Replay {
    fn apply(&mut self, record_offset: i64, key: &[u8], value: Option<&Bytes>) {
        self.records += 1;
        let key = match decode_key(key) {
            Ok(key) => key,
            Err(e) => {
                self.skipped += 1;
                warn!(offset = record_offset, error = %e, "skipping unreadable __consumer_offsets key");
                return;
            }
        };
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                let tp = TopicPartition { topic, partition };
                match value {
                    None => {
                        if let Some(offsets) = self.offsets.get_mut(&group) {
                            offsets.remove(&tp);
                        }
                    }
                    Some(bytes) => match OffsetCommitValue::decode(bytes) {
                        Ok(v) => {
                            self.offsets.entry(group).or_default().insert(
                                tp,
                                CommittedOffset {
                                    offset: v.offset,
                                    leader_epoch: v.leader_epoch,
                                    metadata: v.metadata,
                                    commit_timestamp_ms: v.commit_timestamp,
                                    expire_timestamp_ms: v.expire_timestamp,
                                    record_offset,
                                },
                            );
                        }
                        Err(e) => {
                            self.skipped += 1;
                            warn!(offset = record_offset, group = %group, partition = %tp, error = %e, "skipping unreadable offset commit");
                        }
                    },
                }
            }
            RecordKey::GroupMetadata { group } => match value {
                None => {
                    self.metadata.remove(&group);
                }
                Some(bytes) => match GroupMetadataValue::decode(bytes) {
                    Ok(v) => {
                        self.metadata.insert(group, v);
                    }
                    Err(e) => {
                        self.skipped += 1;
                        warn!(offset = record_offset, group = %group, error = %e, "skipping unreadable group metadata");
                    }
                },
            },
            RecordKey::Other { version } => {
                self.skipped += 1;
                debug!(
                    offset = record_offset,
                    version, "skipping a record type this coordinator does not use"
                );
            }
        }
    }

    /// Applies every record of the batches in `bytes`; returns the offset after the last batch.
    fn apply_batches(&mut self, bytes: &Bytes, mut next: i64) -> i64 {
        let mut pos = 0usize;
        while pos < bytes.len() {
            let header = match BatchHeader::parse(&bytes[pos..]) {
                Ok(h) => h,
                Err(e) => {
                    warn!(offset = next, error = %e, "unreadable batch header in __consumer_offsets; stopping this read");
                    break;
                }
            };
            let size = header.size();
            if size == 0 || pos + size > bytes.len() {
                break;
            }
            if !header.is_control() {
                let mut batch = bytes.slice(pos..pos + size);
                match RecordBatchDecoder::decode(&mut batch) {
                    Ok(set) => {
                        for r in set.records {
                            if r.control {
                                continue;
                            }
                            match &r.key {
                                Some(key) => self.apply(r.offset, key, r.value.as_ref()),
                                None => self.skipped += 1,
                            }
                        }
                    }
                    Err(e) => {
                        self.skipped += u64::try_from(header.records_count).unwrap_or(0);
                        warn!(offset = header.base_offset, error = %e, "skipping undecodable batch in __consumer_offsets");
                    }
                }
            }
            next = next.max(header.last_offset().saturating_add(1));
            pos += size;
        }
        next
    }

    fn finish(self, end_offset: i64) -> LoadedPartition {
        let mut groups: BTreeMap<String, LoadedGroup> = BTreeMap::new();
        for (group, value) in self.metadata {
            groups.entry(group).or_default().metadata = Some(value);
        }
        for (group, offsets) in self.offsets {
            if offsets.is_empty() {
                continue;
            }
            let loaded = groups.entry(group).or_default();
            for (tp, committed) in offsets {
                loaded.offsets.put_if_newer(tp, committed);
            }
        }
        LoadedPartition {
            groups,
            records: self.records,
            skipped: self.skipped,
            end_offset,
        }
    }
}

/// Reads the partition's log from its start to its end. Blocking (file reads).
pub fn load(log: &Log) -> Result<LoadedPartition, StorageError> {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut replay = Replay::default();
    while offset < end {
        let bytes = log.read_bytes(offset, LOAD_BUFFER_BYTES, i64::MAX)?;
        if bytes.is_empty() {
            break;
        }
        let next = replay.apply_batches(&bytes, offset);
        if next <= offset {
            warn!(partition = %log.topic_partition(), offset, "no progress reading __consumer_offsets; stopping the load here");
            break;
        }
        offset = next;
    }
    Ok(replay.finish(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::offsets_topic::{build_batch, CoordinatorRecord, MemberMetadataValue};

    fn commit(offset: i64) -> OffsetCommitValue {
        OffsetCommitValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 1,
            expire_timestamp: None,
        }
    }

    fn group_value(generation: i32) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation,
            protocol: Some("range".into()),
            leader: Some("m".into()),
            current_state_timestamp: 5,
            members: vec![MemberMetadataValue {
                member_id: "m".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/h".into(),
                rebalance_timeout_ms: 1000,
                session_timeout_ms: 1000,
                subscription: Bytes::new(),
                assignment: Bytes::new(),
            }],
        }
    }

    /// Concatenated batches with real offsets, as a log read returns them.
    fn log_bytes(batches: &[Vec<CoordinatorRecord>]) -> Bytes {
        let mut out = Vec::new();
        let mut base: i64 = 0;
        for records in batches {
            let mut batch = build_batch(records, 1).unwrap().to_vec();
            batch[..8].copy_from_slice(&base.to_be_bytes());
            base += records.len() as i64;
            out.extend_from_slice(&batch);
        }
        Bytes::from(out)
    }

    #[test]
    fn replays_commits_groups_and_tombstones() {
        let bytes = log_bytes(&[
            vec![
                CoordinatorRecord::offset_commit("g1", "t", 0, &commit(5)).unwrap(),
                CoordinatorRecord::offset_commit("g1", "t", 1, &commit(7)).unwrap(),
                CoordinatorRecord::group_metadata("g1", &group_value(1)).unwrap(),
            ],
            vec![
                CoordinatorRecord::offset_commit("g1", "t", 0, &commit(6)).unwrap(),
                CoordinatorRecord::offset_tombstone("g1", "t", 1).unwrap(),
                CoordinatorRecord::group_metadata("g1", &group_value(2)).unwrap(),
                CoordinatorRecord::offset_commit("simple", "u", 3, &commit(9)).unwrap(),
                CoordinatorRecord::group_metadata("gone", &group_value(1)).unwrap(),
                CoordinatorRecord::offset_commit("gone", "t", 0, &commit(1)).unwrap(),
            ],
            vec![
                CoordinatorRecord::group_tombstone("gone").unwrap(),
                CoordinatorRecord::offset_tombstone("gone", "t", 0).unwrap(),
            ],
        ]);
        let mut replay = Replay::default();
        let next = replay.apply_batches(&bytes, 0);
        assert_eq!(next, 11);
        let loaded = replay.finish(next);
        assert_eq!(loaded.records, 11);
        assert_eq!(loaded.skipped, 0);
        assert_eq!(
            loaded.groups.keys().collect::<Vec<_>>(),
            vec!["g1", "simple"]
        );
        let g1 = &loaded.groups["g1"];
        assert_eq!(g1.metadata.as_ref().map(|m| m.generation), Some(2));
        let t0 = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        assert_eq!(
            g1.offsets.get(&t0).map(|c| (c.offset, c.record_offset)),
            Some((6, 3))
        );
        assert_eq!(g1.offsets.committed_count(), 1);
        let simple = &loaded.groups["simple"];
        assert!(simple.metadata.is_none());
        assert_eq!(simple.offsets.committed_count(), 1);
    }

    #[test]
    fn bad_records_are_skipped() {
        let bytes = log_bytes(&[vec![
            CoordinatorRecord {
                key: Bytes::from_static(&[0, 1, 0]),
                value: None,
            },
            CoordinatorRecord {
                key: crate::coordinator::offsets_topic::encode_offset_key("g", "t", 0).unwrap(),
                value: Some(Bytes::from_static(&[0, 3, 0])),
            },
            CoordinatorRecord::offset_commit("g", "t", 1, &commit(3)).unwrap(),
        ]]);
        let mut replay = Replay::default();
        assert_eq!(replay.apply_batches(&bytes, 0), 3);
        let loaded = replay.finish(3);
        assert_eq!(loaded.skipped, 2);
        assert_eq!(loaded.groups["g"].offsets.committed_count(), 1);
        // A truncated tail stops the read without panicking.
        let mut replay = Replay::default();
        assert_eq!(replay.apply_batches(&bytes.slice(..bytes.len() - 3), 0), 0);
    }
}

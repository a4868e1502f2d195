//! The committed offsets of one group as the coordinator caches them: the newest committed
//! value per partition (newest by its position in `__consumer_offsets`), the commits still
//! waiting for replication, and Kafka's offset retention rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use storage::TopicPartition;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 when the client did not send one.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Set only by offset commits v2-v4 that carried a retention time.
    pub expire_timestamp_ms: Option<i64>,
    /// The offset of the commit record in `__consumer_offsets`; a newer record wins.
    pub record_offset: i64,
}

#[derive(Debug, Default)]
pub struct GroupOffsets {
    committed: BTreeMap<TopicPartition, CommittedOffset>,
    /// Commits appended but not yet replicated, per partition.
    pending: HashMap<TopicPartition, usize>,
}

impl GroupOffsets {
    pub fn get(&self, tp: &TopicPartition) -> Option<&CommittedOffset> {
        self.committed.get(tp)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TopicPartition, &CommittedOffset)> {
        self.committed.iter()
    }

    /// How many partitions have a committed offset.
    pub fn committed_count(&self) -> usize {
        self.committed.len()
    }

    /// Kafka's `hasOffsets`: anything committed or being committed.
    pub fn has_offsets(&self) -> bool {
        !self.committed.is_empty() || !self.pending.is_empty()
    }

    /// A commit of these partitions has been appended and awaits replication.
    pub fn begin_commit<'a>(&mut self, partitions: impl IntoIterator<Item = &'a TopicPartition>) {
        for tp in partitions {
            *self.pending.entry(tp.clone()).or_insert(0) += 1;
        }
    }

    /// A pending commit finished: `Some` when it was replicated (it becomes the committed value
    /// unless a newer record already did), `None` when it failed.
    pub fn finish_commit(&mut self, tp: &TopicPartition, committed: Option<CommittedOffset>) {
        if let Some(count) = self.pending.get_mut(tp) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.pending.remove(tp);
            }
        }
        if let Some(value) = committed {
            self.put_if_newer(tp.clone(), value);
        }
    }

    /// Installs a value read back from the log (newer records win).
    pub fn put_if_newer(&mut self, tp: TopicPartition, value: CommittedOffset) {
        match self.committed.get(&tp) {
            Some(existing) if existing.record_offset > value.record_offset => {}
            _ => {
                self.committed.insert(tp, value);
            }
        }
    }

    /// Drops these partitions' offsets; returns those that had one.
    pub fn remove(&mut self, partitions: &[TopicPartition]) -> Vec<TopicPartition> {
        partitions
            .iter()
            .filter_map(|tp| {
                self.pending.remove(tp);
                self.committed.remove(tp).map(|_| tp.clone())
            })
            .collect()
    }

    pub fn remove_all(&mut self) -> Vec<TopicPartition> {
        self.pending.clear();
        std::mem::take(&mut self.committed).into_keys().collect()
    }

    /// Removes offsets past retention: those with an explicit expire timestamp when it has
    /// passed, the others when `retention_ms` has passed since `base(offset)`. Offsets of
    /// topics in `keep` and offsets with a commit in flight stay.
    pub fn expire(
        &mut self,
        now_ms: i64,
        retention_ms: i64,
        base: impl Fn(&CommittedOffset) -> i64,
        keep: &BTreeSet<String>,
    ) -> Vec<TopicPartition> {
        let expired: Vec<TopicPartition> = self
            .committed
            .iter()
            .filter(|(tp, _)| !keep.contains(&tp.topic) && !self.pending.contains_key(*tp))
            .filter(|(_, o)| match o.expire_timestamp_ms {
                Some(expire) => now_ms >= expire,
                None => now_ms.saturating_sub(base(o)) >= retention_ms,
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in &expired {
            self.committed.remove(tp);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    fn committed(offset: i64, ts: i64, record_offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: ts,
            expire_timestamp_ms: None,
            record_offset,
        }
    }

    #[test]
    fn newer_records_win_regardless_of_completion_order() {
        let mut o = GroupOffsets::default();
        let a = tp("t", 0);
        o.begin_commit([&a, &a]);
        o.finish_commit(&a, Some(committed(20, 0, 11)));
        o.finish_commit(&a, Some(committed(10, 0, 10)));
        assert_eq!(o.get(&a).map(|c| c.offset), Some(20));
        assert!(o.has_offsets());
        assert_eq!(o.remove(std::slice::from_ref(&a)), vec![a.clone()]);
        assert!(!o.has_offsets());
    }

    #[test]
    fn failed_commits_leave_the_old_value() {
        let mut o = GroupOffsets::default();
        let a = tp("t", 0);
        o.put_if_newer(a.clone(), committed(5, 0, 1));
        o.begin_commit([&a]);
        o.finish_commit(&a, None);
        assert_eq!(o.get(&a).map(|c| c.offset), Some(5));
    }

    #[test]
    fn expiry_honours_retention_pending_commits_and_kept_topics() {
        let mut o = GroupOffsets::default();
        o.put_if_newer(tp("old", 0), committed(1, 100, 1));
        o.put_if_newer(tp("new", 0), committed(1, 900, 2));
        o.put_if_newer(tp("kept", 0), committed(1, 100, 3));
        o.put_if_newer(tp("busy", 0), committed(1, 100, 4));
        o.put_if_newer(
            tp("explicit", 0),
            CommittedOffset {
                expire_timestamp_ms: Some(2000),
                ..committed(1, 100, 5)
            },
        );
        o.begin_commit([&tp("busy", 0)]);
        let keep: BTreeSet<String> = ["kept".to_string()].into();
        let expired = o.expire(1000, 500, |c| c.commit_timestamp_ms, &keep);
        assert_eq!(expired, vec![tp("old", 0)]);
        let expired = o.expire(2000, 500, |c| c.commit_timestamp_ms, &keep);
        assert_eq!(expired, vec![tp("explicit", 0), tp("new", 0)]);
        assert_eq!(o.committed_count(), 2);
        assert_eq!(o.remove_all().len(), 2);
    }
}

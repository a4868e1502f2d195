//! Leader epoch cache of one partition (Kafka's LeaderEpochFileCache): the offset at which
//! each leader epoch started, persisted atomically in `leader-epoch-checkpoint`.

use std::path::{Path, PathBuf};

use tracing::warn;

use crate::checkpoint::{read_epochs, write_epochs};
use crate::error::Result;

pub(crate) const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// (epoch, start offset) entries, ascending in both.
#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint in `dir`. An unreadable file is logged and treated as empty, which
    /// makes the partition fall back to truncating to its high watermark, as Kafka does for
    /// replicas without epoch information.
    pub(crate) fn load(dir: &Path) -> LeaderEpochCache {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let mut entries = read_epochs(&path).unwrap_or_else(|err| {
            warn!(path = %path.display(), error = %err, "ignoring unreadable leader epoch checkpoint");
            Vec::new()
        });
        entries.retain(|(e, o)| *e >= 0 && *o >= 0);
        let ordered = entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        if !ordered {
            warn!(path = %path.display(), "ignoring out-of-order leader epoch checkpoint");
            entries.clear();
        }
        LeaderEpochCache { path, entries }
    }

    fn persist(&self) -> Result<()> {
        write_epochs(&self.path, &self.entries)
    }

    pub(crate) fn entries(&self) -> Vec<(i32, i64)> {
        self.entries.clone()
    }

    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Kafka's `assign`: records that `epoch` starts at `start_offset`, dropping entries it
    /// supersedes (epoch or start offset not below the new one). Persists when it changes.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch < 0 || start_offset < 0 {
            return Ok(());
        }
        if let Some(&(latest_epoch, latest_start)) = self.entries.last() {
            if epoch == latest_epoch && start_offset >= latest_start {
                return Ok(());
            }
        }
        while let Some(&(e, o)) = self.entries.last() {
            if e >= epoch || o >= start_offset {
                self.entries.pop();
            } else {
                break;
            }
        }
        self.entries.push((epoch, start_offset));
        self.persist()
    }

    /// Records the epoch of an appended batch if it is newer than the latest one.
    pub(crate) fn maybe_assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch >= 0 && self.latest_epoch().is_none_or(|latest| epoch > latest) {
            self.assign(epoch, start_offset)?;
        }
        Ok(())
    }

    /// Kafka's `endOffsetFor`: (largest epoch <= requested, end offset of that epoch), where the
    /// latest epoch ends at `log_end_offset`. None when undefined.
    pub(crate) fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        if self.latest_epoch() == Some(requested) {
            return Some((requested, log_end_offset));
        }
        let higher = self.entries.iter().find(|(e, _)| *e > requested)?;
        match self.entries.iter().rev().find(|(e, _)| *e <= requested) {
            Some(&(floor_epoch, _)) => Some((floor_epoch, higher.1)),
            None => Some((requested, higher.1)),
        }
    }

    /// Removes entries starting at or after `end_offset` (log truncated there).
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        if end_offset < 0 || self.entries.last().is_none_or(|e| e.1 < end_offset) {
            return Ok(());
        }
        self.entries.retain(|e| e.1 < end_offset);
        self.persist()
    }

    /// Drops entries wholly before `start_offset` (log start advanced); the epoch in force at
    /// `start_offset` is kept, moved to start there.
    pub(crate) fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        if start_offset < 0 {
            return Ok(());
        }
        let removed = self
            .entries
            .iter()
            .take_while(|e| e.1 <= start_offset)
            .count();
        if removed == 0 {
            return Ok(());
        }
        let kept_epoch = self.entries[removed - 1].0;
        if removed == 1 && self.entries[0].1 == start_offset {
            return Ok(());
        }
        self.entries.drain(..removed);
        self.entries.insert(0, (kept_epoch, start_offset));
        self.persist()
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.persist()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn cache() -> (tempfile::TempDir, LeaderEpochCache) {
        let dir = tempfile::tempdir().unwrap();
        let c = LeaderEpochCache::load(dir.path());
        (dir, c)
    }

    #[test]
    fn assign_persists_in_kafka_format_and_reloads() {
        let (dir, mut c) = cache();
        c.assign(0, 0).unwrap();
        c.assign(0, 5).unwrap();
        c.maybe_assign(2, 10).unwrap();
        c.maybe_assign(1, 12).unwrap();
        c.maybe_assign(-1, 12).unwrap();
        assert_eq!(c.entries(), vec![(0, 0), (2, 10)]);
        let text = fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n2 10\n");
        assert_eq!(LeaderEpochCache::load(dir.path()).entries(), c.entries());
    }

    #[test]
    fn assign_of_older_epoch_truncates_like_kafka() {
        let (_d, mut c) = cache();
        c.assign(1, 0).unwrap();
        c.assign(3, 10).unwrap();
        c.assign(5, 20).unwrap();
        c.assign(4, 15).unwrap();
        assert_eq!(c.entries(), vec![(1, 0), (3, 10), (4, 15)]);
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let (_d, mut c) = cache();
        assert_eq!(c.end_offset_for(0, 50), None);
        c.assign(1, 0).unwrap();
        c.assign(3, 10).unwrap();
        c.assign(5, 20).unwrap();
        assert_eq!(c.end_offset_for(5, 42), Some((5, 42)));
        assert_eq!(c.end_offset_for(3, 42), Some((3, 20)));
        assert_eq!(c.end_offset_for(4, 42), Some((3, 20)));
        assert_eq!(c.end_offset_for(0, 42), Some((0, 0)));
        assert_eq!(c.end_offset_for(6, 42), None);
        assert_eq!(c.end_offset_for(-1, 42), None);
    }

    #[test]
    fn truncation_from_both_ends() {
        let (_d, mut c) = cache();
        c.assign(1, 0).unwrap();
        c.assign(3, 10).unwrap();
        c.assign(5, 20).unwrap();
        c.truncate_from_end(20).unwrap();
        assert_eq!(c.entries(), vec![(1, 0), (3, 10)]);
        c.truncate_from_start(12).unwrap();
        assert_eq!(c.entries(), vec![(3, 12)]);
        c.truncate_from_start(5).unwrap();
        assert_eq!(c.entries(), vec![(3, 12)]);
        c.clear().unwrap();
        assert_eq!(c.latest_epoch(), None);
    }

    #[test]
    fn garbage_checkpoint_loads_empty() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(LEADER_EPOCH_CHECKPOINT),
            "0\n2\n5 10\n3 20\n",
        )
        .unwrap();
        assert!(LeaderEpochCache::load(dir.path()).entries().is_empty());
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), "zzz").unwrap();
        assert!(LeaderEpochCache::load(dir.path()).entries().is_empty());
    }
}

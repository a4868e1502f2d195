//! The Raft log, vote, committed index and last purged log id, kept in sled. Entries are keyed
//! by big-endian index (so sled's order is log order) and stored as JSON.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, Vote};

use super::{read_json, storage_error, write_json};
use crate::types::{LogEntry, LogId, NodeId, StorageError, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// sled-backed log storage. Clones share the same trees (and serve as log readers).
#[derive(Clone, Debug)]
pub(crate) struct LogStore {
    logs: sled::Tree,
    meta: sled::Tree,
    committed_index: Arc<AtomicU64>,
}

impl LogStore {
    /// Opens the log trees of `db`. `committed_index` is kept up to date with the committed
    /// log index for status reporting.
    pub(crate) fn open(
        db: &sled::Db,
        committed_index: Arc<AtomicU64>,
    ) -> Result<Self, sled::Error> {
        Ok(LogStore {
            logs: db.open_tree("raft_log")?,
            meta: db.open_tree("raft_meta")?,
            committed_index,
        })
    }

    fn key(index: u64) -> [u8; 8] {
        index.to_be_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<LogEntry, StorageError> {
        serde_json::from_slice(bytes)
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }

    async fn flush(&self, subject: ErrorSubject<NodeId>) -> Result<(), StorageError> {
        self.logs
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| storage_error(subject, ErrorVerb::Write, &e))
    }

    fn remove_range(&self, range: impl RangeBounds<[u8; 8]>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.logs.range(range) {
            let (key, _) =
                item.map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
            batch.remove(key);
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(Self::key(*i)),
            Bound::Excluded(i) => Bound::Excluded(Self::key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(Self::key(*i)),
            Bound::Excluded(i) => Bound::Excluded(Self::key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.logs
            .range((start, end))
            .map(|item| {
                let (_, bytes) =
                    item.map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
                Self::decode(&bytes)
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> =
            read_json(&self.meta, LAST_PURGED, ErrorSubject::Store)?;
        let last = self
            .logs
            .last()
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))?
            .map(|(_, bytes)| Self::decode(&bytes))
            .transpose()?
            .map(|entry| entry.log_id);
        Ok(LogState {
            last_log_id: last.or(last_purged_log_id),
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        write_json(&self.meta, VOTE, vote, ErrorSubject::Vote)?;
        self.flush(ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        read_json(&self.meta, VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        write_json(&self.meta, COMMITTED, &committed, ErrorSubject::Store)?;
        if let Some(log_id) = committed {
            self.committed_index.store(log_id.index, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> =
            read_json(&self.meta, COMMITTED, ErrorSubject::Store)?;
        let committed = committed.flatten();
        if let Some(log_id) = committed {
            self.committed_index.store(log_id.index, Ordering::Relaxed);
        }
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| {
                storage_error(ErrorSubject::Log(entry.log_id), ErrorVerb::Write, &e)
            })?;
            batch.insert(&Self::key(entry.log_id.index), bytes);
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Write, &e))?;
        let flushed = self
            .logs
            .flush_async()
            .await
            .map(|_| ())
            .map_err(std::io::Error::other);
        callback.log_io_completed(flushed);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(from = log_id.index, "truncating raft log");
        self.remove_range(Self::key(log_id.index)..)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(upto = log_id.index, "purging raft log");
        write_json(&self.meta, LAST_PURGED, &log_id, ErrorSubject::Store)?;
        self.remove_range(..=Self::key(log_id.index))
    }
}

//! The Raft state machine: applies committed commands to the metadata image and publishes each
//! new image to subscribers. Its durable form is the snapshot (image + last applied log id +
//! membership) kept in sled; on restart it starts from that snapshot and openraft re-applies the
//! committed entries after it.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, Snapshot,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info};

use super::{read_json, storage_error};
use crate::commands::{Applied, CommandResponse, COMMAND_VERSION};
use crate::image::MetadataImage;
use crate::types::{LogEntry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

const SNAPSHOT_META: &[u8] = b"meta";
const SNAPSHOT_DATA: &[u8] = b"data";

/// The persisted current snapshot; writes are serialized and never go backwards.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotStore {
    tree: sled::Tree,
    lock: Arc<parking_lot::Mutex<()>>,
}

/// A stored snapshot: metadata plus the serialized image.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredSnapshotMeta {
    meta: SnapshotMeta,
}

impl SnapshotStore {
    pub(crate) fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(SnapshotStore {
            tree: db.open_tree("snapshot")?,
            lock: Arc::new(parking_lot::Mutex::new(())),
        })
    }

    fn load(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let _guard = self.lock.lock();
        let Some(stored) = read_json::<StoredSnapshotMeta>(
            &self.tree,
            SNAPSHOT_META,
            ErrorSubject::Snapshot(None),
        )?
        else {
            return Ok(None);
        };
        let data = self
            .tree
            .get(SNAPSHOT_DATA)
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, &e))?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        Ok(Some((stored.meta, data)))
    }

    /// Persists (durably) a snapshot unless a newer one is already stored.
    async fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let subject = || ErrorSubject::Snapshot(Some(meta.signature()));
        {
            let _guard = self.lock.lock();
            let current: Option<StoredSnapshotMeta> =
                read_json(&self.tree, SNAPSHOT_META, subject())?;
            if current.is_some_and(|c| c.meta.last_log_id > meta.last_log_id) {
                debug!(snapshot = %meta, "a newer snapshot is already stored");
                return Ok(());
            }
            let mut batch = sled::Batch::default();
            let stored = serde_json::to_vec(&StoredSnapshotMeta { meta: meta.clone() })
                .map_err(|e| storage_error(subject(), ErrorVerb::Write, &e))?;
            batch.insert(SNAPSHOT_META, stored);
            batch.insert(SNAPSHOT_DATA, data);
            self.tree
                .apply_batch(batch)
                .map_err(|e| storage_error(subject(), ErrorVerb::Write, &e))?;
        }
        self.tree
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| storage_error(subject(), ErrorVerb::Write, &e))
    }
}

/// The state machine: the live image and what it reflects.
#[derive(Debug)]
pub(crate) struct StateMachineStore {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshots: SnapshotStore,
    image_tx: watch::Sender<Arc<MetadataImage>>,
}

impl StateMachineStore {
    /// Opens the state machine from the stored snapshot (or empty) and publishes its image.
    pub(crate) fn open(
        db: &sled::Db,
        image_tx: watch::Sender<Arc<MetadataImage>>,
    ) -> Result<Self, StorageError> {
        let snapshots = SnapshotStore::open(db)
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, &e))?;
        let mut sm = StateMachineStore {
            image: Arc::new(MetadataImage::default()),
            last_applied: None,
            membership: StoredMembership::default(),
            snapshots,
            image_tx,
        };
        if let Some((meta, data)) = sm.snapshots.load()? {
            let image = decode_image(&meta, &data)?;
            info!(snapshot = %meta, offset = image.offset, "state machine restored from snapshot");
            sm.image = Arc::new(image);
            sm.last_applied = meta.last_log_id;
            sm.membership = meta.last_membership;
        }
        sm.publish();
        Ok(sm)
    }

    fn publish(&self) {
        self.image_tx.send_replace(self.image.clone());
    }
}

fn decode_image(meta: &SnapshotMeta, data: &[u8]) -> Result<MetadataImage, StorageError> {
    serde_json::from_slice(data).map_err(|e| {
        storage_error(
            ErrorSubject::Snapshot(Some(meta.signature())),
            ErrorVerb::Read,
            &e,
        )
    })
}

/// Builds a snapshot from a frozen copy of the image.
#[derive(Debug)]
pub(crate) struct SnapshotBuilder {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshots: SnapshotStore,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = serde_json::to_vec(&*self.image)
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &e))?;
        let snapshot_id = match &self.last_applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id,
                id.index,
                uuid::Uuid::new_v4().simple()
            ),
            None => format!("empty-{}", uuid::Uuid::new_v4().simple()),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        self.snapshots.save(&meta, &data).await?;
        info!(snapshot = %meta, bytes = data.len(), "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let image = Arc::make_mut(&mut self.image);
        let mut responses = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            self.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => {
                    image.advance_to(index);
                    Ok(Applied::Nothing)
                }
                EntryPayload::Membership(membership) => {
                    image.advance_to(index);
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Ok(Applied::Nothing)
                }
                EntryPayload::Normal(command) => {
                    if command.v > COMMAND_VERSION {
                        debug!(
                            version = command.v,
                            index, "applying a command written by a newer version"
                        );
                    }
                    let kind = command.op.kind();
                    let response = image.apply(index, &command.op);
                    if let Err(error) = &response {
                        debug!(index, command = kind, %error, "command rejected at apply");
                    }
                    response
                }
            };
            responses.push(response);
        }
        self.publish();
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            image: self.image.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let image = decode_image(meta, &data)?;
        self.snapshots.save(meta, &data).await?;
        info!(snapshot = %meta, offset = image.offset, "snapshot installed");
        self.image = Arc::new(image);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.snapshots.load()?.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

//! Persistent Raft storage in sled: the log and vote (`log`), and the state machine with its
//! snapshots (`state_machine`).

// openraft's storage traits dictate `StorageError` (large) as the error type of this layer.
#![allow(clippy::result_large_err)]

pub(crate) mod log;
pub(crate) mod state_machine;

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::StorageError;

/// Builds a storage error about `subject`.
pub(crate) fn storage_error(
    subject: ErrorSubject<crate::types::NodeId>,
    verb: ErrorVerb,
    e: &(impl std::error::Error + 'static),
) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

/// Reads a JSON value stored under `key`.
pub(crate) fn read_json<T: DeserializeOwned>(
    tree: &sled::Tree,
    key: &[u8],
    subject: ErrorSubject<crate::types::NodeId>,
) -> Result<Option<T>, StorageError> {
    let Some(bytes) = tree
        .get(key)
        .map_err(|e| storage_error(subject.clone(), ErrorVerb::Read, &e))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| storage_error(subject, ErrorVerb::Read, &e))
}

/// Stores `value` as JSON under `key`.
pub(crate) fn write_json<T: Serialize>(
    tree: &sled::Tree,
    key: &[u8],
    value: &T,
    subject: ErrorSubject<crate::types::NodeId>,
) -> Result<(), StorageError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, &e))?;
    tree.insert(key, bytes)
        .map_err(|e| storage_error(subject, ErrorVerb::Write, &e))?;
    Ok(())
}

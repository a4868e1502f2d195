//! Health of one log directory, Kafka's way: an I/O error while writing to a log (append,
//! fsync, roll, index write, checkpoint, create or delete) takes the whole directory offline.
//! From then on no write is attempted there; every log in it refuses appends with
//! [`StorageError::LogDirOffline`] (`KAFKA_STORAGE_ERROR`, 56) and the manager's listener is told,
//! so the broker can step back from the partitions it hosts there.
//!
//! [`is_log_dir_failure`] is the rule for which errors count.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tracing::error;

use crate::error::StorageError;

/// What the manager's listener hears when a directory goes offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDirFailure {
    pub path: PathBuf,
    pub reason: String,
    /// Every configured log directory has now failed (Kafka then shuts the broker down).
    pub all_failed: bool,
}

/// Called once per failed directory, from whichever thread saw the error.
pub type FailureListener = Arc<dyn Fn(&LogDirFailure) + Send + Sync>;

/// Whether `err` from a write to a log means its directory can no longer be trusted. Any
/// file-system error does (ENOSPC, EIO, EROFS, a failed fsync: the page cache may have dropped
/// the data), except an interrupted or would-block call, which says nothing about the disk.
/// Rejected input and logs that are already closed or offline do not.
pub fn is_log_dir_failure(err: &StorageError) -> bool {
    match err {
        StorageError::Io { source, .. } => !matches!(
            source.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
        ),
        _ => false,
    }
}

/// The directories of a manager and who to tell when one fails.
pub(crate) struct LogDirs {
    dirs: Vec<Arc<LogDir>>,
    listener: OnceLock<FailureListener>,
}

impl fmt::Debug for LogDirs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogDirs").field("dirs", &self.dirs).finish()
    }
}

/// One log directory: its path and, once it failed, why.
#[derive(Debug)]
pub(crate) struct LogDir {
    path: PathBuf,
    failure: OnceLock<String>,
    /// The set this directory belongs to, to count failures and reach the listener; empty for
    /// a log opened on its own.
    owner: OnceLock<std::sync::Weak<LogDirs>>,
}

impl LogDirs {
    pub(crate) fn new(paths: &[PathBuf]) -> Arc<LogDirs> {
        let dirs = Arc::new(LogDirs {
            dirs: paths.iter().map(|p| LogDir::standalone(p)).collect(),
            listener: OnceLock::new(),
        });
        for dir in &dirs.dirs {
            let _ = dir.owner.set(Arc::downgrade(&dirs));
        }
        dirs
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Arc<LogDir>> {
        self.dirs.get(index)
    }

    pub(crate) fn set_listener(&self, listener: FailureListener) -> bool {
        self.listener.set(listener).is_ok()
    }

    /// (path, reason) of each offline directory.
    pub(crate) fn offline(&self) -> Vec<(PathBuf, String)> {
        self.dirs
            .iter()
            .filter_map(|d| d.failure().map(|r| (d.path.clone(), r.to_string())))
            .collect()
    }

    fn all_failed(&self) -> bool {
        self.dirs.iter().all(|d| d.failure().is_some())
    }
}

impl LogDir {
    /// A directory not part of a manager (a log opened directly).
    pub(crate) fn standalone(path: &Path) -> Arc<LogDir> {
        Arc::new(LogDir {
            path: path.to_path_buf(),
            failure: OnceLock::new(),
            owner: OnceLock::new(),
        })
    }

    /// Why the directory went offline, if it did.
    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Refuses work in an offline directory.
    pub(crate) fn ensure_online(&self) -> Result<(), StorageError> {
        match self.failure() {
            Some(reason) => Err(StorageError::LogDirOffline {
                dir: self.path.display().to_string(),
                reason: reason.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Passes `result` through, taking the directory offline first if it failed with a
    /// log-dir failure.
    pub(crate) fn check<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(err) = &result {
            if is_log_dir_failure(err) {
                self.fail(err);
            }
        }
        result
    }

    /// Takes the directory offline because of `err` (only the first failure is reported).
    pub(crate) fn fail(&self, err: &StorageError) {
        if self.failure.set(err.to_string()).is_err() {
            return;
        }
        let owner = self.owner.get().and_then(std::sync::Weak::upgrade);
        let failure = LogDirFailure {
            path: self.path.clone(),
            reason: err.to_string(),
            all_failed: owner.as_ref().is_none_or(|o| o.all_failed()),
        };
        error!(dir = %self.path.display(), error = %err, all_failed = failure.all_failed, "log dir failed; taking it offline");
        if let Some(listener) = owner.as_ref().and_then(|o| o.listener.get()) {
            listener(&failure);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn io(kind: io::ErrorKind) -> StorageError {
        StorageError::io("append to segment 0", io::Error::from(kind))
    }

    #[test]
    fn disk_errors_are_failures_and_bad_input_is_not() {
        assert!(is_log_dir_failure(&io(io::ErrorKind::StorageFull)));
        assert!(is_log_dir_failure(&StorageError::io(
            "fsync",
            io::Error::from_raw_os_error(libc::EIO)
        )));
        assert!(is_log_dir_failure(&io(io::ErrorKind::ReadOnlyFilesystem)));
        assert!(is_log_dir_failure(&io(io::ErrorKind::NotFound)));
        assert!(!is_log_dir_failure(&io(io::ErrorKind::Interrupted)));
        assert!(!is_log_dir_failure(&io(io::ErrorKind::WouldBlock)));
        assert!(!is_log_dir_failure(&StorageError::CorruptMessage(
            "crc".into()
        )));
        assert!(!is_log_dir_failure(&StorageError::LogClosed("t-0".into())));
        assert!(!is_log_dir_failure(&StorageError::LogDirOffline {
            dir: "/d".into(),
            reason: "r".into()
        }));
    }

    #[test]
    fn first_failure_takes_the_dir_offline_and_is_reported_once() {
        let dirs = LogDirs::new(&[PathBuf::from("/a"), PathBuf::from("/b")]);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&heard);
        assert!(dirs.set_listener(Arc::new(move |f: &LogDirFailure| {
            sink.lock().unwrap().push(f.clone())
        })));
        let a = Arc::clone(dirs.get(0).unwrap());
        let b = Arc::clone(dirs.get(1).unwrap());

        let bad_input: Result<(), _> = a.check(Err(StorageError::InvalidRecord("x".into())));
        assert!(bad_input.is_err());
        assert!(a.ensure_online().is_ok());

        let _ = a.check::<()>(Err(io(io::ErrorKind::StorageFull)));
        let _ = a.check::<()>(Err(io(io::ErrorKind::Other)));
        let offline = a.ensure_online().unwrap_err();
        assert_eq!(offline.kafka_error_code().code(), 56);
        assert_eq!(dirs.offline().len(), 1);
        assert!(b.ensure_online().is_ok());

        b.fail(&io(io::ErrorKind::Other));
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert_eq!(heard[0].path, PathBuf::from("/a"));
        assert!(!heard[0].all_failed);
        assert!(heard[0].reason.contains("append to segment 0"));
        assert!(heard[1].all_failed);
    }

    #[test]
    fn a_standalone_dir_is_all_the_dirs_there_are() {
        let dir = LogDir::standalone(Path::new("/x"));
        dir.fail(&io(io::ErrorKind::Other));
        assert!(dir.failure().is_some());
    }
}

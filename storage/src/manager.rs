//! The log manager: every partition log under one or more `log.dirs`, opened in parallel at
//! start-up, placed on the directory with the fewest partitions when created, deleted by
//! renaming to `<topic>-<partition>.<id>-delete` first. Per directory it keeps Kafka's
//! `replication-offset-checkpoint` (high watermarks) and `.kafka_cleanshutdown` marker.
//!
//! The marker is written after every log in the directory closed cleanly and removed on open.
//! Without it, the per-partition clean markers are not trusted and every log in the directory
//! is recovered from its recovery point.
//!
//! An I/O error in a directory takes it offline (see `log_dir`): no log is created, checkpointed
//! or marked clean there any more, and the failure listener hears of it.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tracing::{error, info, warn};

use crate::atomic_file::{sync_dir, write_atomically};
use crate::checkpoint::{read_offsets, write_offsets};
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::log::{now_ms, Log, CLEAN_SHUTDOWN_FILE};
use crate::log_dir::{FailureListener, LogDirs};
use crate::TopicPartition;

pub(crate) const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";
pub(crate) const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
const DELETE_DIR_SUFFIX: &str = "-delete";

/// Space and partitions of one log directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDirUsage {
    pub path: PathBuf,
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// Size in bytes of each partition log in this directory.
    pub partitions: Vec<(TopicPartition, u64)>,
}

#[derive(Debug, Clone)]
struct Entry {
    log: Arc<Log>,
    dir: usize,
}

/// Owns all partition logs under the configured log directories.
#[derive(Debug)]
pub struct LogManager {
    dirs: Vec<PathBuf>,
    defaults: LogConfig,
    logs: RwLock<BTreeMap<TopicPartition, Entry>>,
    create: Mutex<()>,
    health: Arc<LogDirs>,
}

/// A log directory found at start-up.
struct Found {
    dir: usize,
    path: PathBuf,
    tp: TopicPartition,
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:08x}", now_ms(), n)
}

fn statvfs(path: &Path) -> io::Result<(u64, u64)> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` points to writable memory
    // of the right type for the duration of the call.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    // The field widths differ between platforms (u32 on some 32-bit targets).
    #[allow(clippy::unnecessary_cast)]
    let (frsize, blocks, available) = (
        stat.f_frsize as u64,
        stat.f_blocks as u64,
        stat.f_bavail as u64,
    );
    Ok((blocks * frsize, available * frsize))
}

impl LogManager {
    /// Opens every `<topic>-<partition>` directory under `dirs` with `recovery_threads`
    /// threads, with `defaults` as their config until [`Log::update_config`] is called.
    pub fn open(
        dirs: &[PathBuf],
        defaults: LogConfig,
        recovery_threads: usize,
    ) -> Result<LogManager> {
        if dirs.is_empty() {
            return Err(StorageError::InvalidConfig {
                key: "log.dirs".to_string(),
                value: String::new(),
                reason: "at least one log directory is required".to_string(),
            });
        }
        let mut found = Vec::new();
        let mut high_watermarks = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
            let clean = dir.join(CLEAN_SHUTDOWN_MARKER).exists();
            if !clean {
                info!(dir = %dir.display(), "log directory was not shut down cleanly; recovering its logs");
            }
            let hw_path = dir.join(REPLICATION_OFFSET_CHECKPOINT);
            high_watermarks.extend(read_offsets(&hw_path).unwrap_or_else(|err| {
                warn!(path = %hw_path.display(), error = %err, "ignoring unreadable high watermark checkpoint");
                Vec::new()
            }));
            for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
                let entry = entry.ctx(|| format!("list {}", dir.display()))?;
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if name.ends_with(DELETE_DIR_SUFFIX) {
                    info!(path = %path.display(), "removing partly deleted log");
                    fs::remove_dir_all(&path).ctx(|| format!("delete {}", path.display()))?;
                    continue;
                }
                let Some(tp) = TopicPartition::from_dir_name(&name) else {
                    continue;
                };
                if !clean {
                    let marker = path.join(CLEAN_SHUTDOWN_FILE);
                    if marker.exists() {
                        fs::remove_file(&marker).ctx(|| format!("remove {}", marker.display()))?;
                    }
                }
                found.push(Found { dir: i, path, tp });
            }
        }
        let mut seen = BTreeMap::new();
        for f in &found {
            if let Some(other) = seen.insert(f.tp.clone(), f.path.clone()) {
                return Err(StorageError::io(
                    format!("partition {} is in two log directories", f.tp),
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} and {}", other.display(), f.path.display()),
                    ),
                ));
            }
        }
        let health = LogDirs::new(dirs);
        let opened = open_parallel(&found, &defaults, &health, recovery_threads.max(1))?;
        let hw: BTreeMap<TopicPartition, i64> = high_watermarks.into_iter().collect();
        let mut logs = BTreeMap::new();
        for (f, log) in found.into_iter().zip(opened) {
            if let Some(offset) = hw.get(&f.tp) {
                log.set_high_watermark(*offset);
            }
            logs.insert(
                f.tp,
                Entry {
                    log: Arc::new(log),
                    dir: f.dir,
                },
            );
        }
        for dir in dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_MARKER);
            if marker.exists() {
                fs::remove_file(&marker).ctx(|| format!("remove {}", marker.display()))?;
                sync_dir(dir)?;
            }
        }
        info!(logs = logs.len(), dirs = dirs.len(), "opened log manager");
        Ok(LogManager {
            dirs: dirs.to_vec(),
            defaults,
            logs: RwLock::new(logs),
            create: Mutex::new(()),
            health,
        })
    }

    pub fn defaults(&self) -> LogConfig {
        self.defaults.clone()
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Sets who hears of a log dir going offline (once; false if one was already set).
    pub fn set_failure_listener(&self, listener: FailureListener) -> bool {
        self.health.set_listener(listener)
    }

    /// (directory, reason) of each log directory taken offline by an I/O error.
    pub fn offline_dirs(&self) -> Vec<(PathBuf, String)> {
        self.health.offline()
    }

    fn dir_is_online(&self, index: usize) -> bool {
        self.health
            .get(index)
            .is_some_and(|d| d.failure().is_none())
    }

    /// Runs a write to directory `index`, taking it offline if it fails with an I/O error.
    fn guarded<T>(&self, index: usize, write: impl FnOnce() -> Result<T>) -> Result<T> {
        let result = write();
        match self.health.get(index) {
            Some(dir) => dir.check(result),
            None => result,
        }
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.logs.read().get(tp).map(|e| Arc::clone(&e.log))
    }

    /// The log of `tp`, created with `config` in the online directory with the fewest
    /// partitions if it does not exist yet.
    pub fn get_or_create(&self, tp: &TopicPartition, config: LogConfig) -> Result<Arc<Log>> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let _create = self.create.lock();
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let dir = {
            let logs = self.logs.read();
            let mut counts = vec![0usize; self.dirs.len()];
            for e in logs.values() {
                counts[e.dir] += 1;
            }
            (0..self.dirs.len())
                .filter(|i| self.dir_is_online(*i))
                .min_by_key(|i| counts[*i])
        };
        let Some((dir, health)) = dir.and_then(|i| self.health.get(i).map(|h| (i, h))) else {
            return Err(StorageError::LogDirOffline {
                dir: self
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                reason: format!("no online log directory to create {tp} in"),
            });
        };
        let log = Arc::new(Log::open_in(
            self.dirs[dir].join(tp.dir_name()),
            tp.clone(),
            config,
            Arc::clone(health),
        )?);
        self.logs.write().insert(
            tp.clone(),
            Entry {
                log: Arc::clone(&log),
                dir,
            },
        );
        Ok(log)
    }

    /// Deletes the log of `tp`: renamed to `<dir>.<id>-delete`, then removed.
    pub fn delete(&self, tp: &TopicPartition) -> Result<()> {
        let Some(entry) = self.logs.write().remove(tp) else {
            return Ok(());
        };
        let from = entry.log.dir().to_path_buf();
        let renamed = self.dirs[entry.dir].join(format!(
            "{}.{}{DELETE_DIR_SUFFIX}",
            tp.dir_name(),
            unique_suffix()
        ));
        if !self.dir_is_online(entry.dir) {
            // Nothing is written to a failed directory; the next start deletes what the
            // metadata no longer names.
            entry.log.close()?;
            info!(partition = %tp, "forgot log in an offline log dir");
            return Ok(());
        }
        self.guarded(entry.dir, || {
            fs::rename(&from, &renamed)
                .ctx(|| format!("rename {} for deletion", from.display()))?;
            sync_dir(&self.dirs[entry.dir])?;
            entry.log.delete_dir(&renamed)
        })?;
        info!(partition = %tp, "deleted log");
        Ok(())
    }

    /// Every log.
    pub fn logs(&self) -> Vec<Arc<Log>> {
        self.logs
            .read()
            .values()
            .map(|e| Arc::clone(&e.log))
            .collect()
    }

    /// Space and per-partition sizes of each log directory.
    pub fn dir_usage(&self) -> Vec<LogDirUsage> {
        let logs = self.logs.read();
        self.dirs
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let (total_bytes, free_bytes) = statvfs(path).unwrap_or_else(|err| {
                    warn!(dir = %path.display(), error = %err, "statvfs failed");
                    (0, 0)
                });
                let partitions = logs
                    .iter()
                    .filter(|(_, e)| e.dir == i)
                    .map(|(tp, e)| (tp.clone(), e.log.size_bytes()))
                    .collect();
                LogDirUsage {
                    path: path.clone(),
                    total_bytes,
                    free_bytes,
                    partitions,
                }
            })
            .collect()
    }

    /// Writes each directory's `replication-offset-checkpoint` (Kafka format).
    pub fn checkpoint_high_watermarks(&self) -> Result<()> {
        let logs = self.logs.read();
        for (i, dir) in self.dirs.iter().enumerate() {
            if !self.dir_is_online(i) {
                continue;
            }
            let entries: Vec<(TopicPartition, i64)> = logs
                .iter()
                .filter(|(_, e)| e.dir == i)
                .map(|(tp, e)| (tp.clone(), e.log.high_watermark()))
                .collect();
            self.guarded(i, || {
                write_offsets(&dir.join(REPLICATION_OFFSET_CHECKPOINT), &entries)
            })?;
        }
        Ok(())
    }

    /// Runs [`Log::maintain`] and [`Log::compact`] on every log; failures are logged.
    pub fn maintain_all(&self, now_ms: i64) {
        for log in self.logs() {
            if let Err(err) = log.maintain(now_ms) {
                error!(partition = %log.topic_partition(), error = %err, "log maintenance failed");
            }
            if let Err(err) = log.compact(now_ms) {
                error!(partition = %log.topic_partition(), error = %err, "log compaction failed");
            }
        }
    }

    /// Checkpoints high watermarks, closes every log and marks each directory whose logs all
    /// closed cleanly. Offline directories are left as they are (their logs are recovered on
    /// the next start). Returns the first error after trying everything.
    pub fn shutdown(&self) -> Result<()> {
        let mut first_error = self.checkpoint_high_watermarks().err();
        let mut dir_ok = vec![first_error.is_none(); self.dirs.len()];
        for (tp, entry) in self.logs.read().iter() {
            if let Err(err) = entry.log.close() {
                error!(partition = %tp, error = %err, "closing log failed");
                dir_ok[entry.dir] = false;
                first_error.get_or_insert(err);
            }
        }
        for (i, (dir, ok)) in self.dirs.iter().zip(dir_ok).enumerate() {
            if ok && self.dir_is_online(i) {
                let marker = dir.join(CLEAN_SHUTDOWN_MARKER);
                if let Err(err) = self.guarded(i, || write_atomically(&marker, b"")) {
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// Opens the logs of `found` with `threads` worker threads, in order.
fn open_parallel(
    found: &[Found],
    defaults: &LogConfig,
    health: &LogDirs,
    threads: usize,
) -> Result<Vec<Log>> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Log>>>> = found.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.min(found.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(f) = found.get(i) else { break };
                let opened = match health.get(f.dir) {
                    Some(dir) => Log::open_in(
                        f.path.clone(),
                        f.tp.clone(),
                        defaults.clone(),
                        Arc::clone(dir),
                    ),
                    None => Log::open(f.path.clone(), f.tp.clone(), defaults.clone()),
                };
                *results[i].lock() = Some(opened);
            });
        }
    });
    results
        .into_iter()
        .zip(found)
        .map(|(slot, f)| match slot.into_inner() {
            Some(result) => result,
            None => Err(StorageError::io(
                format!("open {}", f.path.display()),
                io::Error::other("log was not opened"),
            )),
        })
        .collect()
}

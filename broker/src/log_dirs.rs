//! Ownership of the log directories: an exclusive `.lock` per directory (two brokers must never
//! share one) and Kafka's `meta.properties`, which ties a directory to one node id and cluster.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum LogDirError {
    #[error("cannot use log dir {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("log dir {0} is in use by another process (its .lock is held)")]
    Locked(PathBuf),
    #[error("log dir {path} belongs to node {found}, but this broker is node {expected}")]
    WrongNode {
        path: PathBuf,
        expected: i32,
        found: String,
    },
    #[error("log dir {path} belongs to cluster {found}, but the quorum's cluster is {expected}")]
    WrongCluster {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// Held for the broker's lifetime; dropping it releases the locks.
#[derive(Debug)]
pub struct LogDirs {
    _locks: Vec<File>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogDirError + '_ {
    move |source| LogDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_properties(path: &Path) -> Result<BTreeMap<String, String>, LogDirError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

impl LogDirs {
    /// Creates, locks and checks every directory.
    pub fn claim(dirs: &[PathBuf], node_id: i32) -> Result<LogDirs, LogDirError> {
        let mut locks = Vec::with_capacity(dirs.len());
        for dir in dirs {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            let lock_path = dir.join(".lock");
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io_err(&lock_path))?;
            // SAFETY: flock on a descriptor we own; no memory is involved.
            let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                return Err(LogDirError::Locked(dir.clone()));
            }
            let meta = read_properties(&dir.join("meta.properties"))?;
            if let Some(found) = meta.get("node.id") {
                if found.parse::<i32>().ok() != Some(node_id) {
                    return Err(LogDirError::WrongNode {
                        path: dir.clone(),
                        expected: node_id,
                        found: found.clone(),
                    });
                }
            }
            locks.push(lock);
        }
        Ok(LogDirs { _locks: locks })
    }
}

/// Records node id and cluster id in every directory (Kafka's `meta.properties`), refusing a
/// directory that already belongs to another cluster.
pub fn stamp(dirs: &[PathBuf], node_id: i32, cluster_id: &str) -> Result<(), LogDirError> {
    for dir in dirs {
        let path = dir.join("meta.properties");
        let meta = read_properties(&path)?;
        match meta.get("cluster.id") {
            Some(found) if found == cluster_id => continue,
            Some(found) => {
                return Err(LogDirError::WrongCluster {
                    path: dir.clone(),
                    expected: cluster_id.to_string(),
                    found: found.clone(),
                })
            }
            None => {}
        }
        let text = format!(
            "#\n#Written by rivulet\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\n"
        );
        let tmp = dir.join("meta.properties.tmp");
        std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        info!(dir = %dir.display(), cluster_id, node_id, "wrote meta.properties");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_and_node_id_checked() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().join("a")];
        let first = LogDirs::claim(&dirs, 1).unwrap();
        assert!(matches!(
            LogDirs::claim(&dirs, 1),
            Err(LogDirError::Locked(_))
        ));
        stamp(&dirs, 1, "cluster-x").unwrap();
        drop(first);
        assert!(matches!(
            LogDirs::claim(&dirs, 2),
            Err(LogDirError::WrongNode { .. })
        ));
        let _again = LogDirs::claim(&dirs, 1).unwrap();
        stamp(&dirs, 1, "cluster-x").unwrap();
        assert!(matches!(
            stamp(&dirs, 1, "cluster-y"),
            Err(LogDirError::WrongCluster { .. })
        ));
    }
}

//! Crash-safe replacement of small files: write a temporary sibling, fsync it, rename it over
//! the target and fsync the directory, so a reader finds either the old or the new contents.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

pub(crate) const TMP_SUFFIX: &str = ".tmp";

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Replaces `path` with `contents` atomically and durably.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    replace(path, contents, true)
}

/// Replaces `path` with `contents` atomically, leaving durability to a later
/// [`sync_file`]. After a crash the file may be missing or hold a prefix of `contents`, so
/// only self-checking contents belong here.
pub(crate) fn write_replacing(path: &Path, contents: &[u8]) -> Result<()> {
    replace(path, contents, false)
}

fn replace(path: &Path, contents: &[u8], durable: bool) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let mut file = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        file.write_all(contents)
            .ctx(|| format!("write {}", tmp.display()))?;
        if durable {
            file.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
        }
    }
    fs::rename(&tmp, path).ctx(|| format!("rename {} into place", tmp.display()))?;
    if durable {
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    Ok(())
}

/// fsyncs an existing file; a file deleted meanwhile is not an error.
pub(crate) fn sync_file(path: &Path) -> Result<()> {
    match File::open(path) {
        Ok(file) => file.sync_all().ctx(|| format!("fsync {}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(crate::error::StorageError::io(
            format!("open {}", path.display()),
            err,
        )),
    }
}

/// fsyncs a directory so renames and unlinks in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("fsync directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        write_replacing(&path, b"three").unwrap();
        sync_file(&path).unwrap();
        sync_file(&dir.path().join("gone")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert!(!tmp_path(&path).exists());
    }
}

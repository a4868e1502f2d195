//! Kafka's text checkpoint files: a version line (0), a count line and one entry per line.
//! Used for `replication-offset-checkpoint` (`topic partition offset`), the per-partition
//! `log-start-offset-checkpoint`, `recovery-point-offset-checkpoint` and
//! `cleaner-offset-checkpoint` files (same format, one entry) and `leader-epoch-checkpoint`
//! (`epoch offset`).

use std::fs;
use std::io;
use std::path::Path;

use crate::atomic_file::write_atomically;
use crate::error::{Result, StorageError};
use crate::TopicPartition;

const VERSION: &str = "0";

fn corrupt(path: &Path, reason: impl Into<String>) -> StorageError {
    StorageError::io(
        format!("malformed checkpoint {}", path.display()),
        io::Error::new(io::ErrorKind::InvalidData, reason.into()),
    )
}

fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = format!("{VERSION}\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    write_atomically(path, text.as_bytes())
}

/// The entry lines split into fields, or None when the file does not exist.
fn read_lines(path: &Path, fields: usize) -> Result<Option<Vec<Vec<String>>>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StorageError::io(format!("read {}", path.display()), err)),
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(VERSION) {
        return Err(corrupt(path, "unsupported version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt(path, "bad entry count"))?;
    let entries: Vec<Vec<String>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    if entries.len() != count || entries.iter().any(|e| e.len() != fields) {
        return Err(corrupt(path, "entries do not match the count or format"));
    }
    Ok(Some(entries))
}

fn number<T: std::str::FromStr>(path: &Path, field: &str) -> Result<T> {
    field
        .parse()
        .map_err(|_| corrupt(path, format!("{field:?} is not a number")))
}

/// Reads `topic partition offset` entries; an absent file is empty.
pub(crate) fn read_offsets(path: &Path) -> Result<Vec<(TopicPartition, i64)>> {
    let Some(lines) = read_lines(path, 3)? else {
        return Ok(Vec::new());
    };
    lines
        .iter()
        .map(|f| {
            Ok((
                TopicPartition::new(f[0].clone(), number(path, &f[1])?),
                number(path, &f[2])?,
            ))
        })
        .collect()
}

/// Writes `topic partition offset` entries.
pub(crate) fn write_offsets(path: &Path, entries: &[(TopicPartition, i64)]) -> Result<()> {
    let lines: Vec<String> = entries
        .iter()
        .map(|(tp, offset)| format!("{} {} {offset}", tp.topic, tp.partition))
        .collect();
    write_lines(path, &lines)
}

/// Reads the single offset of a per-partition checkpoint, if the file exists.
pub(crate) fn read_single_offset(path: &Path) -> Result<Option<i64>> {
    let entries = read_offsets(path)?;
    match entries.as_slice() {
        [] => Ok(None),
        [(_, offset)] => Ok(Some(*offset)),
        _ => Err(corrupt(path, "expected one entry")),
    }
}

/// Reads `epoch offset` entries; an absent file is empty.
pub(crate) fn read_epochs(path: &Path) -> Result<Vec<(i32, i64)>> {
    let Some(lines) = read_lines(path, 2)? else {
        return Ok(Vec::new());
    };
    lines
        .iter()
        .map(|f| Ok((number(path, &f[0])?, number(path, &f[1])?)))
        .collect()
}

/// Writes `epoch offset` entries.
pub(crate) fn write_epochs(path: &Path, entries: &[(i32, i64)]) -> Result<()> {
    let lines: Vec<String> = entries.iter().map(|(e, o)| format!("{e} {o}")).collect();
    write_lines(path, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replication-offset-checkpoint");
        let entries = vec![
            (TopicPartition::new("a-b", 0), 10),
            (TopicPartition::new("c", 3), 0),
        ];
        write_offsets(&path, &entries).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n2\na-b 0 10\nc 3 0\n"
        );
        assert_eq!(read_offsets(&path).unwrap(), entries);
        assert!(read_offsets(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn epochs_round_trip_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leader-epoch-checkpoint");
        write_epochs(&path, &[(0, 0), (4, 120)]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n2\n0 0\n4 120\n");
        assert_eq!(read_epochs(&path).unwrap(), vec![(0, 0), (4, 120)]);
        for bad in ["1\n0\n", "0\n2\n0 0\n", "0\n1\nx 1\n", "0\n1\n1 2 3\n", ""] {
            fs::write(&path, bad).unwrap();
            assert_eq!(
                read_epochs(&path).unwrap_err().kafka_error_code().code(),
                56,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn single_offset_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-start-offset-checkpoint");
        assert_eq!(read_single_offset(&path).unwrap(), None);
        write_offsets(&path, &[(TopicPartition::new("t", 1), 77)]).unwrap();
        assert_eq!(read_single_offset(&path).unwrap(), Some(77));
    }
}

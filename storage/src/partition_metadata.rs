//! Kafka's `partition.metadata` file: the topic id of a partition directory, so a partition of a
//! deleted and re-created topic is never mistaken for the new one.
//!
//! ```text
//! version: 0
//! topic_id: <topic id, URL-safe base64 without padding>
//! ```

use std::fs;
use std::io;
use std::path::Path;

use crate::atomic_file::write_atomically;
use crate::error::{Result, StorageError};

pub(crate) const PARTITION_METADATA: &str = "partition.metadata";

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 without padding, as Kafka prints a `Uuid`.
pub(crate) fn encode_topic_id(id: &[u8; 16]) -> String {
    let mut out = String::with_capacity(22);
    for chunk in id.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
        }
    }
    out
}

/// Parses the form [`encode_topic_id`] writes.
pub(crate) fn decode_topic_id(text: &str) -> Option<[u8; 16]> {
    let text = text.trim_end_matches('=');
    if text.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(16);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out.try_into().ok()
}

/// Reads the topic id of a partition directory, if recorded.
pub(crate) fn read(dir: &Path) -> Result<Option<[u8; 16]>> {
    let path = dir.join(PARTITION_METADATA);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StorageError::io(format!("read {}", path.display()), err)),
    };
    let mut version = None;
    let mut topic_id = None;
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(':') {
            match key.trim() {
                "version" => version = Some(value.trim().to_string()),
                "topic_id" => topic_id = decode_topic_id(value.trim()),
                _ => {}
            }
        }
    }
    match (version.as_deref(), topic_id) {
        (Some("0"), Some(id)) => Ok(Some(id)),
        _ => Err(StorageError::io(
            format!("malformed {}", path.display()),
            io::Error::new(
                io::ErrorKind::InvalidData,
                "expected version 0 and a topic_id",
            ),
        )),
    }
}

/// Records the topic id of a partition directory.
pub(crate) fn write(dir: &Path, id: &[u8; 16]) -> Result<()> {
    let text = format!("version: 0\ntopic_id: {}\n", encode_topic_id(id));
    write_atomically(&dir.join(PARTITION_METADATA), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kafkas_uuid_text() {
        let mut id = [0u8; 16];
        id[15] = 1;
        assert_eq!(encode_topic_id(&id), "AAAAAAAAAAAAAAAAAAAAAQ");
        let all = [0xffu8; 16];
        assert_eq!(encode_topic_id(&all), "_____________________w");
        for sample in [id, all, *b"0123456789abcdef"] {
            assert_eq!(decode_topic_id(&encode_topic_id(&sample)), Some(sample));
        }
        assert_eq!(decode_topic_id("short"), None);
        assert_eq!(decode_topic_id("AAAAAAAAAAAAAAAAAAAA*Q"), None);
    }

    #[test]
    fn file_round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), b"0123456789abcdef").unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(*b"0123456789abcdef"));
        fs::write(dir.path().join(PARTITION_METADATA), "version: 7\n").unwrap();
        assert!(read(dir.path()).is_err());
    }
}

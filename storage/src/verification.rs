//! Lazy verification of segment bytes on read. Batches are CRC-checked when appended, but bytes
//! a process did not write itself (segments opened from disk) are trusted only once read
//! through here: the first read reaching past a segment's verified position checks every batch
//! up to the end of what it reads — header sanity, offsets in order, CRC-32C — and moves the
//! position on, so each byte is verified at most once per process lifetime.

use std::fs::File;

use crate::batch::verify_crc;
use crate::batch_scan::BatchScan;
use crate::error::StorageError;

/// How far a segment's bytes are known to be intact: everything before `position`, whose
/// batches end just before `next_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verified {
    pub position: u64,
    pub next_offset: i64,
}

impl Verified {
    /// Nothing verified yet in a segment starting at `base_offset`.
    pub(crate) fn start(base_offset: i64) -> Verified {
        Verified {
            position: 0,
            next_offset: base_offset,
        }
    }
}

/// The result of verifying a range: how far it got, and the defect that stopped it, if any.
#[derive(Debug)]
pub(crate) struct Verification {
    pub verified: Verified,
    /// `StorageError::Corrupt` for the first bad batch; `Io` when the file could not be read.
    pub error: Option<StorageError>,
}

/// Checks the batches of `file` (the segment at `segment_base`) from `from` up to `end`, which
/// must be a batch boundary. A batch whose base offset is below the previous batch's end, or
/// whose last offset does not fit the segment (`max_offset`), is corrupt too: base offsets are
/// not covered by the CRC.
pub(crate) fn verify(
    file: &File,
    segment_base: i64,
    max_offset: i64,
    from: Verified,
    end: u64,
) -> Verification {
    let mut verified = from;
    let mut scan = BatchScan::new(file, from.position, end);
    let corrupt = |at: Verified, reason: String| StorageError::Corrupt {
        segment: segment_base,
        position: at.position,
        offset: at.next_offset,
        reason,
    };
    loop {
        let batch = match scan.next_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(err @ StorageError::Io { .. }) => {
                return Verification {
                    verified,
                    error: Some(err),
                }
            }
            Err(err) => {
                return Verification {
                    verified,
                    error: Some(corrupt(verified, err.to_string())),
                }
            }
        };
        let header = batch.header;
        let defect =
            if header.base_offset < verified.next_offset || header.last_offset() > max_offset {
                Some(format!(
                    "batch offsets {}..{} out of place after offset {}",
                    header.base_offset,
                    header.last_offset(),
                    verified.next_offset
                ))
            } else {
                verify_crc(&batch.bytes, &header)
                    .err()
                    .map(|e| e.to_string())
            };
        if let Some(reason) = defect {
            return Verification {
                verified,
                error: Some(corrupt(verified, reason)),
            };
        }
        verified = Verified {
            position: scan.position(),
            next_offset: header.last_offset().saturating_add(1),
        };
    }
    Verification {
        verified,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_batches::{batch, BatchSpec};
    use bytes::Bytes;
    use std::io::Write;

    fn file_of(batches: &[Bytes]) -> (tempfile::TempDir, File, Vec<u64>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let mut f = File::create(&path).unwrap();
        let mut ends = Vec::new();
        let mut pos = 0;
        for b in batches {
            f.write_all(b).unwrap();
            pos += b.len() as u64;
            ends.push(pos);
        }
        (dir, File::open(&path).unwrap(), ends)
    }

    fn batches() -> Vec<Bytes> {
        (0..4)
            .map(|i| {
                batch(&BatchSpec {
                    base_offset: 10 + i * 2,
                    ..BatchSpec::values(&[&b"one"[..], &b"two"[..]])
                })
            })
            .collect()
    }

    #[test]
    fn intact_batches_verify_to_the_end() {
        let (_d, f, ends) = file_of(&batches());
        let v = verify(&f, 10, i64::MAX, Verified::start(10), ends[3]);
        assert!(v.error.is_none());
        assert_eq!(
            v.verified,
            Verified {
                position: ends[3],
                next_offset: 18
            }
        );
    }

    #[test]
    fn a_flipped_byte_stops_at_its_batch() {
        let mut bs = batches();
        let mut bad = bs[2].to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        bs[2] = Bytes::from(bad);
        let (_d, f, ends) = file_of(&bs);
        let v = verify(&f, 10, i64::MAX, Verified::start(10), ends[3]);
        assert_eq!(v.verified.position, ends[1]);
        match v.error {
            Some(StorageError::Corrupt {
                segment,
                position,
                offset,
                ..
            }) => assert_eq!((segment, position, offset), (10, ends[1], 14)),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn offsets_going_backwards_are_corrupt() {
        let mut bs = batches();
        bs[1] = batch(&BatchSpec {
            base_offset: 9,
            ..BatchSpec::values(&[&b"one"[..], &b"two"[..]])
        });
        let (_d, f, ends) = file_of(&bs);
        let v = verify(&f, 10, i64::MAX, Verified::start(10), ends[3]);
        assert_eq!(v.verified.next_offset, 12);
        assert!(matches!(
            v.error,
            Some(StorageError::Corrupt { offset: 12, .. })
        ));
    }
}

//! Loading the segments of a partition directory on open: finishing or discarding interrupted
//! operations (temporary, `.cleaned`, `.swap`, `.deleted` files), trusting the trimmed indexes
//! of segments known to be intact, and recovering the others — every batch CRC-checked, both
//! indexes rebuilt, a torn or corrupt tail truncated, and every later segment deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use tracing::{info, warn};

use crate::atomic_file::{sync_dir, TMP_SUFFIX};
use crate::batch::verify_crc;
use crate::batch_scan::BatchScan;
use crate::error::{IoContext, Result, StorageError};
use crate::segment::{
    file_path, AppendedBatch, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

pub(crate) const DELETED_SUFFIX: &str = ".deleted";
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// Batches indexed per call while re-indexing a segment.
const INDEX_CHUNK: usize = 1024;

/// Segments of a partition by base offset.
pub(crate) type SegmentMap = BTreeMap<i64, Arc<Segment>>;

/// Re-reads every batch of a segment opened with [`Segment::open_for_recovery`], rebuilding
/// its indexes, and truncates the file after the last valid batch. Returns the bytes cut.
pub(crate) fn recover_segment(segment: &Segment, index_interval: u64) -> Result<u64> {
    segment.reset_indexes();
    let file_len = segment
        .file()
        .metadata()
        .ctx(|| format!("stat segment {}", segment.base_offset()))?
        .len();
    let mut scan = BatchScan::new(segment.file(), 0, file_len);
    let mut expected = segment.base_offset();
    let mut pending: Vec<AppendedBatch> = Vec::with_capacity(INDEX_CHUNK);
    let mut pending_start = 0;
    let mut valid = 0;
    loop {
        let batch = match scan.next_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(err @ StorageError::Io { .. }) => return Err(err),
            Err(err) => {
                warn!(segment = segment.base_offset(), position = valid, error = %err, "invalid batch during recovery");
                break;
            }
        };
        let header = batch.header;
        if let Err(err) = verify_crc(&batch.bytes, &header) {
            warn!(segment = segment.base_offset(), position = valid, error = %err, "invalid batch during recovery");
            break;
        }
        if header.base_offset < expected || !segment.can_hold_offset(header.last_offset()) {
            warn!(
                segment = segment.base_offset(),
                position = valid,
                base_offset = header.base_offset,
                expected,
                "batch offsets out of place during recovery"
            );
            break;
        }
        expected = header.last_offset().saturating_add(1);
        pending.push(AppendedBatch {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            size: header.size() as u32,
        });
        valid = scan.position();
        if pending.len() == INDEX_CHUNK {
            segment.index_appended(pending_start, &pending, index_interval)?;
            pending.clear();
            pending_start = valid;
        }
    }
    segment.index_appended(pending_start, &pending, index_interval)?;
    if valid < file_len {
        segment.truncate_file(valid)?;
    }
    Ok(file_len - valid)
}

/// How to load a directory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadOptions {
    /// Whether the previous shutdown was clean (no segment needs a scan).
    pub clean: bool,
    /// Offset below which data was flushed; segments holding offsets at or after it are
    /// recovered after an unclean shutdown.
    pub recovery_point: i64,
    pub index_bytes: u64,
    pub index_interval: u64,
    pub now_ms: i64,
}

/// Result of loading a directory.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub segments: SegmentMap,
    /// Whether any segment was scanned and re-indexed.
    pub recovered: bool,
}

/// Loads the segments in `dir`. The last one comes back writable (indexes at full size).
pub(crate) fn load_segments(dir: &Path, options: LoadOptions) -> Result<Loaded> {
    clean_leftovers(dir)?;
    let bases = segment_bases(dir)?;
    let first_to_recover = if options.clean {
        bases.len()
    } else {
        bases
            .iter()
            .rposition(|b| *b <= options.recovery_point)
            .unwrap_or(0)
    };
    let mut segments = SegmentMap::new();
    let mut recovered = false;
    let mut corrupt_from = None;
    for (i, &base) in bases.iter().enumerate() {
        if corrupt_from.is_some() {
            warn!(dir = %dir.display(), segment = base, "deleting segment after a corrupt one");
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                remove_if_exists(&file_path(dir, base, suffix))?;
            }
            continue;
        }
        let last = i + 1 == bases.len();
        let trusted = if i < first_to_recover {
            match Segment::open_clean(dir, base, options.now_ms) {
                Ok(segment) => Some(segment),
                Err(err) => {
                    warn!(dir = %dir.display(), segment = base, error = %err, "segment needs recovery");
                    None
                }
            }
        } else {
            None
        };
        let segment = match trusted {
            Some(segment) => {
                if last {
                    segment.unseal(options.index_bytes)?;
                } else {
                    segment.seal()?;
                }
                segment
            }
            None => {
                let segment =
                    Segment::open_for_recovery(dir, base, options.index_bytes, options.now_ms)?;
                let cut = recover_segment(&segment, options.index_interval)?;
                recovered = true;
                if cut > 0 {
                    warn!(dir = %dir.display(), segment = base, bytes = cut, "truncated invalid bytes at the end of a segment");
                    if !last {
                        corrupt_from = Some(base);
                    }
                } else {
                    info!(dir = %dir.display(), segment = base, "recovered segment");
                }
                if !last && corrupt_from.is_none() {
                    segment.seal()?;
                }
                segment
            }
        };
        segments.insert(base, Arc::new(segment));
    }
    Ok(Loaded {
        segments,
        recovered,
    })
}

/// Base offsets of the `.log` files in `dir`, ascending.
fn segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = BTreeSet::new();
    for name in file_names(dir)? {
        if let Some(base) = name.strip_suffix(LOG_SUFFIX).and_then(parse_base) {
            bases.insert(base);
        }
    }
    Ok(bases.into_iter().collect())
}

fn parse_base(stem: &str) -> Option<i64> {
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn file_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
        let entry = entry.ctx(|| format!("list {}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(StorageError::io(format!("delete {}", path.display()), err))
        }
        _ => Ok(()),
    }
}

/// Removes files of interrupted operations and completes interrupted segment swaps.
fn clean_leftovers(dir: &Path) -> Result<()> {
    let names = file_names(dir)?;
    let mut changed = false;
    for name in &names {
        if name.ends_with(TMP_SUFFIX)
            || name.ends_with(DELETED_SUFFIX)
            || name.ends_with(CLEANED_SUFFIX)
        {
            remove_if_exists(&dir.join(name))?;
            changed = true;
        }
    }
    let swapped_logs: Vec<i64> = names
        .iter()
        .filter_map(|n| n.strip_suffix(SWAP_SUFFIX))
        .filter_map(|n| n.strip_suffix(LOG_SUFFIX))
        .filter_map(parse_base)
        .collect();
    for base in &swapped_logs {
        info!(dir = %dir.display(), segment = base, "completing an interrupted segment swap");
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&file_path(dir, *base, suffix))?;
        }
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX] {
            let from = file_path(dir, *base, &format!("{suffix}{SWAP_SUFFIX}"));
            if from.exists() {
                let to = file_path(dir, *base, suffix);
                fs::rename(&from, &to).ctx(|| format!("rename {}", from.display()))?;
            }
        }
        changed = true;
    }
    for name in file_names(dir)? {
        let orphan_swap = name.ends_with(SWAP_SUFFIX);
        let orphan_index = [INDEX_SUFFIX, TIME_INDEX_SUFFIX].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .and_then(parse_base)
                .is_some_and(|base| !file_path(dir, base, LOG_SUFFIX).exists())
        });
        if orphan_swap || orphan_index {
            remove_if_exists(&dir.join(&name))?;
            changed = true;
        }
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::check_batch;
    use crate::test_batches::{batch, BatchSpec};
    use bytes::Bytes;
    use std::io::Write;

    fn append_n(seg: &Segment, first: i64, n: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        for i in 0..n {
            let mut spec = BatchSpec::values(&[b"payload-1", b"payload-2"]);
            spec.base_offset = first + 2 * i as i64;
            let b = batch(&spec);
            let h = check_batch(&b).unwrap();
            seg.append(
                &[&b],
                &[AppendedBatch {
                    base_offset: h.base_offset,
                    last_offset: h.last_offset(),
                    max_timestamp: h.max_timestamp,
                    size: b.len() as u32,
                }],
                64,
            )
            .unwrap();
            out.push(b);
        }
        out
    }

    #[test]
    fn recovery_rebuilds_indexes_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 0, 4096, None, 0).unwrap();
        let batches = append_n(&seg, 0, 50);
        let good_size = seg.size();
        drop(seg);
        let path = file_path(dir.path(), 0, LOG_SUFFIX);
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&batches[0][..40]).unwrap();
        drop(f);
        let seg = Segment::open_for_recovery(dir.path(), 0, 4096, 0).unwrap();
        assert_eq!(recover_segment(&seg, 64).unwrap(), 40);
        assert_eq!(seg.size(), good_size);
        assert_eq!(seg.next_offset(), 100);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_size);
        let found = seg.find_batch(57).unwrap().unwrap();
        assert_eq!(found.base_offset, 56);
    }

    #[test]
    fn corrupt_middle_segment_deletes_later_ones_and_swaps_complete() {
        let dir = tempfile::tempdir().unwrap();
        let s0 = Segment::create(dir.path(), 0, 4096, None, 0).unwrap();
        append_n(&s0, 0, 5);
        s0.seal().unwrap();
        let s1 = Segment::create(dir.path(), 10, 4096, None, 0).unwrap();
        append_n(&s1, 10, 5);
        s1.seal().unwrap();
        let s2 = Segment::create(dir.path(), 20, 4096, None, 0).unwrap();
        append_n(&s2, 20, 5);
        drop((s0, s1, s2));
        let p1 = file_path(dir.path(), 10, LOG_SUFFIX);
        let mut bytes = fs::read(&p1).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0xff;
        fs::write(&p1, bytes).unwrap();
        fs::write(dir.path().join("x.tmp"), b"junk").unwrap();
        fs::write(file_path(dir.path(), 99, INDEX_SUFFIX), b"").unwrap();
        let loaded = load_segments(
            dir.path(),
            LoadOptions {
                clean: false,
                recovery_point: 10,
                index_bytes: 4096,
                index_interval: 64,
                now_ms: 0,
            },
        )
        .unwrap();
        assert!(loaded.recovered);
        assert_eq!(
            loaded.segments.keys().copied().collect::<Vec<_>>(),
            vec![0, 10]
        );
        assert_eq!(loaded.segments[&10].next_offset(), 18);
        assert!(!file_path(dir.path(), 20, LOG_SUFFIX).exists());
        assert!(!dir.path().join("x.tmp").exists());
        assert!(!file_path(dir.path(), 99, INDEX_SUFFIX).exists());
    }

    #[test]
    fn interrupted_swap_is_completed() {
        let dir = tempfile::tempdir().unwrap();
        let old = Segment::create(dir.path(), 0, 4096, None, 0).unwrap();
        append_n(&old, 0, 5);
        old.seal().unwrap();
        drop(old);
        let other = tempfile::tempdir().unwrap();
        let new = Segment::create(other.path(), 0, 4096, None, 0).unwrap();
        append_n(&new, 0, 2);
        new.seal().unwrap();
        drop(new);
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            fs::copy(
                file_path(other.path(), 0, suffix),
                file_path(dir.path(), 0, &format!("{suffix}{SWAP_SUFFIX}")),
            )
            .unwrap();
        }
        let loaded = load_segments(
            dir.path(),
            LoadOptions {
                clean: true,
                recovery_point: 0,
                index_bytes: 4096,
                index_interval: 64,
                now_ms: 0,
            },
        )
        .unwrap();
        assert!(!loaded.recovered);
        assert_eq!(loaded.segments[&0].next_offset(), 4);
        let leftovers: Vec<_> = file_names(dir.path())
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(SWAP_SUFFIX))
            .collect();
        assert!(leftovers.is_empty());
    }
}

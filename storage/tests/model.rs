//! Random sequences of appends, reads, rolls, truncations, log start moves and reopens agree
//! with a simple in-memory model of the log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use proptest::prelude::*;
use storage::{Log, LogConfig, StorageError};
use support::*;

#[derive(Clone, Debug)]
enum Op {
    Append { records: usize, size: usize },
    Follow { records: usize, gap: i64 },
    Read { at: u16, max_bytes: u16 },
    Roll,
    Truncate { at: u16 },
    DeleteBefore { at: u16 },
    Reopen { clean: bool },
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..5, 1usize..300).prop_map(|(records, size)| Op::Append { records, size }),
        1 => (1usize..4, 0i64..3).prop_map(|(records, gap)| Op::Follow { records, gap }),
        4 => (any::<u16>(), any::<u16>()).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => Just(Op::Roll),
        1 => any::<u16>().prop_map(|at| Op::Truncate { at }),
        1 => any::<u16>().prop_map(|at| Op::DeleteBefore { at }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => Just(Op::Flush),
    ]
}

/// A batch as the model knows it.
#[derive(Clone, Debug)]
struct Batch {
    base: i64,
    values: Vec<Vec<u8>>,
    size: usize,
}

impl Batch {
    fn last(&self) -> i64 {
        self.base + self.values.len() as i64 - 1
    }
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<Batch>,
    log_start: i64,
    next_offset: i64,
    counter: u64,
}

impl Model {
    fn end(&self) -> i64 {
        self.next_offset
    }

    fn pick(&self, at: u16) -> i64 {
        let span = (self.end() - self.log_start + 1).max(1);
        self.log_start + i64::from(at) % span
    }

    fn values(&mut self, n: usize, size: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                self.counter += 1;
                let mut v = format!("{:08}-", self.counter).into_bytes();
                v.resize(9 + size, b'.');
                v
            })
            .collect()
    }

    /// Records a read must return: whole batches from the one holding `start`.
    fn expected_read(&self, start: i64, max_bytes: usize) -> Vec<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut used = 0;
        for b in self.batches.iter().filter(|b| b.last() >= start) {
            if !out.is_empty() && used + b.size > max_bytes {
                break;
            }
            used += b.size;
            for (i, v) in b.values.iter().enumerate() {
                out.push((b.base + i as i64, v.clone()));
            }
        }
        out
    }
}

fn decode_pairs(bytes: &bytes::Bytes) -> Vec<(i64, Vec<u8>)> {
    decode(bytes)
        .into_iter()
        .map(|g| (g.offset, g.value.unwrap().to_vec()))
        .collect()
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1500,
        segment_index_bytes: 256,
        index_interval_bytes: 200,
        retention_ms: -1,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let mut log = Some(open(root.path(), config()));
    let mut model = Model::default();
    for op in ops {
        let l: &Log = log.as_ref().unwrap();
        match op {
            Op::Append { records, size } => {
                let vals = model.values(records, size);
                let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
                let batch = support::values(&refs, 1000);
                let info = l.append_as_leader(batch.clone(), 1, 0).unwrap();
                prop_assert_eq!(info.first_offset, model.end());
                model.batches.push(Batch {
                    base: info.first_offset,
                    values: vals,
                    size: batch.len(),
                });
                model.next_offset = info.last_offset + 1;
            }
            Op::Follow { records, gap } => {
                let vals = model.values(records, 10);
                let base = model.end() + gap;
                let recs: Vec<Rec> = vals.iter().map(|v| Rec::value(v, 1000)).collect();
                let batch = encode(
                    base,
                    1,
                    &recs,
                    None,
                    kafka_protocol::records::Compression::None,
                );
                l.append_as_follower(batch.clone()).unwrap();
                model.batches.push(Batch {
                    base,
                    values: vals,
                    size: batch.len(),
                });
                model.next_offset = base + records as i64;
            }
            Op::Read { at, max_bytes } => {
                let start = model.pick(at);
                let max_bytes = usize::from(max_bytes) % 3000;
                let got = l.read_bytes(start, max_bytes as u32, i64::MAX);
                if start > model.end() || start < model.log_start {
                    let out_of_range = matches!(got, Err(StorageError::OffsetOutOfRange { .. }));
                    prop_assert!(out_of_range, "read at {} should be out of range", start);
                } else {
                    let got = decode_pairs(&got.unwrap());
                    prop_assert_eq!(got, model.expected_read(start, max_bytes));
                }
            }
            Op::Roll => l.roll().unwrap(),
            Op::Truncate { at } => {
                let to = model.pick(at);
                let floor_base = l
                    .segment_base_offsets()
                    .into_iter()
                    .filter(|b| *b <= to)
                    .max()
                    .unwrap_or(to);
                l.truncate_to(to).unwrap();
                if to < model.end() {
                    model.batches.retain(|b| b.last() < to);
                    let kept_end = model.batches.last().map_or(i64::MIN, |b| b.last() + 1);
                    model.next_offset = kept_end.max(floor_base);
                }
                model.log_start = model.log_start.min(model.end());
                prop_assert_eq!(l.log_end_offset(), model.end());
            }
            Op::DeleteBefore { at } => {
                let to = model.pick(at);
                l.set_high_watermark(model.end());
                let start = l.delete_records_before(to).unwrap();
                model.log_start = model.log_start.max(to);
                prop_assert_eq!(start, model.log_start);
                l.maintain(0).unwrap();
            }
            Op::Reopen { clean } => {
                let old = log.take().unwrap();
                if clean {
                    old.close().unwrap();
                }
                drop(old);
                log = Some(open(root.path(), config()));
            }
            Op::Flush => {
                l.flush().unwrap();
                prop_assert_eq!(l.recovery_point(), model.end());
            }
        }
        let l = log.as_ref().unwrap();
        prop_assert_eq!(l.log_end_offset(), model.end());
        prop_assert_eq!(l.log_start_offset(), model.log_start);
        let all = decode_pairs(&l.read_bytes(model.log_start, u32::MAX, i64::MAX).unwrap());
        let expect = model.expected_read(model.log_start, usize::MAX);
        prop_assert_eq!(all, expect);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_agrees_with_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}

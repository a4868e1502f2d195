//! Storage benchmarks: leader appends of 1, 16 and 64 KiB batches and reads by offset (file
//! regions and copies), each next to a ceiling measured in the same run on the same bytes:
//! plain positional `write(2)` to a file for appends, `pread(2)` of a plain file and `memcpy`
//! for reads. A summary of the ratios is printed at the end.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use storage::{Log, LogConfig, TopicPartition};

/// Files are emptied (outside the timed sections) once they pass this size.
const FILE_LIMIT: u64 = 256 << 20;
/// Bytes a fetch asks for.
const FETCH_BYTES: u32 = 1 << 20;
const RECORD_SIZE: usize = 1024;

/// Bytes and time of every timed iteration, by benchmark, for the closing ratios.
static TOTALS: Mutex<BTreeMap<String, (u128, Duration)>> = Mutex::new(BTreeMap::new());

fn record(name: &str, bytes: u64, elapsed: Duration) {
    let mut totals = TOTALS.lock().unwrap();
    let entry = totals.entry(name.to_string()).or_default();
    entry.0 += u128::from(bytes);
    entry.1 += elapsed;
}

fn mb_per_s(name: &str) -> Option<f64> {
    let totals = TOTALS.lock().unwrap();
    let (bytes, time) = totals.get(name)?;
    Some(*bytes as f64 / time.as_secs_f64() / 1e6)
}

/// A produce batch of `records` uncompressed 1 KiB records, encoded by kafka-protocol.
fn batch(records: usize) -> Bytes {
    let value = Bytes::from(vec![b'r'; RECORD_SIZE]);
    let recs: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1 + i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(value.clone()),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn bench_config() -> LogConfig {
    LogConfig {
        segment_bytes: 128 << 20,
        retention_ms: -1,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

fn open_log(dir: &Path, name: &str) -> Log {
    Log::open(
        dir.join(format!("{name}-0")),
        TopicPartition::new(name, 0),
        bench_config(),
    )
    .unwrap()
}

fn append(c: &mut Criterion, dir: &Path) {
    let mut group = c.benchmark_group("append");
    for kib in [1usize, 16, 64] {
        let bytes = batch(kib);
        let len = bytes.len() as u64;
        group.throughput(Throughput::ElementsAndBytes {
            elements: 1,
            bytes: len,
        });
        let name = format!("append/log/{kib}KiB");
        let log = open_log(dir, &format!("append{kib}"));
        group.bench_function(BenchmarkId::new("log", format!("{kib}KiB")), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    if log.size_bytes() > FILE_LIMIT {
                        log.truncate_fully_and_start_at(log.log_end_offset())
                            .unwrap();
                        log.maintain(i64::MAX).unwrap();
                    }
                    let start = Instant::now();
                    black_box(log.append_as_leader(bytes.clone(), 1, 0).unwrap());
                    timed += start.elapsed();
                }
                record(&name, len * iters, timed);
                timed
            })
        });
        let name = format!("append/write(2)/{kib}KiB");
        let file = File::create(dir.join(format!("plain{kib}"))).unwrap();
        let mut position = 0u64;
        group.bench_function(BenchmarkId::new("write(2)", format!("{kib}KiB")), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    if position > FILE_LIMIT {
                        file.set_len(0).unwrap();
                        position = 0;
                    }
                    let start = Instant::now();
                    file.write_all_at(&bytes, position).unwrap();
                    timed += start.elapsed();
                    position += len;
                }
                record(&name, len * iters, timed);
                timed
            })
        });
        let name = format!("append/memcpy/{kib}KiB");
        let mut target = vec![0u8; bytes.len()];
        group.bench_function(BenchmarkId::new("memcpy", format!("{kib}KiB")), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    target.copy_from_slice(black_box(&bytes));
                    black_box(&mut target);
                }
                let timed = start.elapsed();
                record(&name, len * iters, timed);
                timed
            })
        });
    }
    group.finish();
}

/// A log of 16 KiB batches and a plain file with the same bytes, written batch by batch too so
/// that both sit in the page cache the same way.
struct ReadFixture {
    log: Log,
    plain: File,
    plain_len: u64,
    offsets: Vec<i64>,
}

fn read_fixture(dir: &Path) -> ReadFixture {
    let log = open_log(dir, "read");
    let bytes = batch(16);
    for _ in 0..(96 << 20) / bytes.len() {
        log.append_as_leader(bytes.clone(), 1, 0).unwrap();
    }
    let end = log.log_end_offset();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let offsets = (0..1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % (end as u64 - 200)) as i64
        })
        .collect();
    let plain = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("plain-read"))
        .unwrap();
    let mut position = 0;
    let mut offset = 0;
    while offset < end {
        let stored = log.read_bytes(offset, 1, i64::MAX).unwrap();
        plain.write_all_at(&stored, position).unwrap();
        position += stored.len() as u64;
        offset += 16;
    }
    ReadFixture {
        log,
        plain,
        plain_len: position,
        offsets,
    }
}

fn read(c: &mut Criterion, dir: &Path) {
    let fx = read_fixture(dir);
    let probe = fx.log.read(0, FETCH_BYTES, i64::MAX).unwrap().size_bytes as u64;
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::ElementsAndBytes {
        elements: 1,
        bytes: probe,
    });
    let mut i = 0usize;
    group.bench_function("region/1MiB", |b| {
        b.iter_custom(|iters| {
            let mut bytes = 0u64;
            let start = Instant::now();
            for _ in 0..iters {
                i = (i + 1) % fx.offsets.len();
                let info = fx.log.read(fx.offsets[i], FETCH_BYTES, i64::MAX).unwrap();
                bytes += u64::from(info.size_bytes);
                black_box(info);
            }
            let timed = start.elapsed();
            record("read/region/1MiB", bytes, timed);
            timed
        })
    });
    group.bench_function("copy/1MiB", |b| {
        b.iter_custom(|iters| {
            let mut bytes = 0u64;
            let start = Instant::now();
            for _ in 0..iters {
                i = (i + 1) % fx.offsets.len();
                let data = fx
                    .log
                    .read_bytes(fx.offsets[i], FETCH_BYTES, i64::MAX)
                    .unwrap();
                bytes += data.len() as u64;
                black_box(data);
            }
            let timed = start.elapsed();
            record("read/copy/1MiB", bytes, timed);
            timed
        })
    });
    let mut buf = vec![0u8; probe as usize];
    group.bench_function("pread(2)/1MiB", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                i = (i + 1) % fx.offsets.len();
                let position = (fx.offsets[i] as u64 * 1024) % (fx.plain_len - probe);
                fx.plain.read_exact_at(&mut buf, position).unwrap();
                black_box(&mut buf);
            }
            let timed = start.elapsed();
            record("read/pread(2)/1MiB", probe * iters, timed);
            timed
        })
    });
    let source = vec![7u8; probe as usize];
    group.bench_function("memcpy/1MiB", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                buf.copy_from_slice(black_box(&source));
                black_box(&mut buf);
            }
            let timed = start.elapsed();
            record("read/memcpy/1MiB", probe * iters, timed);
            timed
        })
    });
    let last_batch = batch(16).len() as u64;
    group.throughput(Throughput::ElementsAndBytes {
        elements: 1,
        bytes: last_batch,
    });
    let end = fx.log.log_end_offset();
    group.bench_function("region/tail", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(fx.log.read(end - 1, FETCH_BYTES, i64::MAX).unwrap());
            }
            let timed = start.elapsed();
            record("read/region/tail", last_batch * iters, timed);
            timed
        })
    });
    group.finish();
}

fn ratio(label: &str, value: &str, ceiling: &str) {
    if let (Some(v), Some(c)) = (mb_per_s(value), mb_per_s(ceiling)) {
        println!(
            "{label:<34} {v:>10.0} MB/s  vs {ceiling:<26} {c:>10.0} MB/s  ratio {:.2}",
            v / c
        );
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    append(&mut c, dir.path());
    read(&mut c, dir.path());
    c.final_summary();
    println!("\nSame-run ratios (mean over all timed iterations):");
    for kib in [1, 16, 64] {
        ratio(
            &format!("append {kib} KiB batches"),
            &format!("append/log/{kib}KiB"),
            &format!("append/write(2)/{kib}KiB"),
        );
        ratio(
            &format!("append {kib} KiB batches"),
            &format!("append/log/{kib}KiB"),
            &format!("append/memcpy/{kib}KiB"),
        );
    }
    ratio("read 1 MiB regions", "read/region/1MiB", "read/memcpy/1MiB");
    ratio("read 1 MiB copied", "read/copy/1MiB", "read/pread(2)/1MiB");
    ratio("read 1 MiB copied", "read/copy/1MiB", "read/memcpy/1MiB");
}

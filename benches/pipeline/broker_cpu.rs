//! A criterion measurement whose unit is broker CPU time: user + system time of every broker
//! process, read from `/proc/<pid>/stat`. With element throughput, criterion then reports
//! messages per broker-CPU-second — the "per core" figure.

use std::sync::Mutex;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::Throughput;

/// The broker processes being measured (replaced when a new cluster starts).
static BROKERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn set_brokers(pids: Vec<u32>) {
    *BROKERS.lock().unwrap_or_else(|e| e.into_inner()) = pids;
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// CPU time (user + system) of one process, in nanoseconds.
pub fn process_cpu_ns(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name may contain spaces; fields after it start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    (utime + stime) * 1_000_000_000 / clock_ticks_per_second()
}

/// Summed CPU time of the current brokers, in nanoseconds.
pub fn brokers_cpu_ns() -> u64 {
    let pids = BROKERS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    pids.iter().map(|p| process_cpu_ns(*p)).sum()
}

/// Broker CPU nanoseconds as a criterion measurement.
pub struct BrokerCpu;

impl Measurement for BrokerCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        brokers_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        brokers_cpu_ns().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical >= 1e9 {
            (1e-9, "cpu-s")
        } else if typical >= 1e6 {
            (1e-6, "cpu-ms")
        } else {
            (1e-3, "cpu-µs")
        };
        for v in values {
            *v *= factor;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iteration = match throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => *n as f64,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
            Throughput::Bits(n) => *n as f64,
        };
        for v in values {
            // value = broker CPU ns per iteration -> elements per broker-CPU-second
            *v = per_iteration * 1e9 / v.max(1.0);
        }
        "msg/broker-cpu-s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "cpu-ns"
    }
}

/// Busy and total CPU time of the whole host so far, in clock ticks (first line of /proc/stat;
/// idle and iowait count as not busy).
pub fn host_cpu_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

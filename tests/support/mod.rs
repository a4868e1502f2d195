//! Shared test support: the process cluster fixture, the fault-injecting proxy and Kafka
//! client helpers (librdkafka through the `rdkafka` crate).
#![allow(dead_code)] // each test crate uses a different part of the support code
#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

pub mod batches;
pub mod cluster;
pub mod kafka;
pub mod proxy;
pub mod raw;
pub mod record_producer;
pub mod workload;

use std::time::{Duration, Instant};

pub use cluster::{Cluster, ClusterOptions};

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A topic name unique within this test process.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

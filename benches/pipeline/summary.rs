//! Per-run figures of the pipeline benchmark: the table printed at the end and the JSON summary
//! under `target/pipeline/` that `benches/plot.py` turns into a chart.

use std::path::PathBuf;

use serde_json::json;

/// The reference Kafka-on-Kubernetes platform: messages per second per CPU core.
pub const REFERENCE_PER_CORE: f64 = 14_600.0;

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub brokers: usize,
    pub shape: String,
    /// `in-process` or `processes` (see the bench's module comment).
    pub client_mode: &'static str,
    /// `plaintext` or `ssl`: the listener the clients used.
    pub listener: &'static str,
    pub offered_rate: Option<u32>,
    pub payload_bytes: usize,
    pub producers: usize,
    pub consumers: usize,
    pub measured_seconds: f64,
    pub delivered_msgs_per_s: f64,
    pub broker_cpu_cores: f64,
    /// CPU of every producer and consumer client (they share the machine).
    pub client_cpu_cores: f64,
    pub msgs_per_broker_cpu_s: f64,
    pub ratio_to_reference: f64,
    /// Requests the brokers answered per second, every API and listener.
    pub requests_per_s: f64,
    pub produce_requests_per_s: f64,
    /// Consumer and follower fetches per second.
    pub fetch_requests_per_s: f64,
    pub records_per_produce_request: f64,
    pub broker_cpu_us_per_request: f64,
    /// Open connections on all brokers at the end of the measurement.
    pub connections: f64,
    /// Busy fraction of the whole host while measuring.
    pub host_busy: f64,
    pub produce_p50_ms: f64,
    pub produce_p99_ms: f64,
    pub e2e_p50_ms: f64,
    pub e2e_p99_ms: f64,
    pub max_consumer_lag_s: f64,
    pub acked_during_run: u64,
    pub failed: u64,
    pub run_seconds: f64,
    /// Time spent reaching steady state before measuring (60 s means it never did).
    pub warm_up_seconds: f64,
}

/// The `p`th percentile of `values` (sorted in place), 0 when empty.
pub fn percentile(values: &mut [u32], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    f64::from(values[rank.min(values.len() - 1)])
}

impl RunSummary {
    pub fn line(&self) -> String {
        format!(
            "{} brokers, {}, {} B, {} clients over {}: {:.0} msg/s delivered, brokers used {:.2} cores (clients {:.2}, host {:.0}% busy) -> {:.0} msg per broker-CPU-second ({:.1}x the 14,600 reference); {:.0} requests/s ({:.0} produce, {:.0} fetch, {:.1} records per produce), {:.1} broker-CPU-µs per request, {:.0} connections; produce p50/p99 {:.1}/{:.1} ms, end-to-end p50/p99 {:.1}/{:.1} ms, max lag {:.2} s, {} failed",
            self.brokers,
            self.shape,
            self.payload_bytes,
            self.client_mode,
            self.listener,
            self.delivered_msgs_per_s,
            self.broker_cpu_cores,
            self.client_cpu_cores,
            self.host_busy * 100.0,
            self.msgs_per_broker_cpu_s,
            self.ratio_to_reference,
            self.requests_per_s,
            self.produce_requests_per_s,
            self.fetch_requests_per_s,
            self.records_per_produce_request,
            self.broker_cpu_us_per_request,
            self.connections,
            self.produce_p50_ms,
            self.produce_p99_ms,
            self.e2e_p50_ms,
            self.e2e_p99_ms,
            self.max_consumer_lag_s,
            self.failed
        )
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "brokers": self.brokers,
            "shape": self.shape,
            "client_mode": self.client_mode,
            "listener": self.listener,
            "offered_rate": self.offered_rate,
            "payload_bytes": self.payload_bytes,
            "producers": self.producers,
            "consumers": self.consumers,
            "measured_seconds": self.measured_seconds,
            "delivered_msgs_per_s": self.delivered_msgs_per_s,
            "broker_cpu_cores": self.broker_cpu_cores,
            "client_cpu_cores": self.client_cpu_cores,
            "msgs_per_broker_cpu_s": self.msgs_per_broker_cpu_s,
            "ratio_to_reference": self.ratio_to_reference,
            "requests_per_s": self.requests_per_s,
            "produce_requests_per_s": self.produce_requests_per_s,
            "fetch_requests_per_s": self.fetch_requests_per_s,
            "records_per_produce_request": self.records_per_produce_request,
            "broker_cpu_us_per_request": self.broker_cpu_us_per_request,
            "connections": self.connections,
            "host_busy": self.host_busy,
            "produce_p50_ms": self.produce_p50_ms,
            "produce_p99_ms": self.produce_p99_ms,
            "e2e_p50_ms": self.e2e_p50_ms,
            "e2e_p99_ms": self.e2e_p99_ms,
            "max_consumer_lag_s": self.max_consumer_lag_s,
            "acked_during_run": self.acked_during_run,
            "failed": self.failed,
            "run_seconds": self.run_seconds,
            "warm_up_seconds": self.warm_up_seconds,
        })
    }
}

pub fn print_table(results: &[RunSummary], tick_ms: u128) {
    eprintln!();
    eprintln!("seed shapes offered their records in ticks of {tick_ms} ms (RIVULET_BENCH_TICK_MS)");
    eprintln!("| shape | payload | clients | listener | delivered msg/s | broker cores | client cores | host busy | msg per broker-CPU-s | x 14.6k | requests/s | records per produce | broker-CPU-µs per request | connections | produce p50/p99 ms | e2e p50/p99 ms | max lag s |");
    eprintln!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        eprintln!(
            "| {} | {} B | {} | {} | {:.0} | {:.2} | {:.2} | {:.0}% | {:.0} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} |",
            r.shape,
            r.payload_bytes,
            r.client_mode,
            r.listener,
            r.delivered_msgs_per_s,
            r.broker_cpu_cores,
            r.client_cpu_cores,
            r.host_busy * 100.0,
            r.msgs_per_broker_cpu_s,
            r.ratio_to_reference,
            r.requests_per_s,
            r.records_per_produce_request,
            r.broker_cpu_us_per_request,
            r.connections,
            r.produce_p50_ms,
            r.produce_p99_ms,
            r.e2e_p50_ms,
            r.e2e_p99_ms,
            r.max_consumer_lag_s
        );
    }
}

/// Writes `target/pipeline/summary.json` (the latest run) and a timestamped copy.
pub fn write_json(results: &[RunSummary], tick_ms: u128) -> std::io::Result<PathBuf> {
    let dir =
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_string()))
            .join("pipeline");
    std::fs::create_dir_all(&dir)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let doc = json!({
        "reference_msgs_per_core": REFERENCE_PER_CORE,
        "pacing_tick_ms": tick_ms,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "runs": results.iter().map(RunSummary::to_json).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(format!("summary-{stamp}.json")), &text)?;
    let latest = dir.join("summary.json");
    std::fs::write(&latest, text)?;
    Ok(latest)
}

//! Prometheus metrics, named after Kafka's well-known JMX metrics the way the common Prometheus
//! JMX exporter rules name them (`kafka_server_brokertopicmetrics_bytes_in_total`, ...).
//!
//! Counters and histograms are updated on the request path; gauges that describe state
//! (partitions, ISR, raft, disk) are refreshed by a collector just before each scrape.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder, GaugeVec,
};

/// Every metric the broker exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub bytes_in: IntCounterVec,
    pub bytes_out: IntCounterVec,
    pub messages_in: IntCounterVec,
    pub requests: IntCounterVec,
    pub request_errors: IntCounterVec,
    pub request_time: HistogramVec,
    pub sendfile_bytes: IntCounter,
    pub produce_purgatory: IntGauge,
    pub fetch_purgatory: IntGauge,
    pub connections: IntGaugeVec,
    pub connections_created: IntCounterVec,
    pub under_replicated: IntGauge,
    pub under_min_isr: IntGauge,
    pub offline_partitions: IntGauge,
    pub isr_shrinks: IntCounter,
    pub isr_expands: IntCounter,
    pub active_controller: IntGauge,
    pub leader_count: IntGauge,
    pub partition_count: IntGauge,
    pub raft_term: IntGauge,
    pub raft_commit_index: IntGauge,
    pub raft_applied_index: IntGauge,
    pub raft_leader: IntGauge,
    pub log_size: IntGaugeVec,
    pub log_end_offset: IntGaugeVec,
    pub log_dir_free: IntGaugeVec,
    pub log_dir_total: IntGaugeVec,
    pub groups: IntGaugeVec,
    pub rebalances: IntCounter,
    pub consumer_lag: IntGaugeVec,
    pub consumer_lag_seconds: GaugeVec,
    pub replica_fetch_lag: IntGauge,
    pub produce_latency: Histogram,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("invalid metric definition {name}: {e}"));
    register(registry, metric)
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("invalid metric definition {name}: {e}"));
    register(registry, metric)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).unwrap_or_else(|e| panic!("invalid metric definition {name}: {e}"));
    register(registry, metric)
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).unwrap_or_else(|e| panic!("invalid metric definition {name}: {e}"));
    register(registry, metric)
}

fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    // Names are constants of this file; a clash is a programming error caught by the unit test.
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        panic!("metric registered twice: {e}");
    }
    metric
}

/// Latency buckets in milliseconds, from sub-millisecond to the 30 s request timeout.
const LATENCY_BUCKETS_MS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let r = &registry;
        let request_time = register(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "kafka_network_requestmetrics_total_time_ms",
                    "Time from receiving a request to writing its response, per API",
                )
                .buckets(LATENCY_BUCKETS_MS.to_vec()),
                &["request"],
            )
            .unwrap_or_else(|e| panic!("invalid histogram: {e}")),
        );
        let produce_latency = register(
            r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "rivulet_produce_ack_latency_ms",
                    "Time from receiving a produce request to acknowledging it (includes replication for acks=all)",
                )
                .buckets(LATENCY_BUCKETS_MS.to_vec()),
            )
            .unwrap_or_else(|e| panic!("invalid histogram: {e}")),
        );
        let consumer_lag_seconds = register(
            r,
            GaugeVec::new(
                Opts::new(
                    "kafka_consumergroup_lag_seconds",
                    "Estimated time lag of a group's committed offset behind the log end, from produce timestamps",
                ),
                &["group", "topic", "partition"],
            )
            .unwrap_or_else(|e| panic!("invalid gauge: {e}")),
        );
        Metrics {
            bytes_in: counter_vec(r, "kafka_server_brokertopicmetrics_bytes_in_total", "Bytes appended from producers, per topic", &["topic"]),
            bytes_out: counter_vec(r, "kafka_server_brokertopicmetrics_bytes_out_total", "Record bytes sent to consumers and followers, per topic", &["topic"]),
            messages_in: counter_vec(r, "kafka_server_brokertopicmetrics_messages_in_total", "Records appended from producers, per topic", &["topic"]),
            requests: counter_vec(r, "kafka_network_requestmetrics_requests_total", "Requests handled, per API", &["request"]),
            request_errors: counter_vec(r, "kafka_network_requestmetrics_errors_total", "Responses carrying an error code, per API and error", &["request", "error"]),
            request_time,
            sendfile_bytes: counter(r, "rivulet_network_sendfile_bytes_total", "Record bytes sent with sendfile(2) (zero-copy fetch path)"),
            produce_purgatory: gauge(r, "kafka_server_delayedoperationpurgatory_produce_size", "Produce requests waiting for replication (acks=all)"),
            fetch_purgatory: gauge(r, "kafka_server_delayedoperationpurgatory_fetch_size", "Fetch requests waiting for data (long poll)"),
            connections: gauge_vec(r, "kafka_server_socketservermetrics_connection_count", "Open client connections, per listener", &["listener"]),
            connections_created: counter_vec(r, "kafka_server_socketservermetrics_connection_creation_total", "Connections accepted, per listener", &["listener"]),
            under_replicated: gauge(r, "kafka_server_replicamanager_underreplicatedpartitions", "Partitions led here whose ISR is smaller than their replica set"),
            under_min_isr: gauge(r, "kafka_server_replicamanager_underminisrpartitioncount", "Partitions led here whose ISR is below min.insync.replicas"),
            offline_partitions: gauge(r, "kafka_controller_kafkacontroller_offlinepartitionscount", "Partitions without a live leader (reported by the active controller)"),
            isr_shrinks: counter(r, "kafka_server_replicamanager_isrshrinks_total", "ISR shrinks of partitions led here"),
            isr_expands: counter(r, "kafka_server_replicamanager_isrexpands_total", "ISR expansions of partitions led here"),
            active_controller: gauge(r, "kafka_controller_kafkacontroller_activecontrollercount", "1 on the broker that is the active controller (Raft leader)"),
            leader_count: gauge(r, "kafka_server_replicamanager_leadercount", "Partitions led by this broker"),
            partition_count: gauge(r, "kafka_server_replicamanager_partitioncount", "Partition replicas hosted by this broker"),
            raft_term: gauge(r, "rivulet_raft_current_term", "Current Raft term of the metadata quorum"),
            raft_commit_index: gauge(r, "rivulet_raft_commit_index", "Raft commit index known to this node"),
            raft_applied_index: gauge(r, "rivulet_raft_applied_index", "Last metadata log index applied to this broker's image"),
            raft_leader: gauge(r, "rivulet_raft_leader_id", "Broker id of the Raft leader (-1 if none known)"),
            log_size: gauge_vec(r, "kafka_log_log_size", "Bytes on disk of a partition replica", &["topic", "partition"]),
            log_end_offset: gauge_vec(r, "kafka_log_log_logendoffset", "Log end offset of a partition replica", &["topic", "partition"]),
            log_dir_free: gauge_vec(r, "rivulet_log_dir_free_bytes", "Free bytes on the file system of a log dir", &["dir"]),
            log_dir_total: gauge_vec(r, "rivulet_log_dir_total_bytes", "Size of the file system of a log dir", &["dir"]),
            groups: gauge_vec(r, "kafka_coordinator_group_groupmetadatamanager_num_groups", "Consumer groups coordinated here, per state", &["state"]),
            rebalances: counter(r, "kafka_coordinator_group_rebalances_total", "Rebalances completed by groups coordinated here"),
            consumer_lag: gauge_vec(r, "kafka_consumergroup_lag", "Log end offset minus the group's committed offset", &["group", "topic", "partition"]),
            consumer_lag_seconds,
            replica_fetch_lag: gauge(r, "kafka_server_replicafetchermanager_maxlag", "Largest lag in records of the partitions this broker follows"),
            produce_latency,
            registry,
        }
    }

    pub fn connection_opened(&self, listener: &str) {
        self.connections.with_label_values(&[listener]).inc();
        self.connections_created.with_label_values(&[listener]).inc();
    }

    pub fn connection_closed(&self, listener: &str) {
        self.connections.with_label_values(&[listener]).dec();
    }

    /// Records a finished request.
    pub fn request_completed(&self, api: ApiKey, elapsed: Duration, error_code: i16, _bytes: usize, zero_copy: u64) {
        let name = api_name(api);
        self.requests.with_label_values(&[name]).inc();
        self.request_time
            .with_label_values(&[name])
            .observe(elapsed.as_secs_f64() * 1000.0);
        if error_code != 0 {
            self.request_errors
                .with_label_values(&[name, &error_code.to_string()])
                .inc();
        }
        if zero_copy > 0 {
            self.sendfile_bytes.inc_by(zero_copy);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        for family in prometheus::gather() {
            // Process metrics (CPU, memory, fds) live in the default registry.
            if let Err(e) = encoder.encode(&[family], &mut out) {
                tracing::warn!(error = %e, "encoding process metrics failed");
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Kafka's request names as used in `request=` labels.
pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::ElectLeaders => "ElectLeaders",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::DescribeProducers => "DescribeProducers",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_names() {
        let m = Metrics::new();
        m.request_completed(ApiKey::Produce, Duration::from_millis(3), 0, 100, 0);
        m.request_completed(ApiKey::Fetch, Duration::from_millis(1), 6, 100, 4096);
        m.bytes_in.with_label_values(&["t"]).inc_by(10);
        let text = m.render();
        assert!(text.contains("kafka_network_requestmetrics_requests_total{request=\"Produce\"} 1"), "{text}");
        assert!(text.contains("kafka_network_requestmetrics_errors_total{error=\"6\",request=\"Fetch\"} 1"), "{text}");
        assert!(text.contains("rivulet_network_sendfile_bytes_total 4096"), "{text}");
        assert!(text.contains("kafka_server_brokertopicmetrics_bytes_in_total{topic=\"t\"} 10"), "{text}");
    }
}

//! Prometheus metrics, named after Kafka's well-known JMX metrics the way the Prometheus JMX
//! exporter's usual Kafka rules name them (lower-cased MBean type and name, `PerSec` meters as
//! `_total` counters: `kafka_server_brokertopicmetrics_bytesin_total`,
//! `kafka_server_replicamanager_underreplicatedpartitions`), and `rivulet_*` where Kafka has no
//! equivalent.
//!
//! Counters and histograms are updated where their events happen; gauges that describe state
//! (partitions, ISR, controller, Raft, disk, groups, lag) are set just before each scrape by
//! [`crate::health::refresh_gauges`]. Every unlabelled family reads 0 from start-up, and the
//! series whose label values are known up front (request names, purgatories, listeners, group
//! states) exist before anything happens, so alerts and dashboards never see "no data" for an
//! event that simply has not occurred yet.

use std::time::Duration;

use kafka_core::ErrorCode;
use prometheus::core::Collector;
use prometheus::{
    CounterVec, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use kafka_core::quota::QuotaKey;

use crate::server::LimitEvent;

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
    pub connections_rejected_per_ip: IntCounterVec,
    pub acceptor_blocked: IntCounterVec,
    pub acceptor_blocked_seconds: CounterVec,
    pub connections_throttled: IntCounterVec,
    pub accept_throttle_seconds: CounterVec,
    pub quota_throttle_seconds: CounterVec,
    pub under_replicated: IntGauge,
    pub under_min_isr: IntGauge,
    pub at_min_isr: IntGauge,
    pub partition_under_replicated: IntGaugeVec,
    pub offline_partitions: IntGauge,
    pub isr_shrinks: IntCounter,
    pub isr_expands: IntCounter,
    pub active_controller: IntGauge,
    pub active_brokers: IntGauge,
    pub fenced_brokers: IntGauge,
    pub global_topics: IntGauge,
    pub global_partitions: IntGauge,
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
    pub log_dir_offline: IntGaugeVec,
    pub offline_log_dirs: IntGauge,
    pub groups: IntGaugeVec,
    pub rebalances: IntCounter,
    pub consumer_lag: IntGaugeVec,
    pub consumer_lag_seconds: GaugeVec,
    pub replica_fetch_lag: IntGauge,
    pub log_corruptions: IntCounter,
    pub produce_latency: Histogram,
}

/// Latency buckets in milliseconds, from sub-millisecond to the 30 s request timeout.
const LATENCY_BUCKETS_MS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    10000.0, 30000.0,
];

/// Kafka's `delayedOperation` tag values of the two purgatories.
const PURGATORIES: [&str; 2] = ["Produce", "Fetch"];

/// Registers metric families in one registry. Definitions are constants of this file, so an
/// invalid or duplicate one is a programming error (caught by the unit tests), not a runtime
/// condition.
struct Families<'a>(&'a Registry);

impl Families<'_> {
    fn add<M: Collector + Clone + 'static>(&self, metric: prometheus::Result<M>) -> M {
        let metric = metric.unwrap_or_else(|e| panic!("invalid metric definition: {e}"));
        if let Err(e) = self.0.register(Box::new(metric.clone())) {
            panic!("metric registered twice: {e}");
        }
        metric
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help))
    }

    fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help))
    }

    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels))
    }

    fn float_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.add(GaugeVec::new(Opts::new(name, help), labels))
    }

    fn float_counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> CounterVec {
        self.add(CounterVec::new(Opts::new(name, help), labels))
    }

    fn histogram(&self, name: &str, help: &str) -> Histogram {
        self.add(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS_MS.to_vec()),
        ))
    }

    fn histogram_vec(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        self.add(HistogramVec::new(
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS_MS.to_vec()),
            labels,
        ))
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let f = Families(&registry);
        let purgatory = f.gauge_vec(
            "kafka_server_delayedoperationpurgatory_purgatorysize",
            "Requests waiting in a purgatory: Produce (acks=all waiting for replication), Fetch (long polls waiting for data)",
            &["delayedOperation"],
        );
        Metrics {
            bytes_in: f.counter_vec(
                "kafka_server_brokertopicmetrics_bytesin_total",
                "Bytes appended from producers, per topic (duplicates of idempotent retries excluded)",
                &["topic"],
            ),
            bytes_out: f.counter_vec(
                "kafka_server_brokertopicmetrics_bytesout_total",
                "Record bytes sent to consumers, per topic (replication traffic excluded)",
                &["topic"],
            ),
            messages_in: f.counter_vec(
                "kafka_server_brokertopicmetrics_messagesin_total",
                "Records appended from producers, per topic",
                &["topic"],
            ),
            requests: f.counter_vec(
                "kafka_network_requestmetrics_requests_total",
                "Requests answered, per API",
                &["request"],
            ),
            request_errors: f.counter_vec(
                "kafka_network_requestmetrics_errors_total",
                "Responses carrying an error code, per API and Kafka error name",
                &["request", "error"],
            ),
            request_time: f.histogram_vec(
                "kafka_network_requestmetrics_totaltimems",
                "Milliseconds from receiving a request to writing its response (long-poll and replication waits included), per API",
                &["request"],
            ),
            sendfile_bytes: f.counter(
                "rivulet_network_sendfile_bytes_total",
                "Record bytes sent with sendfile(2) (zero-copy fetch path)",
            ),
            produce_purgatory: purgatory.with_label_values(&[PURGATORIES[0]]),
            fetch_purgatory: purgatory.with_label_values(&[PURGATORIES[1]]),
            connections: f.gauge_vec(
                "kafka_server_socketservermetrics_connection_count",
                "Open client connections, per listener",
                &["listener"],
            ),
            connections_created: f.counter_vec(
                "kafka_server_socketservermetrics_connection_creation_total",
                "Connections accepted, per listener",
                &["listener"],
            ),
            connections_rejected_per_ip: f.counter_vec(
                "rivulet_network_connections_rejected_per_ip_total",
                "Connections closed as soon as accepted because their address was at max.connections.per.ip, per listener",
                &["listener"],
            ),
            acceptor_blocked: f.counter_vec(
                "rivulet_network_acceptor_blocked_total",
                "Times a listener stopped accepting at max.connections (broker-wide or the listener's), per listener",
                &["listener"],
            ),
            acceptor_blocked_seconds: f.float_counter_vec(
                "rivulet_network_acceptor_blocked_seconds_total",
                "Seconds a listener spent not accepting at max.connections; its rate is Kafka's AcceptorBlockedPercent, per listener",
                &["listener"],
            ),
            quota_throttle_seconds: f.float_counter_vec(
                "rivulet_client_quota_throttle_seconds_total",
                "Seconds clients were throttled (throttle_time_ms and a muted connection) for going over a client quota, per quota",
                &["quota"],
            ),
            connections_throttled: f.counter_vec(
                "rivulet_network_connections_throttled_total",
                "Connections whose accept was delayed by max.connection.creation.rate, per listener",
                &["listener"],
            ),
            accept_throttle_seconds: f.float_counter_vec(
                "rivulet_network_connection_accept_throttle_seconds_total",
                "Seconds accepts were delayed by max.connection.creation.rate (Kafka: connection-accept-throttle-time), per listener",
                &["listener"],
            ),
            under_replicated: f.gauge(
                "kafka_server_replicamanager_underreplicatedpartitions",
                "Partitions led here whose ISR is smaller than their replica set",
            ),
            under_min_isr: f.gauge(
                "kafka_server_replicamanager_underminisrpartitioncount",
                "Partitions led here whose ISR is below min.insync.replicas (acks=all produce fails)",
            ),
            at_min_isr: f.gauge(
                "kafka_server_replicamanager_atminisrpartitioncount",
                "Partitions led here whose ISR is exactly min.insync.replicas (one more loss stops acks=all)",
            ),
            partition_under_replicated: f.gauge_vec(
                "kafka_cluster_partition_underreplicated",
                "1 if this broker leads the partition and its ISR is smaller than its replica set, else 0",
                &["topic", "partition"],
            ),
            offline_partitions: f.gauge(
                "kafka_controller_kafkacontroller_offlinepartitionscount",
                "Partitions without a live leader (reported by the active controller, 0 elsewhere)",
            ),
            isr_shrinks: f.counter(
                "kafka_server_replicamanager_isrshrinks_total",
                "ISR shrinks of partitions led here, proposed by this leader or made by the controller",
            ),
            isr_expands: f.counter(
                "kafka_server_replicamanager_isrexpands_total",
                "ISR expansions of partitions led here, proposed by this leader or made by the controller",
            ),
            active_controller: f.gauge(
                "kafka_controller_kafkacontroller_activecontrollercount",
                "1 on the active controller (the Raft leader holding a quorum lease), 0 elsewhere",
            ),
            active_brokers: f.gauge(
                "kafka_controller_kafkacontroller_activebrokercount",
                "Registered, unfenced brokers (reported by the active controller, 0 elsewhere)",
            ),
            fenced_brokers: f.gauge(
                "kafka_controller_kafkacontroller_fencedbrokercount",
                "Registered brokers fenced for missed heartbeats (reported by the active controller, 0 elsewhere)",
            ),
            global_topics: f.gauge(
                "kafka_controller_kafkacontroller_globaltopiccount",
                "Topics in the cluster (reported by the active controller, 0 elsewhere)",
            ),
            global_partitions: f.gauge(
                "kafka_controller_kafkacontroller_globalpartitioncount",
                "Partitions in the cluster (reported by the active controller, 0 elsewhere)",
            ),
            leader_count: f.gauge("kafka_server_replicamanager_leadercount", "Partitions led by this broker"),
            partition_count: f.gauge(
                "kafka_server_replicamanager_partitioncount",
                "Partition replicas hosted by this broker",
            ),
            raft_term: f.gauge(
                "rivulet_raft_current_term",
                "Current Raft term of the metadata quorum (KRaft: current-epoch)",
            ),
            raft_commit_index: f.gauge(
                "rivulet_raft_commit_index",
                "Raft commit index known to this node (KRaft: high-watermark)",
            ),
            raft_applied_index: f.gauge(
                "rivulet_raft_applied_index",
                "Last metadata log index applied to this broker's image",
            ),
            raft_leader: f.gauge(
                "rivulet_raft_leader_id",
                "Broker id of the Raft leader, the active controller (-1 if none known; KRaft: current-leader)",
            ),
            log_size: f.gauge_vec(
                "kafka_log_log_size",
                "Bytes on disk of a partition replica",
                &["topic", "partition"],
            ),
            log_end_offset: f.gauge_vec(
                "kafka_log_log_logendoffset",
                "Log end offset of a partition replica",
                &["topic", "partition"],
            ),
            log_dir_free: f.gauge_vec(
                "rivulet_log_dir_free_bytes",
                "Bytes available to the broker on the file system of a log dir",
                &["dir"],
            ),
            log_dir_total: f.gauge_vec(
                "rivulet_log_dir_total_bytes",
                "Size of the file system of a log dir",
                &["dir"],
            ),
            log_dir_offline: f.gauge_vec(
                "rivulet_log_dir_offline",
                "1 once a log dir was taken offline by an I/O error, else 0",
                &["dir"],
            ),
            offline_log_dirs: f.gauge(
                "kafka_log_logmanager_offlinelogdirectorycount",
                "Log dirs taken offline by an I/O error",
            ),
            groups: f.gauge_vec(
                "kafka_coordinator_group_groupmetadatamanager_numgroups",
                "Consumer groups coordinated here, per state",
                &["state"],
            ),
            rebalances: f.counter(
                "kafka_coordinator_group_rebalances_total",
                "Rebalances completed by groups coordinated here",
            ),
            consumer_lag: f.gauge_vec(
                "kafka_consumergroup_lag",
                "Latest offset minus the group's committed offset, per partition (exported by the group's coordinator)",
                &["group", "topic", "partition"],
            ),
            consumer_lag_seconds: f.float_gauge_vec(
                "kafka_consumergroup_lag_seconds",
                "Estimated seconds the group's committed offset lags behind the log, interpolated from sampled offsets",
                &["group", "topic", "partition"],
            ),
            replica_fetch_lag: f.gauge(
                "kafka_server_replicafetchermanager_maxlag",
                "Largest lag in records of the partitions this broker follows",
            ),
            log_corruptions: f.counter(
                "rivulet_log_corruptions_total",
                "Corrupt record batches found in local logs by the read-time CRC check (each then refused and repaired from another replica)",
            ),
            produce_latency: f.histogram(
                "rivulet_produce_ack_latency_ms",
                "Milliseconds from receiving an acks=all produce request to acknowledging it (replication included)",
            ),
            registry,
        }
    }

    /// Creates the connection series of a listener, so it reads 0 before the first client.
    pub fn declare_listener(&self, listener: &str) {
        self.connections.with_label_values(&[listener]);
        self.connections_created.with_label_values(&[listener]);
        self.connections_rejected_per_ip
            .with_label_values(&[listener]);
        self.acceptor_blocked.with_label_values(&[listener]);
        self.acceptor_blocked_seconds.with_label_values(&[listener]);
        self.connections_throttled.with_label_values(&[listener]);
        self.accept_throttle_seconds.with_label_values(&[listener]);
    }

    /// Counts a client throttled for `throttle` by the quota `key`.
    pub fn quota_throttled(&self, key: QuotaKey, throttle: Duration) {
        if !throttle.is_zero() {
            self.quota_throttle_seconds
                .with_label_values(&[key.name()])
                .inc_by(throttle.as_secs_f64());
        }
    }

    /// Creates the request counter of an API (named as Kafka names it), so it reads 0 before
    /// its first request.
    pub fn declare_api(&self, name: &str) {
        self.requests.with_label_values(&[name]);
    }

    pub fn connection_opened(&self, listener: &str) {
        self.connections.with_label_values(&[listener]).inc();
        self.connections_created
            .with_label_values(&[listener])
            .inc();
    }

    pub fn connection_closed(&self, listener: &str) {
        self.connections.with_label_values(&[listener]).dec();
    }

    /// Counts a connection limit taking effect.
    pub fn connection_limited(&self, listener: &str, event: LimitEvent) {
        match event {
            LimitEvent::RejectedPerIp => self
                .connections_rejected_per_ip
                .with_label_values(&[listener])
                .inc(),
            LimitEvent::Blocked(d) => {
                self.acceptor_blocked.with_label_values(&[listener]).inc();
                self.acceptor_blocked_seconds
                    .with_label_values(&[listener])
                    .inc_by(d.as_secs_f64());
            }
            LimitEvent::Throttled(d) => {
                self.connections_throttled
                    .with_label_values(&[listener])
                    .inc();
                self.accept_throttle_seconds
                    .with_label_values(&[listener])
                    .inc_by(d.as_secs_f64());
            }
        }
    }

    /// Counts a change of the ISR of a partition led here, from `before` to `after` replicas,
    /// whether this broker proposed it or the controller made it (fencing a broker).
    pub fn isr_changed(&self, before: usize, after: usize) {
        match after.cmp(&before) {
            std::cmp::Ordering::Less => self.isr_shrinks.inc(),
            std::cmp::Ordering::Greater => self.isr_expands.inc(),
            std::cmp::Ordering::Equal => {}
        }
    }

    /// Records a finished request: its count, its latency, its error (a response's first
    /// non-zero error code) and the bytes it sent with sendfile.
    pub fn request_completed(
        &self,
        name: &str,
        elapsed: Duration,
        error_code: ErrorCode,
        zero_copy: u64,
    ) {
        self.requests.with_label_values(&[name]).inc();
        self.request_time
            .with_label_values(&[name])
            .observe(elapsed.as_secs_f64() * 1000.0);
        if error_code != ErrorCode::NONE {
            self.request_errors
                .with_label_values(&[name, &error_code.name()])
                .inc();
        }
        if zero_copy > 0 {
            self.sendfile_bytes.inc_by(zero_copy);
        }
    }

    /// The text exposition format: the broker's families, then the process's (CPU, memory,
    /// file descriptors) from the default registry.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        if let Err(e) = encoder.encode(&prometheus::gather(), &mut out) {
            tracing::warn!(error = %e, "encoding process metrics failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `name_with_labels` in `text` (labels in the encoder's sorted order).
    fn sample(text: &str, name_with_labels: &str) -> Option<f64> {
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name_with_labels)
                .then(|| value.parse().ok())
                .flatten()
        })
    }

    #[test]
    fn requests_errors_and_latency_per_api() {
        let m = Metrics::new();
        m.declare_api("ListGroups");
        m.request_completed("Produce", Duration::from_millis(3), ErrorCode::NONE, 0);
        m.request_completed(
            "Fetch",
            Duration::from_millis(1),
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            4096,
        );
        m.bytes_in.with_label_values(&["t"]).inc_by(10);
        let text = m.render();
        let has = |s: &str| sample(&text, s);
        assert_eq!(
            has("kafka_network_requestmetrics_requests_total{request=\"Produce\"}"),
            Some(1.0)
        );
        assert_eq!(
            has("kafka_network_requestmetrics_requests_total{request=\"ListGroups\"}"),
            Some(0.0)
        );
        assert_eq!(
            has("kafka_network_requestmetrics_errors_total{error=\"NOT_LEADER_OR_FOLLOWER\",request=\"Fetch\"}"),
            Some(1.0)
        );
        assert_eq!(
            has("kafka_network_requestmetrics_totaltimems_count{request=\"Produce\"}"),
            Some(1.0)
        );
        assert_eq!(
            has("kafka_network_requestmetrics_totaltimems_bucket{request=\"Produce\",le=\"5\"}"),
            Some(1.0)
        );
        assert_eq!(
            has("kafka_network_requestmetrics_totaltimems_bucket{request=\"Produce\",le=\"2\"}"),
            Some(0.0)
        );
        assert_eq!(has("rivulet_network_sendfile_bytes_total"), Some(4096.0));
        assert_eq!(
            has("kafka_server_brokertopicmetrics_bytesin_total{topic=\"t\"}"),
            Some(10.0)
        );
        // No error series for a successful response.
        assert!(!text.contains("errors_total{error=\"NONE\""), "{text}");
    }

    #[test]
    fn state_series_exist_before_anything_happens() {
        let m = Metrics::new();
        m.declare_listener("CLIENT");
        m.declare_api("Produce");
        m.declare_api("DescribeProducers");
        let text = m.render();
        for name in [
            "kafka_server_replicamanager_underreplicatedpartitions",
            "kafka_server_replicamanager_underminisrpartitioncount",
            "kafka_server_replicamanager_atminisrpartitioncount",
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "kafka_controller_kafkacontroller_activecontrollercount",
            "kafka_server_replicamanager_isrshrinks_total",
            "kafka_server_replicamanager_isrexpands_total",
            "kafka_server_replicamanager_leadercount",
            "kafka_server_replicamanager_partitioncount",
            "kafka_coordinator_group_rebalances_total",
            "kafka_server_delayedoperationpurgatory_purgatorysize{delayedOperation=\"Produce\"}",
            "kafka_server_delayedoperationpurgatory_purgatorysize{delayedOperation=\"Fetch\"}",
            "kafka_server_socketservermetrics_connection_count{listener=\"CLIENT\"}",
            "kafka_server_socketservermetrics_connection_creation_total{listener=\"CLIENT\"}",
            "rivulet_network_connections_rejected_per_ip_total{listener=\"CLIENT\"}",
            "rivulet_network_acceptor_blocked_seconds_total{listener=\"CLIENT\"}",
            "rivulet_network_connection_accept_throttle_seconds_total{listener=\"CLIENT\"}",
            "kafka_network_requestmetrics_requests_total{request=\"Produce\"}",
            "kafka_network_requestmetrics_requests_total{request=\"DescribeProducers\"}",
        ] {
            assert_eq!(
                sample(&text, name),
                Some(0.0),
                "{name} missing or not 0 in\n{text}"
            );
        }
    }

    #[test]
    fn connection_limits_count_per_listener() {
        let m = Metrics::new();
        m.connection_limited("CLIENT", LimitEvent::RejectedPerIp);
        m.connection_limited("CLIENT", LimitEvent::Blocked(Duration::from_millis(1500)));
        m.connection_limited("CLIENT", LimitEvent::Throttled(Duration::from_millis(250)));
        m.connection_limited("CLIENT", LimitEvent::Throttled(Duration::from_millis(250)));
        let text = m.render();
        let has = |s: &str| sample(&text, s);
        assert_eq!(
            has("rivulet_network_connections_rejected_per_ip_total{listener=\"CLIENT\"}"),
            Some(1.0)
        );
        assert_eq!(
            has("rivulet_network_acceptor_blocked_seconds_total{listener=\"CLIENT\"}"),
            Some(1.5)
        );
        assert_eq!(
            has("rivulet_network_connections_throttled_total{listener=\"CLIENT\"}"),
            Some(2.0)
        );
        assert_eq!(
            has("rivulet_network_connection_accept_throttle_seconds_total{listener=\"CLIENT\"}"),
            Some(0.5)
        );
    }

    #[test]
    fn isr_changes_count_by_direction() {
        let m = Metrics::new();
        m.isr_changed(3, 2);
        m.isr_changed(2, 1);
        m.isr_changed(1, 3);
        m.isr_changed(3, 3);
        assert_eq!((m.isr_shrinks.get(), m.isr_expands.get()), (2, 1));
    }

    #[test]
    fn purgatory_gauges_are_the_labelled_series() {
        let m = Metrics::new();
        m.produce_purgatory.inc();
        m.fetch_purgatory.inc();
        m.fetch_purgatory.inc();
        let text = m.render();
        assert_eq!(
            sample(&text, "kafka_server_delayedoperationpurgatory_purgatorysize{delayedOperation=\"Produce\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "kafka_server_delayedoperationpurgatory_purgatorysize{delayedOperation=\"Fetch\"}"
            ),
            Some(2.0)
        );
    }

    #[test]
    fn process_metrics_are_rendered() {
        let text = Metrics::new().render();
        assert!(
            sample(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0.0),
            "{text}"
        );
    }
}

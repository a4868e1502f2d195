//! Observability end to end, against real broker processes and real clients: the metrics a
//! running cluster exports move the way Kafka's do (bytes in grows during a produce run,
//! consumer lag in records and in seconds rises while a group's consumer stops and falls once
//! it resumes, a stopped follower makes its partition under-replicated until it catches up
//! again), exactly one broker is the active controller, the probes answer, `--log-format json`
//! writes one JSON object per line, and the monitoring manifests in `k8s/monitoring/` parse
//! and reference only metrics that a real scrape contains.
//!
//! ServiceMonitor and PrometheusRule are Prometheus Operator custom resources that the plain
//! Kubernetes schemas do not know: they are validated here by parsing them, checking their
//! structure and checking every metric name their expressions use against live scrapes.

// The helpers below run only inside these tests: a panic naming what is missing is the report.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::Value;
use support::workload::Workload;
use support::{kafka, unique_topic, wait_until, Cluster, ClusterOptions};

/// Series that Prometheus itself adds to every target; rules may use them although no broker
/// exports them.
const PROMETHEUS_SYNTHETIC: &[&str] = &["up"];

/// One broker cluster at a time: the machine running the tests may have few cores.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---- Prometheus text format -------------------------------------------------------------

/// One sample of a scrape.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed `/metrics` answer.
#[derive(Debug, Default)]
struct Scrape {
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("unparsable sample line {l:?}")))
            .collect();
        Scrape { samples }
    }

    /// The value of the sample of `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    fn names(&self) -> BTreeSet<String> {
        self.samples.iter().map(|s| s.name.clone()).collect()
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.trim().rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Some(Sample {
            name: series.to_string(),
            labels: BTreeMap::new(),
            value,
        });
    };
    let body = rest.strip_suffix('}')?;
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn scrape(cluster: &Cluster, i: usize) -> Scrape {
    match cluster.http_get(i, "/metrics") {
        Some((200, body)) => Scrape::parse(&body),
        other => panic!("GET /metrics on broker {i}: {other:?}"),
    }
}

/// The sum of one series over `brokers`.
fn sum(cluster: &Cluster, brokers: &[usize], name: &str, labels: &[(&str, &str)]) -> f64 {
    brokers
        .iter()
        .filter_map(|i| scrape(cluster, *i).get(name, labels))
        .sum()
}

/// The broker reporting itself as the active controller, if exactly one of `brokers` does and
/// all of them name it as the Raft leader.
fn sole_active_controller(cluster: &Cluster, brokers: &[usize]) -> Option<usize> {
    let scrapes: Vec<(usize, Scrape)> = brokers.iter().map(|i| (*i, scrape(cluster, *i))).collect();
    let active: Vec<usize> = scrapes
        .iter()
        .filter(|(_, s)| {
            s.get(
                "kafka_controller_kafkacontroller_activecontrollercount",
                &[],
            ) == Some(1.0)
        })
        .map(|(i, _)| *i)
        .collect();
    let [controller] = active[..] else {
        return None;
    };
    let agreed = scrapes
        .iter()
        .all(|(_, s)| s.get("rivulet_raft_leader_id", &[]) == Some(controller as f64));
    agreed.then_some(controller)
}

// ---- metric names used by PromQL expressions -------------------------------------------

/// Metric names an expression selects: identifiers that are not functions, keywords, label
/// names of grouping clauses, label matchers, strings, numbers, durations or Grafana variables.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut text = String::with_capacity(expr.len());
    // Strings and Grafana variables first ("$namespace", "${datasource}", $__rate_interval).
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
                text.push(' ');
            }
            '$' => {
                if chars.peek() == Some(&'{') {
                    for d in chars.by_ref() {
                        if d == '}' {
                            break;
                        }
                    }
                } else {
                    while chars
                        .peek()
                        .is_some_and(|d| d.is_alphanumeric() || *d == '_')
                    {
                        chars.next();
                    }
                }
                text.push(' ');
            }
            c => text.push(c),
        }
    }
    // Label matchers and range/subquery selectors.
    let text = strip_blocks(&strip_blocks(&text, '{', '}'), '[', ']');
    // Grouping clauses name labels, not metrics.
    let mut cleaned = String::new();
    let mut rest = text.as_str();
    while let Some((before, word, after)) = next_word(rest) {
        cleaned.push_str(before);
        let after_trim = after.trim_start();
        if [
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
        ]
        .contains(&word)
            && after_trim.starts_with('(')
        {
            let close = after_trim
                .find(')')
                .map(|i| i + 1)
                .unwrap_or(after_trim.len());
            cleaned.push(' ');
            rest = &after_trim[close..];
        } else {
            cleaned.push_str(word);
            rest = after;
        }
    }
    cleaned.push_str(rest);

    let keywords = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
        "Inf",
        "NaN",
    ];
    let mut names = BTreeSet::new();
    let mut rest = cleaned.as_str();
    while let Some((before, word, after)) = next_word(rest) {
        let is_number_part = before.ends_with(|c: char| c.is_ascii_digit() || c == '.');
        let is_call = after.trim_start().starts_with('(');
        if !is_number_part && !is_call && !keywords.contains(&word) {
            names.insert(word.to_string());
        }
        rest = after;
    }
    names
}

/// The next identifier-like word of `text`: (text before it, the word, text after it).
/// Numbers (and durations such as `5m`) are skipped whole.
fn next_word(text: &str) -> Option<(&str, &str, &str)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_ascii_digit() {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
            {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
            {
                i += 1;
            }
            return Some((&text[..start], &text[start..i], &text[i..]));
        }
        i += 1;
    }
    None
}

/// `text` with every `open`..`close` block (non-nested) replaced by a space.
fn strip_blocks(text: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0;
    for c in text.chars() {
        if c == open {
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
            if depth == 0 {
                out.push(' ');
            }
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

// ---- the monitoring manifests -------------------------------------------------------------

fn monitoring_dir() -> PathBuf {
    repo().join("k8s").join("monitoring")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse_yaml(path: &Path) -> Value {
    let docs: Vec<Value> = serde_saphyr::from_multiple(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    let mut docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    assert_eq!(docs.len(), 1, "{} should hold one document", path.display());
    docs.remove(0)
}

fn str_at<'a>(v: &'a Value, pointer: &str, origin: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{origin}: no string at {pointer}"))
}

/// The monitoring objects, as kustomize would render them from `k8s/monitoring`.
struct Monitoring {
    kustomization: Value,
    service: Value,
    service_monitor: Value,
    rule: Value,
    dashboards: Vec<(String, Value)>,
}

fn load_monitoring() -> Monitoring {
    let dir = monitoring_dir();
    let kustomization = parse_yaml(&dir.join("kustomization.yaml"));
    let mut by_kind: BTreeMap<String, Value> = BTreeMap::new();
    let resources = kustomization["resources"]
        .as_array()
        .expect("kustomization resources");
    for r in resources {
        let file = r.as_str().expect("resource path");
        let doc = parse_yaml(&dir.join(file));
        let kind = str_at(&doc, "/kind", file).to_string();
        assert!(
            by_kind.insert(kind.clone(), doc).is_none(),
            "two {kind} objects"
        );
    }
    let mut dashboards = Vec::new();
    for generator in kustomization["configMapGenerator"]
        .as_array()
        .expect("configMapGenerator")
    {
        for f in generator["files"].as_array().expect("generator files") {
            let file = f.as_str().expect("file name");
            let text = read(&dir.join(file));
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{file} is not valid JSON: {e}"));
            dashboards.push((file.to_string(), json));
        }
    }
    let mut take = |kind: &str| {
        by_kind
            .remove(kind)
            .unwrap_or_else(|| panic!("k8s/monitoring has no {kind}"))
    };
    Monitoring {
        service: take("Service"),
        service_monitor: take("ServiceMonitor"),
        rule: take("PrometheusRule"),
        kustomization,
        dashboards,
    }
}

/// The PromQL expressions of the alert rules, named by alert.
fn rule_expressions(rule: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for group in rule
        .pointer("/spec/groups")
        .and_then(Value::as_array)
        .expect("spec.groups")
    {
        for r in group["rules"].as_array().expect("rules") {
            let name = r["alert"]
                .as_str()
                .or_else(|| r["record"].as_str())
                .expect("alert or record name");
            out.push((
                name.to_string(),
                r["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    out
}

/// The PromQL expressions of a dashboard: panel targets and query variables (`label_values`
/// without its label argument), named by where they are.
fn dashboard_expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(p) = panels.pop() {
        if let Some(inner) = p["panels"].as_array() {
            panels.extend(inner);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?");
            out.push((
                format!("panel {title:?}"),
                t["expr"].as_str().expect("target expr").to_string(),
            ));
        }
    }
    for v in dashboard
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .expect("templating")
    {
        if v["type"] != "query" {
            continue;
        }
        let query = v["query"]["query"]
            .as_str()
            .or_else(|| v["query"].as_str())
            .expect("variable query");
        let expr = match query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
        {
            Some(args) => args.rsplit_once(',').map(|(e, _)| e).unwrap_or(args),
            None => query,
        };
        out.push((format!("variable {}", v["name"]), expr.to_string()));
    }
    out
}

/// Every (place, metric) the monitoring manifests reference.
fn referenced_metrics(m: &Monitoring) -> Vec<(String, String)> {
    let mut exprs = rule_expressions(&m.rule);
    for (file, d) in &m.dashboards {
        exprs.extend(
            dashboard_expressions(d)
                .into_iter()
                .map(|(w, e)| (format!("{file} {w}"), e)),
        );
    }
    exprs
        .into_iter()
        .flat_map(|(place, expr)| {
            metric_names(&expr)
                .into_iter()
                .map(move |n| (place.clone(), n))
        })
        .collect()
}

/// Referenced metrics missing from `exported`.
fn missing_metrics(references: &[(String, String)], exported: &BTreeSet<String>) -> Vec<String> {
    references
        .iter()
        .filter(|(_, n)| !exported.contains(n) && !PROMETHEUS_SYNTHETIC.contains(&n.as_str()))
        .map(|(place, n)| format!("{n} (in {place})"))
        .collect()
}

// ---- a consumer that can be stopped and resumed ---------------------------------------------

/// A group member consuming `topic` and committing what it read, until paused.
struct GroupReader {
    paused: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    consumed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupReader {
    fn start(bootstrap: &str, group: &str, topic: &str) -> GroupReader {
        let consumer: BaseConsumer = kafka::config(
            bootstrap,
            &[
                ("group.id", group),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("fetch.wait.max.ms", "100"),
                ("session.timeout.ms", "30000"),
                ("heartbeat.interval.ms", "1000"),
            ],
        )
        .create()
        .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let paused = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let consumed = Arc::new(AtomicU64::new(0));
        let (p, s, n) = (paused.clone(), stop.clone(), consumed.clone());
        let thread = std::thread::spawn(move || {
            let mut uncommitted = false;
            let mut last_commit = Instant::now();
            while !s.load(Ordering::SeqCst) {
                if p.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                    n.fetch_add(1, Ordering::SeqCst);
                    uncommitted = true;
                }
                if uncommitted && last_commit.elapsed() > Duration::from_millis(200) {
                    if consumer.commit_consumer_state(CommitMode::Async).is_ok() {
                        uncommitted = false;
                    }
                    last_commit = Instant::now();
                }
            }
            consumer.unsubscribe();
        });
        GroupReader {
            paused,
            stop,
            consumed,
            thread: Some(thread),
        }
    }

    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    fn consumed(&self) -> u64 {
        self.consumed.load(Ordering::SeqCst)
    }
}

impl Drop for GroupReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// (lag in records, lag in seconds) of `group` on partition 0 of `topic`, from whichever broker
/// coordinates the group.
fn group_lag(cluster: &Cluster, group: &str, topic: &str) -> Option<(f64, f64)> {
    let labels = [("group", group), ("topic", topic), ("partition", "0")];
    (0..cluster.len()).find_map(|i| {
        let s = scrape(cluster, i);
        Some((
            s.get("kafka_consumergroup_lag", &labels)?,
            s.get("kafka_consumergroup_lag_seconds", &labels)?,
        ))
    })
}

/// Polls `probe` until `accept` holds for its value; returns the accepted value.
fn wait_for<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
    accept: impl Fn(&T) -> bool,
) -> T {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut last = None;
    loop {
        if let Some(v) = probe() {
            if accept(&v) {
                eprintln!("{what}: {v:?} after {:?}", started.elapsed());
                return v;
            }
            last = Some(v);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {timeout:?}; last value {last:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

// ---- tests ------------------------------------------------------------------------------------

/// Probes, the active controller, throughput and request metrics, consumer lag that rises and
/// falls with its consumer, and the monitoring manifests checked against the live scrapes.
#[test]
fn metrics_follow_a_produce_consume_run() {
    let _serial = serial();
    let cluster = Cluster::start(ClusterOptions::new(3));
    let all = [0, 1, 2];
    let bootstrap = cluster.bootstrap();
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    for i in all {
        assert_eq!(
            cluster.http_get(i, "/livez"),
            Some((200, "ok\n".to_string())),
            "broker {i} /livez"
        );
        assert_eq!(
            cluster.http_get(i, "/readyz").map(|r| r.0),
            Some(200),
            "broker {i} /readyz"
        );
        assert_eq!(
            cluster.http_get(i, "/no-such-path").map(|r| r.0),
            Some(404),
            "broker {i} unknown path"
        );
    }
    assert!(
        wait_until(Duration::from_secs(30), || sole_active_controller(
            &cluster, &all
        )
        .is_some()),
        "not exactly one active controller agreed on by every broker"
    );
    // State gauges exist, at 0, before anything has happened.
    for i in all {
        let s = scrape(&cluster, i);
        for name in [
            "kafka_server_replicamanager_underreplicatedpartitions",
            "kafka_server_replicamanager_underminisrpartitioncount",
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "kafka_server_replicamanager_isrshrinks_total",
            "kafka_coordinator_group_rebalances_total",
        ] {
            assert_eq!(s.get(name, &[]), Some(0.0), "broker {i}: {name}");
        }
        assert!(
            s.get("rivulet_raft_current_term", &[])
                .is_some_and(|t| t >= 1.0),
            "broker {i}: raft term"
        );
        assert!(
            s.get("rivulet_log_dir_free_bytes", &[])
                .is_some_and(|b| b > 0.0),
            "broker {i}: free space"
        );
        assert_eq!(
            s.get(
                "kafka_server_socketservermetrics_connection_count",
                &[("listener", "CLIENT")]
            )
            .map(|v| v >= 0.0),
            Some(true)
        );
    }

    let topic = unique_topic("observed");
    rt.block_on(kafka::create_topic(
        &bootstrap,
        &topic,
        1,
        3,
        &[("min.insync.replicas", "2")],
    ));
    let leader = kafka::leaders(&bootstrap, &topic)[&0] as usize;
    let t = [("topic", topic.as_str())];
    let tp = [("topic", topic.as_str()), ("partition", "0")];

    // Bytes and messages in grow on the leader while a producer writes; followers replicate.
    let workload = Workload::start(&bootstrap, &topic, 1, 100, &[]);
    let bytes_in =
        |c: &Cluster| scrape(c, leader).get("kafka_server_brokertopicmetrics_bytesin_total", &t);
    let first = wait_for(
        "bytes in on the leader",
        Duration::from_secs(30),
        || bytes_in(&cluster),
        |b| *b > 0.0,
    );
    wait_for(
        "bytes in growing",
        Duration::from_secs(30),
        || bytes_in(&cluster),
        |b| *b > first,
    );
    let s = scrape(&cluster, leader);
    assert!(s
        .get("kafka_server_brokertopicmetrics_messagesin_total", &t)
        .is_some_and(|n| n > 0.0));
    assert!(s
        .get(
            "kafka_network_requestmetrics_requests_total",
            &[("request", "Produce")]
        )
        .is_some_and(|n| n > 0.0));
    assert!(s
        .get(
            "kafka_network_requestmetrics_totaltimems_count",
            &[("request", "Produce")]
        )
        .is_some_and(|n| n > 0.0));
    assert!(
        s.get("rivulet_produce_ack_latency_ms_count", &[])
            .is_some_and(|n| n > 0.0),
        "acks=all latency"
    );
    assert!(s
        .get("kafka_server_replicamanager_leadercount", &[])
        .is_some_and(|n| n >= 1.0));
    assert!(s
        .get(
            "kafka_server_socketservermetrics_connection_count",
            &[("listener", "CLIENT")]
        )
        .is_some_and(|n| n >= 1.0));
    for i in all {
        wait_for(
            &format!("log of {topic}-0 on broker {i}"),
            Duration::from_secs(30),
            || scrape(&cluster, i).get("kafka_log_log_size", &tp),
            |b| *b > 0.0,
        );
    }

    // A group member reads and commits: the coordinator reports it (almost) caught up.
    let group = unique_topic("observer");
    let reader = GroupReader::start(&bootstrap, &group, &topic);
    let caught_up = |l: &(f64, f64)| l.0 < 100.0 && l.1 < 3.0;
    wait_for(
        "group lag exported and small",
        Duration::from_secs(60),
        || group_lag(&cluster, &group, &topic),
        caught_up,
    );
    assert!(reader.consumed() > 0);
    assert!(scrape(&cluster, leader)
        .get("kafka_server_brokertopicmetrics_bytesout_total", &t)
        .is_some_and(|b| b > 0.0));
    assert!(
        sum(
            &cluster,
            &all,
            "kafka_coordinator_group_groupmetadatamanager_numgroups",
            &[("state", "Stable")]
        ) >= 1.0
    );
    assert!(
        sum(
            &cluster,
            &all,
            "kafka_coordinator_group_rebalances_total",
            &[]
        ) >= 1.0
    );

    // The member stops consuming while the producer goes on: lag rises, in records and seconds.
    reader.pause();
    let (records, seconds) = wait_for(
        "lag rising while the consumer is paused",
        Duration::from_secs(60),
        || group_lag(&cluster, &group, &topic),
        |l| l.0 >= 300.0 && l.1 >= 4.0,
    );
    wait_for(
        "lag still rising",
        Duration::from_secs(30),
        || group_lag(&cluster, &group, &topic),
        |l| l.0 > records && l.1 >= seconds + 2.0,
    );

    // It resumes: lag falls back to about zero.
    reader.resume();
    wait_for(
        "lag falling after the consumer resumed",
        Duration::from_secs(60),
        || group_lag(&cluster, &group, &topic),
        caught_up,
    );

    // A request that fails is counted with its API and Kafka error name.
    let errors = [
        ("request", "DeleteTopics"),
        ("error", "UNKNOWN_TOPIC_OR_PARTITION"),
    ];
    let errors_before = sum(
        &cluster,
        &all,
        "kafka_network_requestmetrics_errors_total",
        &errors,
    );
    let missing = unique_topic("never-created");
    let results = rt
        .block_on(kafka::admin(&bootstrap).delete_topics(&[missing.as_str()], &AdminOptions::new()))
        .expect("DeleteTopics request");
    assert!(
        results.iter().all(|r| r.is_err()),
        "deleting a missing topic succeeded: {results:?}"
    );
    wait_for(
        "DeleteTopics error counted",
        Duration::from_secs(10),
        || {
            Some(sum(
                &cluster,
                &all,
                "kafka_network_requestmetrics_errors_total",
                &errors,
            ))
        },
        |n| *n > errors_before,
    );

    // Every metric the dashboard and the alert rules use is in these scrapes.
    let exported: BTreeSet<String> = all
        .iter()
        .flat_map(|i| scrape(&cluster, *i).names())
        .collect();
    let monitoring = load_monitoring();
    let references = referenced_metrics(&monitoring);
    assert!(
        references.len() > 40,
        "too few metric references found: {references:?}"
    );
    let missing = missing_metrics(&references, &exported);
    assert!(
        missing.is_empty(),
        "monitoring manifests use metrics no broker exports: {missing:#?}"
    );
    // The check has teeth: a misspelt name is caught.
    let typo = vec![(
        "a test".to_string(),
        "kafka_server_replicamanager_underreplicatedpartition".to_string(),
    )];
    assert_eq!(missing_metrics(&typo, &exported).len(), 1);

    assert!(
        sole_active_controller(&cluster, &all).is_some(),
        "active controller count changed"
    );
    let acks = workload.stop();
    assert!(
        acks.total() > 0 && acks.failures == 0,
        "producer failures: {:?}",
        acks.first_error
    );
    drop(reader);
}

/// A paused follower makes its partition under-replicated (and at min ISR) on the leader and
/// fenced at the controller; once resumed it rejoins the ISR and every gauge returns to 0.
#[test]
fn under_replicated_follows_a_stopped_follower() {
    let _serial = serial();
    let cluster = Cluster::start(ClusterOptions::new(3));
    let all = [0, 1, 2];
    let bootstrap = cluster.bootstrap();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let topic = unique_topic("replicated");
    // No client here has a group.id, so this topic stays the only one in the cluster and the
    // cluster-wide sums below count it alone.
    rt.block_on(async {
        let created = kafka::admin(&bootstrap)
            .create_topics(
                &[NewTopic::new(&topic, 1, TopicReplication::Fixed(3))
                    .set("min.insync.replicas", "2")],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .expect("CreateTopics request");
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    });
    let producer: FutureProducer =
        kafka::producer(&bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    let leader = wait_for(
        "a leader for the topic",
        Duration::from_secs(30),
        || {
            let md = producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .ok()?;
            let leader = md.topics().first()?.partitions().first()?.leader();
            (leader >= 0).then_some(leader as usize)
        },
        |_| true,
    );
    const RECORDS: usize = 50;
    rt.block_on(async {
        for i in 0..RECORDS {
            let value = format!("record-{i}");
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic)
                        .partition(0)
                        .payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .expect("acks=all produce");
        }
    });
    let tp = [("topic", topic.as_str()), ("partition", "0")];
    for i in all {
        wait_for(
            &format!("broker {i} replicated every record"),
            Duration::from_secs(30),
            || scrape(&cluster, i).get("kafka_log_log_logendoffset", &tp),
            |o| *o == RECORDS as f64,
        );
    }
    let controller = wait_for(
        "one active controller",
        Duration::from_secs(30),
        || sole_active_controller(&cluster, &all),
        |_| true,
    );
    let c = scrape(&cluster, controller);
    assert_eq!(
        c.get("kafka_controller_kafkacontroller_globaltopiccount", &[]),
        Some(1.0)
    );
    assert_eq!(
        c.get("kafka_controller_kafkacontroller_globalpartitioncount", &[]),
        Some(1.0)
    );
    assert_eq!(
        c.get("kafka_controller_kafkacontroller_activebrokercount", &[]),
        Some(3.0)
    );
    assert_eq!(
        c.get("kafka_controller_kafkacontroller_fencedbrokercount", &[]),
        Some(0.0)
    );
    assert_eq!(
        sum(
            &cluster,
            &all,
            "kafka_server_replicamanager_underreplicatedpartitions",
            &[]
        ),
        0.0
    );
    assert_eq!(
        sum(
            &cluster,
            &all,
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            &[]
        ),
        0.0
    );
    let shrinks_before = scrape(&cluster, leader)
        .get("kafka_server_replicamanager_isrshrinks_total", &[])
        .expect("isr shrinks");
    let expands_before = scrape(&cluster, leader)
        .get("kafka_server_replicamanager_isrexpands_total", &[])
        .expect("isr expands");

    // Stop a follower that is not the active controller, so the quorum keeps its leader.
    let follower = all
        .into_iter()
        .find(|i| *i != leader && *i != controller)
        .expect("a follower");
    let live: Vec<usize> = all.into_iter().filter(|i| *i != follower).collect();
    cluster.pause(follower);
    let under_replicated = wait_for(
        "under-replicated partition reported by the leader",
        Duration::from_secs(60),
        || {
            let s = scrape(&cluster, leader);
            Some((
                s.get("kafka_server_replicamanager_underreplicatedpartitions", &[])?,
                s.get("kafka_cluster_partition_underreplicated", &tp)?,
                s.get("kafka_server_replicamanager_atminisrpartitioncount", &[])?,
                s.get("kafka_server_replicamanager_underminisrpartitioncount", &[])?,
            ))
        },
        |v| v.0 == 1.0 && v.1 == 1.0,
    );
    assert_eq!(
        under_replicated,
        (1.0, 1.0, 1.0, 0.0),
        "(under-replicated, partition, at min ISR, under min ISR)"
    );
    assert_eq!(
        sum(
            &cluster,
            &live,
            "kafka_server_replicamanager_underreplicatedpartitions",
            &[]
        ),
        1.0
    );
    assert!(
        scrape(&cluster, leader).get("kafka_server_replicamanager_isrshrinks_total", &[])
            > Some(shrinks_before)
    );
    wait_for(
        "the paused broker fenced by the controller",
        Duration::from_secs(30),
        || {
            let s = scrape(&cluster, controller);
            Some((
                s.get("kafka_controller_kafkacontroller_fencedbrokercount", &[])?,
                s.get("kafka_controller_kafkacontroller_activebrokercount", &[])?,
            ))
        },
        |v| *v == (1.0, 2.0),
    );
    assert_eq!(
        sum(
            &cluster,
            &live,
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            &[]
        ),
        0.0
    );
    assert_eq!(
        sum(
            &cluster,
            &live,
            "kafka_controller_kafkacontroller_activecontrollercount",
            &[]
        ),
        1.0
    );

    // Resumed, it catches up and rejoins the ISR.
    cluster.resume(follower);
    wait_for(
        "no under-replicated partition after the follower resumed",
        Duration::from_secs(60),
        || {
            Some(sum(
                &cluster,
                &all,
                "kafka_server_replicamanager_underreplicatedpartitions",
                &[],
            ))
        },
        |n| *n == 0.0,
    );
    let s = scrape(&cluster, leader);
    assert_eq!(
        s.get("kafka_cluster_partition_underreplicated", &tp),
        Some(0.0)
    );
    assert!(s.get("kafka_server_replicamanager_isrexpands_total", &[]) > Some(expands_before));
    wait_for(
        "the resumed broker unfenced",
        Duration::from_secs(30),
        || {
            sole_active_controller(&cluster, &all).and_then(|c| {
                scrape(&cluster, c).get("kafka_controller_kafkacontroller_fencedbrokercount", &[])
            })
        },
        |n| *n == 0.0,
    );
}

/// A broker process that is killed when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn http_status(address: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// `--log-format json`: everything the broker logs from start-up to a SIGTERM shutdown is one
/// JSON object per line, with the event's fields as keys.
#[test]
fn json_log_format_writes_one_object_per_line() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let (client, controller, metrics) = (free_port(), free_port(), free_port());
    let stdout = dir.path().join("stdout.log");
    let stderr = dir.path().join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_rivulet"))
        .args([
            "--node-id",
            "0",
            "--log-format",
            "json",
            "--log-level",
            "info",
        ])
        .arg("--listeners")
        .arg(format!("PLAINTEXT://{client},CONTROLLER://{controller}"))
        .arg("--controller-quorum-voters")
        .arg(format!("0@{controller}"))
        .arg("--log-dirs")
        .arg(dir.path().join("data"))
        .arg("--metrics-listener")
        .arg(metrics.to_string())
        .env_remove("RUST_LOG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn rivulet");
    let mut process = Process(child);
    assert!(
        wait_until(Duration::from_secs(60), || http_status(metrics, "/readyz")
            == Some(200)),
        "broker not ready:\n{}",
        read(&stdout)
    );
    // A bad frame makes the broker log a warning with fields.
    let mut raw = TcpStream::connect(client).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    raw.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0])
        .expect("write");
    let mut sink = Vec::new();
    let _ = raw.read_to_end(&mut sink);
    // SAFETY: signals our own child process.
    unsafe {
        libc::kill(process.0.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = process.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "broker did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "broker exited with {status}");

    let mut events = Vec::new();
    for file in [&stdout, &stderr] {
        for (n, line) in read(file).lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let event: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{} line {}: not JSON ({e}): {line}", file.display(), n + 1)
            });
            let object = event
                .as_object()
                .unwrap_or_else(|| panic!("not a JSON object: {line}"));
            for key in ["timestamp", "level", "target", "message"] {
                assert!(
                    object.get(key).is_some_and(Value::is_string),
                    "no string {key:?} in {line}"
                );
            }
            assert!(
                ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                    .contains(&str_at(&event, "/level", line)),
                "{line}"
            );
            events.push(event);
        }
    }
    assert!(events.len() >= 5, "only {} log lines", events.len());
    let with_fields = events
        .iter()
        .filter(|e| {
            e.as_object().is_some_and(|o| {
                o.keys()
                    .any(|k| !["timestamp", "level", "target", "message"].contains(&k.as_str()))
            })
        })
        .count();
    assert!(with_fields > 0, "no event carries key/value fields");
    assert!(
        events
            .iter()
            .any(|e| e.get("peer").is_some_and(Value::is_string)),
        "the connection that sent a bad frame left no event with its peer as a field"
    );
}

/// The monitoring manifests parse, agree with each other and with the StatefulSet, and carry
/// the alerts operators rely on. (Their metric names are checked against live scrapes in
/// `metrics_follow_a_produce_consume_run`.)
#[test]
fn monitoring_manifests_hold_together() {
    let m = load_monitoring();
    assert_eq!(m.kustomization["kind"], "Kustomization");
    let statefulset = parse_yaml(&repo().join("k8s/base/statefulset.yaml"));
    let pod_labels = statefulset
        .pointer("/spec/template/metadata/labels")
        .expect("pod labels");
    let container = statefulset
        .pointer("/spec/template/spec/containers/0")
        .expect("broker container");
    let metrics_port = container["ports"]
        .as_array()
        .expect("container ports")
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a container port named metrics");

    // The Service selects the broker pods and exposes their metrics port by name.
    let service = &m.service;
    assert_eq!(service["apiVersion"], "v1");
    for (k, v) in service["spec"]["selector"]
        .as_object()
        .expect("Service selector")
    {
        assert_eq!(
            &pod_labels[k], v,
            "Service selector {k} does not match the broker pods"
        );
    }
    let port = &service["spec"]["ports"][0];
    assert_eq!(port["targetPort"], "metrics");
    assert_eq!(port["port"], metrics_port["containerPort"]);
    assert_eq!(
        service["spec"]["publishNotReadyAddresses"], true,
        "not-ready brokers must be scraped too"
    );

    // The ServiceMonitor selects that Service (and only a Service with its labels).
    let sm = &m.service_monitor;
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    let service_labels = service["metadata"]["labels"]
        .as_object()
        .expect("Service labels");
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("ServiceMonitor matchLabels")
    {
        assert_eq!(
            service_labels.get(k),
            Some(v),
            "ServiceMonitor selects {k}={v}, the Service lacks it"
        );
    }
    assert!(
        sm["spec"]["selector"]["matchLabels"]
            .get("app.kubernetes.io/component")
            .is_some(),
        "must not also select the Kafka Services"
    );
    let endpoint = &sm["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], port["name"]);
    assert_eq!(endpoint["path"], "/metrics");

    // The alert rules: well-formed, and the ones the runbook names are there.
    let rule = &m.rule;
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let mut alerts: BTreeMap<String, Value> = BTreeMap::new();
    for group in rule
        .pointer("/spec/groups")
        .and_then(Value::as_array)
        .expect("groups")
    {
        assert!(group["name"].is_string());
        for r in group["rules"].as_array().expect("rules") {
            let name = str_at(r, "/alert", "rule").to_string();
            assert!(str_at(r, "/expr", &name).len() > 3);
            assert!(
                ["warning", "critical"].contains(&str_at(r, "/labels/severity", &name)),
                "{name}: severity"
            );
            assert!(!str_at(r, "/annotations/summary", &name).is_empty());
            assert!(!str_at(r, "/annotations/description", &name).is_empty());
            if let Some(d) = r.get("for") {
                let d = d.as_str().expect("for is a duration");
                assert!(
                    d.len() > 1
                        && d[..d.len() - 1].parse::<u32>().is_ok()
                        && "smhd".contains(&d[d.len() - 1..]),
                    "{name}: for {d}"
                );
            }
            assert!(
                alerts.insert(name.clone(), r.clone()).is_none(),
                "alert {name} twice"
            );
        }
    }
    let expect = |alert: &str, metric: &str, for_: Option<&str>| {
        let r = alerts
            .get(alert)
            .unwrap_or_else(|| panic!("no alert {alert}"));
        assert!(
            metric_names(r["expr"].as_str().unwrap_or_default()).contains(metric),
            "{alert} does not use {metric}"
        );
        assert_eq!(r.get("for").and_then(Value::as_str), for_, "{alert}: for");
    };
    expect(
        "RivuletUnderReplicatedPartitions",
        "kafka_server_replicamanager_underreplicatedpartitions",
        Some("5m"),
    );
    expect(
        "RivuletOfflinePartitions",
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        None,
    );
    expect(
        "RivuletActiveControllerCount",
        "kafka_controller_kafkacontroller_activecontrollercount",
        Some("1m"),
    );
    expect(
        "RivuletConsumerLagHigh",
        "kafka_consumergroup_lag_seconds",
        Some("5m"),
    );
    expect(
        "RivuletLogDirNearlyFull",
        "rivulet_log_dir_free_bytes",
        Some("5m"),
    );
    assert!(alerts["RivuletActiveControllerCount"]["expr"]
        .as_str()
        .is_some_and(|e| e.contains("!= 1")));

    // The dashboard: unique panel ids, on the grid, every query on the datasource variable and
    // using only variables it defines.
    assert_eq!(m.dashboards.len(), 1);
    let (file, d) = &m.dashboards[0];
    assert!(
        d["uid"].is_string() && d["title"].is_string(),
        "{file}: uid and title"
    );
    let variables: BTreeSet<&str> = d
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .expect("templating")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(variables.contains("datasource"));
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        let title = p["title"].as_str().expect("panel title");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "panel id of {title:?} reused"
        );
        let x = p
            .pointer("/gridPos/x")
            .and_then(Value::as_u64)
            .expect("gridPos.x");
        let w = p
            .pointer("/gridPos/w")
            .and_then(Value::as_u64)
            .expect("gridPos.w");
        assert!(x + w <= 24, "{title:?} overflows the grid");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p.pointer("/datasource/uid"),
            Some(&Value::from("${datasource}")),
            "{title:?} datasource"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title:?} has no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            for var in expr.split('$').skip(1) {
                let name: String = var
                    .trim_start_matches('{')
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    name.starts_with("__") || variables.contains(name.as_str()),
                    "{title:?} uses undefined ${name}"
                );
            }
        }
    }
    let references = referenced_metrics(&m);
    for needed in [
        "kafka_server_brokertopicmetrics_bytesin_total",
        "kafka_server_brokertopicmetrics_bytesout_total",
        "kafka_server_brokertopicmetrics_messagesin_total",
        "kafka_network_requestmetrics_requests_total",
        "kafka_network_requestmetrics_errors_total",
        "kafka_network_requestmetrics_totaltimems_bucket",
        "kafka_server_delayedoperationpurgatory_purgatorysize",
        "kafka_server_replicamanager_underreplicatedpartitions",
        "kafka_controller_kafkacontroller_activecontrollercount",
        "rivulet_raft_current_term",
        "kafka_consumergroup_lag",
        "kafka_consumergroup_lag_seconds",
        "rivulet_log_dir_free_bytes",
    ] {
        assert!(
            references.iter().any(|(_, n)| n == needed),
            "nothing in k8s/monitoring shows {needed}"
        );
    }
}

/// `kubectl kustomize k8s/monitoring`, if a kubectl bundling kustomize v5 is installed.
fn kustomize_monitoring() -> Option<Vec<Value>> {
    let version = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&version.stdout).into_owned();
    if !text
        .lines()
        .any(|l| l.starts_with("Kustomize Version: v5."))
    {
        return None;
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(monitoring_dir())
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize k8s/monitoring failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout))
        .expect("kustomize output is YAML");
    Some(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// What kustomize renders from `k8s/monitoring`: the four objects, in the brokers' namespace,
/// the dashboard ConfigMap labelled for the Grafana sidecar and holding the dashboard file.
#[test]
fn monitoring_kustomization_renders() {
    let Some(objects) = kustomize_monitoring() else {
        eprintln!("kubectl with kustomize v5 not installed: rendering not checked (the files are checked by monitoring_manifests_hold_together)");
        return;
    };
    let kinds: BTreeSet<&str> = objects
        .iter()
        .map(|o| str_at(o, "/kind", "rendered object"))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "PrometheusRule", "Service", "ServiceMonitor"])
    );
    for o in &objects {
        assert_eq!(
            str_at(o, "/metadata/namespace", "rendered object"),
            "rivulet",
            "{o}"
        );
    }
    let config_map = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .expect("ConfigMap");
    assert_eq!(config_map["metadata"]["name"], "rivulet-grafana-dashboard");
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    let rendered: Value =
        serde_json::from_str(str_at(config_map, "/data/rivulet.json", "ConfigMap"))
            .expect("dashboard JSON in the ConfigMap");
    let file: Value =
        serde_json::from_str(&read(&monitoring_dir().join("dashboards/rivulet.json")))
            .expect("dashboard");
    assert_eq!(rendered, file);
}

/// The PromQL name extraction finds metrics and nothing else.
#[test]
fn metric_names_are_extracted_from_promql() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le, request) (rate(a_bucket{namespace="$namespace", x=~"b|c"}[$__rate_interval])))"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        names("sum(x_total) by (pod) / on (pod) group_left y_bytes > 1e9"),
        ["x_total", "y_bytes"]
    );
    assert_eq!(
        names("predict_linear(free[6h], 24 * 3600) < 0 and free / total < 0.40 offset 5m"),
        ["free", "total"]
    );
    assert_eq!(
        names(r#"up{job="rivulet-metrics"} == 0 unless absent(z)"#),
        ["up", "z"]
    );
    assert_eq!(
        names("${datasource} count_values(\"v\", m:rate5m)"),
        ["m:rate5m"]
    );
}

//! The KafkaTopic reconciler for real: a Kubernetes API server (kube-apiserver + etcd, started
//! by `.ci/k8s.sh` through `tools/kube-apiserver.sh`) and a three-broker cluster whose brokers
//! reach it as the `rivulet` ServiceAccount with exactly the Role in `k8s/base/rbac.yaml`.
//!
//! KafkaTopics are applied and edited with kubectl, as a user would; the topics are checked with
//! librdkafka (metadata, DescribeConfigs, DeleteTopics) and the brokers' data directories.
//! Covered: create (Ready=True, Created, topicId), growing partitions and replacing configs,
//! refused decreases / replication-factor changes / bad configs (Ready=False, nothing applied),
//! adopting an existing topic, two resources declaring one topic, drift repair after a topic is
//! deleted behind the resource's back, the reconciler moving with the controller role, and both
//! delete policies (finalizer added/removed on switch).
//!
//! Needs `RIVULET_KUBE_TEST=1`, `KUBECONFIG` and `kubectl`; it is built only with
//! `--features kube-api-tests`, so a plain `cargo test` does not run it, and it fails (never
//! passes) when the API server is missing.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use broker::k8s::kafka_topic::{ConditionStatus, KafkaTopic, TOPIC_DELETION_FINALIZER};
use rdkafka::admin::{AdminOptions, ConfigSource, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{json, Value};
use support::{kafka, Cluster, ClusterOptions};

const WAIT: Duration = Duration::from_secs(30);
const ACTIVE_LINE: &str = "active controller: reconciling KafkaTopics";
const CONTROLLER_METRIC: &str = "kafka_controller_kafkacontroller_activecontrollercount";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// kubectl against the test API server, as its administrator, in one namespace.
struct Kube {
    namespace: String,
}

impl Kube {
    /// Checks the environment `.ci/k8s.sh` sets up; panics with what is missing.
    fn connect() -> Kube {
        assert_eq!(
            std::env::var("RIVULET_KUBE_TEST").as_deref(),
            Ok("1"),
            "this test needs a Kubernetes API server: run it through .ci/k8s.sh, or start one with \
             tools/kube-apiserver.sh and set RIVULET_KUBE_TEST=1 and KUBECONFIG"
        );
        let kubeconfig = std::env::var("KUBECONFIG")
            .expect("KUBECONFIG must name the test API server's kubeconfig");
        assert!(
            Path::new(&kubeconfig).is_file(),
            "KUBECONFIG={kubeconfig} is not a file"
        );
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let kube = Kube {
            namespace: format!("kt-{}-{stamp}", std::process::id()),
        };
        let version = kube
            .run(&["version", "-o", "json"], None)
            .unwrap_or_else(|e| panic!("the API server in {kubeconfig} does not answer: {e}"));
        let version: Value = serde_json::from_str(&version).expect("kubectl version -o json");
        eprintln!("API server {}", version["serverVersion"]["gitVersion"]);
        kube
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut child = Command::new("kubectl")
            .arg("--request-timeout=20s")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run kubectl (is it on PATH?): {e}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.run(args, stdin).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `kubectl <args> -n <namespace>`.
    fn ns(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = args.to_vec();
        all.extend(["-n", &self.namespace]);
        self.ok(&all, stdin)
    }

    fn apply(&self, object: &Value) {
        self.ns(&["apply", "-f", "-"], Some(&object.to_string()));
    }

    fn patch(&self, name: &str, patch: Value) {
        self.ns(
            &[
                "patch",
                "kafkatopic",
                name,
                "--type=merge",
                "-p",
                &patch.to_string(),
            ],
            None,
        );
    }

    fn get(&self, name: &str) -> Option<KafkaTopic> {
        let args = [
            "get",
            "kafkatopic",
            name,
            "-n",
            &self.namespace,
            "-o",
            "json",
            "--ignore-not-found",
        ];
        let text = self.ok(&args, None);
        (!text.trim().is_empty()).then(|| {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("KafkaTopic {name}: {e}: {text}"))
        })
    }

    fn must_get(&self, name: &str) -> KafkaTopic {
        self.get(name)
            .unwrap_or_else(|| panic!("KafkaTopic {name} does not exist"))
    }
}

/// The Ready condition as (status, reason, message, lastTransitionTime, observedGeneration).
#[derive(Debug, Clone, PartialEq)]
struct Ready {
    status: ConditionStatus,
    reason: String,
    message: String,
    since: String,
    generation: Option<i64>,
}

fn ready_of(topic: &KafkaTopic) -> Option<Ready> {
    let c = topic.ready_condition()?;
    Some(Ready {
        status: c.status,
        reason: c.reason.clone().unwrap_or_default(),
        message: c.message.clone().unwrap_or_default(),
        since: c
            .last_transition_time
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        generation: c.observed_generation,
    })
}

/// Waits until the resource's status describes its current generation; returns it and its
/// Ready condition.
fn wait_observed(kube: &Kube, name: &str) -> (KafkaTopic, Ready) {
    let deadline = Instant::now() + WAIT;
    loop {
        let topic = kube.must_get(name);
        let generation = topic.metadata.generation;
        let observed = topic.status.as_ref().and_then(|s| s.observed_generation);
        if let Some(ready) =
            ready_of(&topic).filter(|r| observed == generation && r.generation == generation)
        {
            return (topic, ready);
        }
        assert!(
            Instant::now() < deadline,
            "KafkaTopic {name} generation {generation:?} not reconciled within {WAIT:?}: {:?}",
            topic.status
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn expect_ready(kube: &Kube, name: &str, reason: &str) -> (KafkaTopic, Ready) {
    let (topic, ready) = wait_observed(kube, name);
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::True, reason),
        "KafkaTopic {name}: {ready:?}"
    );
    (topic, ready)
}

fn expect_not_ready(kube: &Kube, name: &str, reason: &str) -> (KafkaTopic, Ready) {
    let (topic, ready) = wait_observed(kube, name);
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::False, reason),
        "KafkaTopic {name}: {ready:?}"
    );
    (topic, ready)
}

fn topic_id(topic: &KafkaTopic) -> String {
    topic
        .status
        .as_ref()
        .and_then(|s| s.topic_id.clone())
        .unwrap_or_default()
}

fn kafka_topic(
    name: &str,
    topic_name: Option<&str>,
    policy: Option<&str>,
    partitions: i32,
    replicas: i32,
    config: Value,
) -> Value {
    let mut object = json!({
        "apiVersion": "rivulet.io/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name},
        "spec": {"partitions": partitions, "replicas": replicas, "config": config},
    });
    if let Some(topic_name) = topic_name {
        object["spec"]["topicName"] = json!(topic_name);
    }
    if let Some(policy) = policy {
        object["metadata"]["annotations"] = json!({"rivulet.io/delete-policy": policy});
    }
    object
}

/// Partition count and each partition's replica count, or None if the topic does not exist.
fn layout(bootstrap: &str, topic: &str) -> Option<(usize, Vec<usize>)> {
    let consumer: BaseConsumer = kafka::config(
        bootstrap,
        &[
            ("group.id", "kt-probe"),
            ("allow.auto.create.topics", "false"),
        ],
    )
    .create()
    .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    Some((
        t.partitions().len(),
        t.partitions().iter().map(|p| p.replicas().len()).collect(),
    ))
}

fn wait_layout(bootstrap: &str, topic: &str, partitions: usize, replicas: usize) {
    let want = Some((partitions, vec![replicas; partitions]));
    let ok = support::wait_until(WAIT, || layout(bootstrap, topic) == want);
    assert!(
        ok,
        "topic {topic}: want {want:?}, have {:?}",
        layout(bootstrap, topic)
    );
}

fn wait_gone(bootstrap: &str, topic: &str) {
    let ok = support::wait_until(WAIT, || layout(bootstrap, topic).is_none());
    assert!(
        ok,
        "topic {topic} still exists: {:?}",
        layout(bootstrap, topic)
    );
}

fn admin_opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// The topic's dynamic (per-topic) configs, from DescribeConfigs.
fn overrides(
    rt: &tokio::runtime::Runtime,
    bootstrap: &str,
    topic: &str,
) -> HashMap<String, String> {
    rt.block_on(kafka::describe_topic_configs(bootstrap, topic))
        .into_iter()
        .filter(|e| e.source == ConfigSource::DynamicTopic)
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}

fn strings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Which broker is the active controller (by its metric), waiting for one.
fn controller(cluster: &mut Cluster, skip: Option<usize>) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        let active: Vec<usize> = (0..cluster.len())
            .filter(|i| Some(*i) != skip && cluster.metric(*i, CONTROLLER_METRIC) == Some(1.0))
            .collect();
        if let [one] = active[..] {
            return one;
        }
        assert!(
            Instant::now() < deadline,
            "no single active controller: {active:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn log_of(cluster: &Cluster, i: usize) -> String {
    std::fs::read_to_string(
        cluster
            .data_dir(i)
            .parent()
            .expect("broker dir")
            .join("broker.log"),
    )
    .unwrap_or_default()
}

/// Namespace, ServiceAccount `rivulet` and the reconciler's Role/RoleBinding from
/// k8s/base/rbac.yaml, and a kubeconfig that acts as that ServiceAccount.
fn prepare_namespace(kube: &Kube, dir: &Path) -> PathBuf {
    let ns = kube.namespace.as_str();
    kube.ok(&["create", "namespace", ns], None);
    kube.ns(&["create", "serviceaccount", "rivulet"], None);
    let rbac =
        std::fs::read_to_string(repo().join("k8s/base/rbac.yaml")).expect("k8s/base/rbac.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&rbac).expect("rbac.yaml is YAML");
    let mut applied = 0;
    for mut doc in docs
        .into_iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "RoleBinding")
    {
        doc["metadata"]["namespace"] = json!(ns);
        if let Some(subjects) = doc["subjects"].as_array_mut() {
            for s in subjects {
                s["namespace"] = json!(ns);
            }
        }
        kube.apply(&doc);
        applied += 1;
    }
    assert_eq!(
        applied, 2,
        "k8s/base/rbac.yaml should hold the reconciler's Role and RoleBinding"
    );

    let admin_config = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let text = std::fs::read_to_string(&admin_config).expect("read KUBECONFIG");
    let mut config: Value = serde_saphyr::from_str(&text).expect("KUBECONFIG is YAML");
    let sa = format!("system:serviceaccount:{ns}:rivulet");
    for user in config["users"].as_array_mut().expect("kubeconfig users") {
        user["user"]["as"] = json!(sa);
        user["user"]["as-groups"] = json!([
            "system:serviceaccounts",
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated"
        ]);
    }
    let path = dir.join("kubeconfig-rivulet-sa.json");
    std::fs::write(&path, config.to_string()).expect("write kubeconfig");
    // The brokers' identity may do what the reconciler needs and no more.
    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i", "--as", sa.as_str(), "-n", ns];
        all.extend(args);
        kube.run(&all, None)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| e.lines().next().unwrap_or_default().to_string())
    };
    assert_eq!(can(&["watch", "kafkatopics.rivulet.io"]), "yes");
    assert_eq!(
        can(&["patch", "kafkatopics.rivulet.io", "--subresource=status"]),
        "yes"
    );
    assert_ne!(can(&["delete", "kafkatopics.rivulet.io"]), "yes");
    path
}

#[test]
fn kafka_topics_are_reconciled_by_the_active_controller() {
    assert!(
        WAIT < broker::k8s::reconciler::RESYNC,
        "waits must not be covered by the periodic resync"
    );
    let kube = Kube::connect();
    kube.ok(
        &[
            "apply",
            "-f",
            &repo()
                .join("k8s/crd/kafkatopics.rivulet.io.yaml")
                .to_string_lossy(),
        ],
        None,
    );
    kube.ok(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/kafkatopics.rivulet.io",
        ],
        None,
    );
    let scratch = tempfile::tempdir().expect("temp dir");
    let kubeconfig = prepare_namespace(&kube, scratch.path());
    eprintln!("namespace {}", kube.namespace);

    let mut cluster = Cluster::start(
        ClusterOptions::new(3)
            .property("kubernetes.enabled", "false")
            .property("kubernetes.topic.reconciler.enable", "true")
            .property("kubernetes.namespace", &kube.namespace)
            .property("auto.create.topics.enable", "false")
            .env("KUBECONFIG", kubeconfig.display()),
    );
    let bootstrap = cluster.bootstrap();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let first = controller(&mut cluster, None);
    let started = support::wait_until(WAIT, || log_of(&cluster, first).contains(ACTIVE_LINE));
    assert!(
        started,
        "the controller (broker {first}) did not start reconciling"
    );
    for i in (0..3).filter(|i| *i != first) {
        assert!(
            !log_of(&cluster, i).contains(ACTIVE_LINE),
            "broker {i} reconciles but is not the controller"
        );
    }

    // Create: the topic appears with its partitions, replicas and configs; Ready=True, Created.
    kube.apply(&kafka_topic(
        "orders",
        Some("orders.v1"),
        Some("delete"),
        3,
        3,
        json!({"retention.ms": "3600000", "cleanup.policy": "delete"}),
    ));
    let (created, ready) = expect_ready(&kube, "orders", "Created");
    wait_layout(&bootstrap, "orders.v1", 3, 3);
    assert_eq!(
        overrides(&rt, &bootstrap, "orders.v1"),
        strings(&[("retention.ms", "3600000"), ("cleanup.policy", "delete")])
    );
    assert_eq!(
        created.metadata.finalizers,
        Some(vec![TOPIC_DELETION_FINALIZER.to_string()]),
        "policy delete keeps the finalizer"
    );
    let id = topic_id(&created);
    let metadata_file = cluster.data_dir(0).join("orders.v1-0/partition.metadata");
    let on_disk = support::wait_until(WAIT, || {
        std::fs::read_to_string(&metadata_file)
            .is_ok_and(|t| t.contains(&format!("topic_id: {id}")))
    });
    assert!(
        on_disk,
        "status.topicId {id} is not the id in {}",
        metadata_file.display()
    );
    assert!(log_of(&cluster, first).contains("created topic for KafkaTopic"));
    for i in (0..3).filter(|i| *i != first) {
        assert!(
            !log_of(&cluster, i).contains("created topic for KafkaTopic"),
            "broker {i} acted without being the controller"
        );
    }
    let table = kube.ns(&["get", "kafkatopics"], None);
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("orders "))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row.get(1..5),
        Some(&["orders.v1", "3", "3", "True"][..]),
        "kubectl get kafkatopics:\n{table}"
    );

    // Edit: more partitions, one config changed, one removed, one added.
    kube.patch(
        "orders",
        json!({"spec": {"partitions": 5, "config": {"retention.ms": "7200000", "cleanup.policy": null, "segment.ms": "600000"}}}),
    );
    let (_, updated) = expect_ready(&kube, "orders", "Updated");
    assert_eq!(
        updated.since, ready.since,
        "still Ready: lastTransitionTime must not move"
    );
    wait_layout(&bootstrap, "orders.v1", 5, 3);
    assert_eq!(
        overrides(&rt, &bootstrap, "orders.v1"),
        strings(&[("retention.ms", "7200000"), ("segment.ms", "600000")])
    );

    // Refused edits change nothing, whatever else they carry. (Sleeps: lastTransitionTime has
    // one-second resolution, and the test checks that it moves when Ready flips.)
    std::thread::sleep(Duration::from_millis(1100));
    kube.patch(
        "orders",
        json!({"spec": {"partitions": 2, "config": {"retention.ms": "1000"}}}),
    );
    let (_, refused) = expect_not_ready(&kube, "orders", "PartitionDecreaseNotAllowed");
    assert_ne!(
        refused.since, updated.since,
        "Ready flipped: lastTransitionTime must move"
    );
    kube.patch("orders", json!({"spec": {"partitions": 5, "replicas": 2}}));
    expect_not_ready(&kube, "orders", "ReplicationFactorChangeNotSupported");
    kube.patch(
        "orders",
        json!({"spec": {"replicas": 3, "config": {"retention.ms": "soon"}}}),
    );
    let (_, bad_config) = expect_not_ready(&kube, "orders", "InvalidConfig");
    assert!(
        bad_config.message.contains("retention.ms"),
        "the broker's message: {bad_config:?}"
    );
    assert_eq!(layout(&bootstrap, "orders.v1"), Some((5, vec![3; 5])));
    assert_eq!(
        overrides(&rt, &bootstrap, "orders.v1"),
        strings(&[("retention.ms", "7200000"), ("segment.ms", "600000")])
    );
    std::thread::sleep(Duration::from_millis(1100));
    kube.patch(
        "orders",
        json!({"spec": {"config": {"retention.ms": "7200000"}}}),
    );
    let (_, back) = expect_ready(&kube, "orders", "UpToDate");
    assert_ne!(back.since, refused.since);

    // Drift: the topic deleted with the admin API comes back, well before the periodic resync
    // (WAIT < RESYNC): the reconciler follows the metadata image.
    let deleted_at = Instant::now();
    rt.block_on(kafka::admin(&bootstrap).delete_topics(&["orders.v1"], &admin_opts()))
        .expect("delete_topics")
        .into_iter()
        .for_each(|r| assert!(r.is_ok(), "{r:?}"));
    let recreated = support::wait_until(WAIT, || {
        let topic = kube.must_get("orders");
        !topic_id(&topic).is_empty()
            && topic_id(&topic) != id
            && layout(&bootstrap, "orders.v1") == Some((5, vec![3; 5]))
    });
    assert!(
        recreated,
        "the deleted topic was not created again: {:?}",
        kube.must_get("orders").status
    );
    eprintln!("deleted topic re-created after {:?}", deleted_at.elapsed());

    // Adoption: a topic made with the admin API is taken over; its overrides become the spec's.
    rt.block_on(async {
        let topic =
            NewTopic::new("legacy", 2, TopicReplication::Fixed(3)).set("retention.ms", "1000");
        let results = kafka::admin(&bootstrap)
            .create_topics(&[topic], &admin_opts())
            .await
            .expect("create_topics");
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    });
    kube.apply(&kafka_topic(
        "legacy",
        None,
        None,
        2,
        3,
        json!({"segment.ms": "600000"}),
    ));
    let (legacy, adopted) = expect_ready(&kube, "legacy", "Adopted");
    assert!(adopted.message.contains("adopted"), "{adopted:?}");
    assert!(
        legacy.metadata.finalizers.unwrap_or_default().is_empty(),
        "policy retain needs no finalizer"
    );
    assert_eq!(
        overrides(&rt, &bootstrap, "legacy"),
        strings(&[("segment.ms", "600000")])
    );
    kube.apply(&kafka_topic(
        "legacy-again",
        Some("legacy"),
        None,
        4,
        3,
        json!({}),
    ));
    let (_, claimed) = expect_not_ready(&kube, "legacy-again", "TopicClaimed");
    assert!(claimed.message.contains("KafkaTopic legacy"), "{claimed:?}");
    assert_eq!(layout(&bootstrap, "legacy"), Some((2, vec![3; 2])));

    // The reconciler follows the controller role: kill the controller, edit, and the new
    // controller applies the edit.
    cluster.kill(first);
    let second = controller(&mut cluster, Some(first));
    let moved = support::wait_until(WAIT, || log_of(&cluster, second).contains(ACTIVE_LINE));
    assert!(
        moved,
        "broker {second} became controller but did not start reconciling"
    );
    cluster.restart(first);
    cluster.wait_ready(first, Duration::from_secs(60));
    kube.patch("orders", json!({"spec": {"partitions": 6}}));
    expect_ready(&kube, "orders", "Updated");
    wait_layout(&bootstrap, "orders.v1", 6, 3);

    // Policy switch: delete -> retain drops the finalizer, an unknown value is refused.
    kube.apply(&kafka_topic(
        "switch",
        None,
        Some("delete"),
        1,
        3,
        json!({}),
    ));
    expect_ready(&kube, "switch", "Created");
    let finalized = support::wait_until(WAIT, || kube.must_get("switch").has_deletion_finalizer());
    assert!(finalized, "policy delete adds the finalizer");
    kube.ns(
        &[
            "annotate",
            "--overwrite",
            "kafkatopic",
            "switch",
            "rivulet.io/delete-policy=retain",
        ],
        None,
    );
    let released = support::wait_until(WAIT, || !kube.must_get("switch").has_deletion_finalizer());
    assert!(released, "policy retain removes the finalizer");
    kube.ns(
        &[
            "annotate",
            "--overwrite",
            "kafkatopic",
            "switch",
            "rivulet.io/delete-policy=sometimes",
        ],
        None,
    );
    let invalid = support::wait_until(WAIT, || {
        ready_of(&kube.must_get("switch")).is_some_and(|r| {
            r.reason == "InvalidDeletePolicy" && r.status == ConditionStatus::False
        })
    });
    assert!(
        invalid,
        "an unknown delete policy is reported: {:?}",
        kube.must_get("switch").status
    );

    // Delete with policy retain: the resource goes at once, the topic stays. (The resource that
    // lost the claim goes first, or it would take the topic over.)
    kube.ns(
        &[
            "delete",
            "kafkatopic",
            "legacy-again",
            "--wait=true",
            "--timeout=30s",
        ],
        None,
    );
    kube.ns(
        &[
            "delete",
            "kafkatopic",
            "legacy",
            "--wait=true",
            "--timeout=30s",
        ],
        None,
    );
    kube.ns(
        &[
            "delete",
            "kafkatopic",
            "switch",
            "--wait=true",
            "--timeout=30s",
        ],
        None,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        layout(&bootstrap, "legacy"),
        Some((2, vec![3; 2])),
        "policy retain keeps the topic"
    );
    assert_eq!(
        layout(&bootstrap, "switch"),
        Some((1, vec![3])),
        "policy retain keeps the topic"
    );

    // Delete with policy delete: the topic goes, then the finalizer, then the resource.
    kube.ns(
        &[
            "delete",
            "kafkatopic",
            "orders",
            "--wait=true",
            "--timeout=30s",
        ],
        None,
    );
    assert!(
        kube.get("orders").is_none(),
        "KafkaTopic orders still exists"
    );
    wait_gone(&bootstrap, "orders.v1");
    assert!((0..3).any(|i| log_of(&cluster, i).contains("deleted topic of deleted KafkaTopic")));
}

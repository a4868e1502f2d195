//! The Kubernetes packaging in `k8s/` holds together: the StatefulSet, its Services, the
//! PodDisruptionBudget, the RBAC rules, the broker configuration and the KafkaTopic CRD agree
//! with each other in every overlay.
//!
//! Each overlay is rendered with `kubectl kustomize` when a kubectl bundling kustomize v5 is
//! installed. Without one, the base's files are read and assembled here (resources, the
//! generated ConfigMap, the namespace) and checked the same way, so the test never passes
//! without having looked at the manifests.

// The helpers below run only inside these tests: a panic naming what is missing is the report.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use broker::config::{definition, is_known_property, BrokerConfig, Origin, Properties, Toggle};
use broker::k8s::{derived_properties, PodEnv};
use serde_json::{json, Value};

/// How strictly an overlay places brokers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// One broker per zone and per node, enforced by the scheduler.
    Spread,
    /// A single-node cluster: spreading and anti-affinity are preferences.
    SingleNode,
}

const OVERLAYS: &[(&str, Placement)] = &[
    ("base", Placement::Spread),
    ("overlays/three-zones", Placement::Spread),
    ("overlays/external", Placement::Spread),
    ("overlays/secure", Placement::Spread),
    ("overlays/dev", Placement::SingleNode),
];

/// Time the broker needs after controlled.shutdown.timeout.ms to flush and close its logs.
const SHUTDOWN_HEADROOM_MS: u64 = 10_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse_yaml(text: &str, origin: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|e| panic!("{origin} is not valid YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// A rendered set of manifests and where it came from.
#[derive(Debug)]
struct Bundle {
    origin: String,
    objects: Vec<Value>,
}

/// `kubectl kustomize` if kubectl is installed and bundles kustomize v5, else `None`.
fn kustomize_available() -> Option<String> {
    let out = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("Kustomize Version: "))?
        .trim()
        .to_string();
    version.starts_with("v5.").then_some(version)
}

fn render_with_kubectl(overlay: &str) -> Bundle {
    let dir = repo().join("k8s").join(overlay);
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl kustomize: {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("kustomize output is UTF-8");
    Bundle {
        origin: format!("kubectl kustomize k8s/{overlay}"),
        objects: parse_yaml(&text, overlay),
    }
}

/// Kinds that live outside namespaces (the namespace transformer leaves them alone).
fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace" | "ClusterRole" | "ClusterRoleBinding" | "CustomResourceDefinition"
    )
}

/// Reads a kustomization's resources and ConfigMap generators without kustomize: enough for the
/// base, which uses nothing else that changes the objects checked here.
fn assemble_raw(dir: &Path, out: &mut Vec<Value>) {
    let kustomization = dir.join("kustomization.yaml");
    let k = parse_yaml(&read(&kustomization), &kustomization.display().to_string())
        .pop()
        .expect("kustomization.yaml has a document");
    let mut objects = Vec::new();
    for entry in k["resources"].as_array().into_iter().flatten() {
        let path = dir.join(entry.as_str().expect("resource entries are paths"));
        if path.is_dir() {
            assemble_raw(&path, &mut objects);
        } else {
            objects.extend(parse_yaml(&read(&path), &path.display().to_string()));
        }
    }
    for generator in k["configMapGenerator"].as_array().into_iter().flatten() {
        let mut data = serde_json::Map::new();
        for file in generator["files"].as_array().into_iter().flatten() {
            let file = file.as_str().expect("generator files are paths");
            data.insert(file.to_string(), Value::String(read(&dir.join(file))));
        }
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": generator["name"]},
            "data": data,
        }));
    }
    if let Some(ns) = k["namespace"].as_str() {
        for o in &mut objects {
            let kind = o["kind"].as_str().unwrap_or_default().to_string();
            if !cluster_scoped(&kind) {
                o["metadata"]["namespace"] = Value::String(ns.to_string());
            }
        }
    }
    out.extend(objects);
}

fn bundles() -> Vec<(Bundle, Placement)> {
    match kustomize_available() {
        Some(version) => {
            eprintln!("rendering every overlay with kubectl kustomize (kustomize {version})");
            OVERLAYS
                .iter()
                .map(|(overlay, placement)| (render_with_kubectl(overlay), *placement))
                .collect()
        }
        None => {
            eprintln!("no kubectl with kustomize v5: checking k8s/base from its files");
            let mut objects = Vec::new();
            assemble_raw(&repo().join("k8s/base"), &mut objects);
            vec![(
                Bundle {
                    origin: "k8s/base files".to_string(),
                    objects,
                },
                Placement::Spread,
            )]
        }
    }
}

impl Bundle {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let found = self.all(kind);
        assert_eq!(
            found.len(),
            1,
            "{}: expected one {kind}, found {}",
            self.origin,
            found.len()
        );
        found[0]
    }

    fn named(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{}: no {kind} named {name}", self.origin))
    }
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// A `matchLabels`-style selector selects a pod with these labels.
fn selects(selector: &Value, pod_labels: &BTreeMap<String, String>) -> bool {
    let wanted = string_map(selector);
    !wanted.is_empty() && wanted.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
}

/// The `--config` file as the broker parses it.
fn parse_properties_checked(text: &str, origin: &str) -> Properties {
    let mut props = Properties::default();
    props
        .parse_properties_text(text, Origin::File)
        .unwrap_or_else(|e| panic!("{origin}: the broker rejects its properties file: {e}"));
    props
}

/// The container's environment in one pod, as the kubelet builds it: downward API fields,
/// ConfigMap keys, and `$(VAR)` expanded from variables defined earlier.
fn pod_environment(
    b: &Bundle,
    env: &[Value],
    pod_name: &str,
    namespace: &str,
    node: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([("HOSTNAME".to_string(), pod_name.to_string())]);
    for var in env {
        let name = var["name"].as_str().expect("env name").to_string();
        let value = if let Some(value) = var["value"].as_str() {
            let mut expanded = value.to_string();
            for (k, v) in &out {
                expanded = expanded.replace(&format!("$({k})"), v);
            }
            expanded
        } else if let Some(field) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match field {
                "metadata.name" => pod_name.to_string(),
                "metadata.namespace" => namespace.to_string(),
                "spec.nodeName" => node.to_string(),
                other => panic!("{}: env {name} uses fieldRef {other}", b.origin),
            }
        } else if let Some(key_ref) = var["valueFrom"]["configMapKeyRef"].as_object() {
            let map = b.named(
                "ConfigMap",
                key_ref["name"].as_str().expect("ConfigMap name"),
            );
            map["data"][key_ref["key"].as_str().expect("key")]
                .as_str()
                .unwrap_or_else(|| panic!("{}: env {name}: ConfigMap key missing", b.origin))
                .to_string()
        } else {
            panic!("{}: env {name} has no value the test understands", b.origin)
        };
        out.insert(name, value);
    }
    out
}

/// The broker's environment convention: `RIVULET_LOG_DIRS` -> `log.dirs`, `__` is `_`,
/// `___` is `-`.
fn env_property(name: &str) -> Option<String> {
    let rest = name
        .strip_prefix("RIVULET_")
        .or_else(|| name.strip_prefix("KAFKA_"))?;
    Some(
        rest.to_ascii_lowercase()
            .replace("___", "\u{1}")
            .replace("__", "\u{2}")
            .replace('_', ".")
            .replace('\u{1}', "-")
            .replace('\u{2}', "_"),
    )
}

/// `NAME://host:port` -> (NAME, port).
fn listener(text: &str) -> (String, u16) {
    let (name, rest) = text
        .split_once("://")
        .unwrap_or_else(|| panic!("listener {text:?} is not NAME://host:port"));
    let port = rest
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("listener {text:?} has no port"));
    (name.to_ascii_uppercase(), port)
}

/// A CPU or memory quantity in base units (cores, bytes).
fn quantity(v: &Value) -> f64 {
    if let Some(n) = v.as_f64() {
        return n;
    }
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("quantity {v} is not a string"));
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("m", 0.001),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(n) = s.strip_suffix(suffix) {
            return n
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("quantity {s}: {e}"))
                * factor;
        }
    }
    s.parse().unwrap_or_else(|e| panic!("quantity {s}: {e}"))
}

/// The container port a probe or Service names, by name or number.
fn resolve_port(container: &Value, port: &Value) -> u16 {
    let ports = container["ports"].as_array().cloned().unwrap_or_default();
    let found = match port {
        Value::String(name) => ports.iter().find(|p| p["name"] == name.as_str()),
        Value::Number(n) => ports
            .iter()
            .find(|p| p["containerPort"].as_u64() == n.as_u64()),
        _ => None,
    };
    let found = found.unwrap_or_else(|| panic!("port {port} is not a port of the container"));
    u16::try_from(found["containerPort"].as_u64().unwrap_or_default()).expect("port fits u16")
}

/// Everything about one bundle's brokers that must hold in every overlay.
fn check_brokers(b: &Bundle, placement: Placement) {
    let origin = &b.origin;
    let sts = b.one("StatefulSet");
    let namespace = sts["metadata"]["namespace"].as_str().unwrap_or_default();
    assert!(
        !namespace.is_empty(),
        "{origin}: the StatefulSet has no namespace"
    );
    let spec = &sts["spec"];
    let pod = &spec["template"]["spec"];
    let pod_labels = string_map(&spec["template"]["metadata"]["labels"]);

    assert!(
        selects(&spec["selector"]["matchLabels"], &pod_labels),
        "{origin}: the StatefulSet's selector does not select its own pods"
    );
    assert!(
        spec["replicas"].as_u64().unwrap_or_default() >= 3,
        "{origin}: fewer than three brokers, but ordinals 0, 1 and 2 are the quorum's voters"
    );
    assert_eq!(
        spec["podManagementPolicy"], "Parallel",
        "{origin}: brokers must start together"
    );

    // Every namespaced object lives with the StatefulSet.
    for o in &b.objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        if !cluster_scoped(kind) {
            assert_eq!(
                o["metadata"]["namespace"], namespace,
                "{origin}: {kind} {} is not in namespace {namespace}",
                o["metadata"]["name"]
            );
        }
    }
    assert!(
        b.all("Namespace")
            .iter()
            .any(|n| n["metadata"]["name"] == namespace),
        "{origin}: namespace {namespace} is not created"
    );

    let containers = pod["containers"].as_array().expect("containers");
    let broker = containers
        .iter()
        .find(|c| c["name"] == "broker")
        .unwrap_or_else(|| panic!("{origin}: no container named broker"));

    // Guaranteed QoS: every container's CPU and memory limits equal its requests.
    let init = pod["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in containers.iter().chain(init.iter()) {
        for resource in ["cpu", "memory"] {
            let limit = &c["resources"]["limits"][resource];
            assert!(
                !limit.is_null(),
                "{origin}: container {} has no {resource} limit",
                c["name"]
            );
            let request = &c["resources"]["requests"][resource];
            assert!(
                request.is_null() || quantity(request) == quantity(limit),
                "{origin}: container {} requests {request} {resource} but is limited to {limit}",
                c["name"]
            );
        }
    }

    // Environment: ordered like Kubernetes expands it, and what kubernetes.enabled needs.
    let env = broker["env"].as_array().cloned().unwrap_or_default();
    let mut defined = BTreeSet::new();
    let mut env_values = BTreeMap::new();
    for var in &env {
        let name = var["name"].as_str().expect("env name").to_string();
        if let Some(value) = var["value"].as_str() {
            for reference in value.split("$(").skip(1) {
                let referenced = reference.split(')').next().unwrap_or_default();
                assert!(
                    defined.contains(referenced),
                    "{origin}: env {name} uses $({referenced}) before it is defined"
                );
            }
            env_values.insert(name.clone(), value.to_string());
        }
        defined.insert(name);
    }
    let field_ref = |name: &str| {
        env.iter()
            .find(|v| v["name"] == name)
            .map(|v| v["valueFrom"]["fieldRef"]["fieldPath"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(field_ref("POD_NAME"), "metadata.name", "{origin}: POD_NAME");
    assert_eq!(
        field_ref("POD_NAMESPACE"),
        "metadata.namespace",
        "{origin}: POD_NAMESPACE"
    );
    assert_eq!(
        field_ref("NODE_NAME"),
        "spec.nodeName",
        "{origin}: NODE_NAME"
    );

    // The headless Service: serviceName, per-pod DNS before readiness, the Raft port.
    let service_name = spec["serviceName"].as_str().expect("serviceName");
    assert_eq!(
        env_values.get("HEADLESS_SERVICE").map(String::as_str),
        Some(service_name),
        "{origin}: HEADLESS_SERVICE must name the StatefulSet's serviceName"
    );
    let headless = b.named("Service", service_name);
    assert_eq!(
        headless["spec"]["clusterIP"], "None",
        "{origin}: {service_name} is not headless"
    );
    assert_eq!(
        headless["spec"]["publishNotReadyAddresses"], true,
        "{origin}: voters must resolve each other before they are ready"
    );
    assert!(
        selects(&headless["spec"]["selector"], &pod_labels),
        "{origin}: {service_name} does not select the brokers"
    );

    // The configuration the broker runs with: the mounted --config file, then RIVULET_/KAFKA_
    // variables (later wins).
    let args: Vec<&str> = broker["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let config_path = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1])
        .unwrap_or_else(|| panic!("{origin}: the broker is not given --config"));
    let mounts = broker["volumeMounts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (config_dir, config_file) = config_path
        .rsplit_once('/')
        .expect("absolute --config path");
    let config_mount = mounts
        .iter()
        .find(|m| m["mountPath"] == config_dir)
        .unwrap_or_else(|| panic!("{origin}: nothing is mounted at {config_dir}"));
    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    let config_volume = volumes
        .iter()
        .find(|v| v["name"] == config_mount["name"])
        .unwrap_or_else(|| panic!("{origin}: volume {} is not defined", config_mount["name"]));
    let config_map = b.named(
        "ConfigMap",
        config_volume["configMap"]["name"]
            .as_str()
            .expect("config volume is a ConfigMap"),
    );
    let file_text = config_map["data"][config_file]
        .as_str()
        .unwrap_or_else(|| panic!("{origin}: the ConfigMap has no key {config_file}"));
    for (key, _) in parse_properties_checked(file_text, origin).iter() {
        assert!(
            is_known_property(key),
            "{origin}: {config_file} sets unknown property {key}"
        );
    }
    for var in &env {
        let name = var["name"].as_str().unwrap_or_default();
        if let Some(key) = env_property(name) {
            assert!(
                definition(&key).is_some(),
                "{origin}: env {name} names unknown property {key}"
            );
        }
    }

    // What every pod becomes, through the broker's own code: the file, the variables as the
    // kubelet expands them, then what kubernetes.enabled derives from the pod (its node in
    // zone-N here).
    let sts_name = sts["metadata"]["name"].as_str().expect("StatefulSet name");
    let replicas = spec["replicas"].as_u64().unwrap_or_default();
    let dns = |pod: &str| format!("{pod}.{service_name}.{namespace}.svc");
    let mut configs = Vec::new();
    for ordinal in 0..replicas {
        let pod_name = format!("{sts_name}-{ordinal}");
        let zone = format!("zone-{ordinal}");
        let pod_env = pod_environment(b, &env, &pod_name, namespace, &format!("node-{ordinal}"));
        let mut props = parse_properties_checked(file_text, origin);
        props.load_environment(pod_env.clone());
        let config = BrokerConfig::from_properties(props)
            .unwrap_or_else(|e| panic!("{origin}: {pod_name} would not start: {e}"));
        assert_eq!(
            config.kubernetes,
            Toggle::On,
            "{origin}: identity must come from the pod"
        );
        let identity = PodEnv::from_env(|k| pod_env.get(k).cloned())
            .unwrap_or_else(|| panic!("{origin}: {pod_name} lacks the pod variables"));
        let mut props = config.properties.clone();
        for (key, value) in derived_properties(&config, &identity, Some(zone.clone())) {
            props.set(key, value, Origin::Environment);
        }
        let config = BrokerConfig::from_properties(props)
            .unwrap_or_else(|e| panic!("{origin}: {pod_name}'s derived config: {e}"));
        assert_eq!(
            i64::from(config.node_id),
            ordinal as i64,
            "{origin}: {pod_name} id"
        );
        assert_eq!(
            config.rack.as_deref(),
            Some(zone.as_str()),
            "{origin}: rack"
        );
        assert_eq!(
            config.inter_broker_listener().map(|l| l.host.clone()),
            Some(dns(&pod_name)),
            "{origin}: {pod_name} must advertise its per-pod DNS name"
        );
        let voters: BTreeMap<i32, String> = (0..3)
            .map(|i| {
                let addr = format!(
                    "{}:{}",
                    dns(&format!("{sts_name}-{i}")),
                    config.controller_listener.port
                );
                (i, addr)
            })
            .collect();
        assert_eq!(
            config.voters, voters,
            "{origin}: {pod_name}'s quorum voters"
        );
        configs.push(config);
    }
    let config = &configs[0];

    // Ports: every listener is a container port; the Services reach the right ones.
    let container_ports: BTreeMap<String, u16> = broker["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let port = u16::try_from(p["containerPort"].as_u64().unwrap_or_default()).unwrap_or(0);
            (p["name"].as_str().unwrap_or_default().to_string(), port)
        })
        .collect();
    let listeners: BTreeMap<String, u16> = config
        .listeners
        .iter()
        .chain([&config.controller_listener])
        .map(|l| (l.name.clone(), l.port))
        .collect();
    for (name, port) in &listeners {
        assert!(
            container_ports.values().any(|p| p == port),
            "{origin}: listener {name} on port {port} is not a container port"
        );
    }
    let controller_port = config.controller_listener.port;
    let kafka_port = listeners[&config.inter_broker_listener_name];
    let service_ports = |svc: &Value| -> Vec<u16> {
        svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve_port(broker, &p["targetPort"]))
            .collect()
    };
    let headless_ports = service_ports(headless);
    assert!(
        headless_ports.contains(&controller_port) && headless_ports.contains(&kafka_port),
        "{origin}: {service_name} must carry the Raft ({controller_port}) and Kafka ({kafka_port}) ports"
    );
    let bootstrap = b
        .all("Service")
        .into_iter()
        .find(|s| s["spec"]["type"] == "ClusterIP" && s["spec"]["clusterIP"] != "None")
        .unwrap_or_else(|| panic!("{origin}: no ClusterIP bootstrap Service"));
    assert!(
        selects(&bootstrap["spec"]["selector"], &pod_labels),
        "{origin}: bootstrap selector"
    );
    let bootstrap_ports = service_ports(bootstrap);
    assert!(
        config
            .listeners
            .iter()
            .any(|l| bootstrap_ports.contains(&l.port)),
        "{origin}: the bootstrap Service does not reach a Kafka listener"
    );

    // Health on the metrics listener, and Prometheus told where it is.
    let metrics_port: u16 = config
        .metrics_listener
        .as_deref()
        .and_then(|m| m.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .expect("metrics.listener is host:port");
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/livez")] {
        let get = &broker[probe]["httpGet"];
        assert_eq!(get["path"], path, "{origin}: {probe} path");
        assert_eq!(
            resolve_port(broker, &get["port"]),
            metrics_port,
            "{origin}: {probe} port"
        );
    }
    let annotations = string_map(&spec["template"]["metadata"]["annotations"]);
    assert_eq!(
        annotations.get("prometheus.io/scrape").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        annotations.get("prometheus.io/path").map(String::as_str),
        Some("/metrics")
    );
    assert_eq!(
        annotations.get("prometheus.io/port"),
        Some(&metrics_port.to_string()),
        "{origin}: Prometheus would scrape the wrong port"
    );

    // SIGTERM is a controlled shutdown: the kubelet must wait for it.
    let timeout_ms = config.controlled_shutdown_timeout_ms;
    let grace_ms = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace period")
        * 1000;
    assert!(
        grace_ms >= timeout_ms + SHUTDOWN_HEADROOM_MS,
        "{origin}: terminationGracePeriodSeconds ({grace_ms} ms) leaves no time after \
         controlled.shutdown.timeout.ms ({timeout_ms} ms)"
    );

    // Volumes: every claim template is mounted, every mount exists, data is on a claim.
    let claims: BTreeSet<String> = spec["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            t["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(!claims.is_empty(), "{origin}: no volumeClaimTemplates");
    let pod_volumes: BTreeSet<String> = volumes
        .iter()
        .map(|v| v["name"].as_str().unwrap_or_default().to_string())
        .collect();
    let mounted: BTreeSet<String> = mounts
        .iter()
        .map(|m| m["name"].as_str().unwrap_or_default().to_string())
        .collect();
    for claim in &claims {
        assert!(
            mounted.contains(claim),
            "{origin}: claim {claim} is never mounted"
        );
        assert!(
            !pod_volumes.contains(claim),
            "{origin}: {claim} is both a claim and a volume"
        );
    }
    for name in &mounted {
        assert!(
            claims.contains(name) || pod_volumes.contains(name),
            "{origin}: mount {name} is neither a claim template nor a pod volume"
        );
    }
    let claim_paths: Vec<&str> = mounts
        .iter()
        .filter(|m| claims.contains(m["name"].as_str().unwrap_or_default()))
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    for dir in config.log_dirs.iter().filter_map(|d| d.to_str()) {
        assert!(
            claim_paths.iter().any(|p| dir
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))),
            "{origin}: log dir {dir} is not inside a persistent volume ({claim_paths:?})"
        );
    }

    // Placement: zones with maxSkew 1, never two brokers on one node.
    let spread = pod["topologySpreadConstraints"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["topologyKey"] == "topology.kubernetes.io/zone")
        .unwrap_or_else(|| panic!("{origin}: no spread over topology.kubernetes.io/zone"));
    assert_eq!(spread["maxSkew"], 1, "{origin}: zone maxSkew");
    assert!(selects(
        &spread["labelSelector"]["matchLabels"],
        &pod_labels
    ));
    let anti = &pod["affinity"]["podAntiAffinity"];
    let hostname_term = |term: &Value| {
        term["topologyKey"] == "kubernetes.io/hostname"
            && selects(&term["labelSelector"]["matchLabels"], &pod_labels)
    };
    let required = anti["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .is_some_and(|terms| terms.iter().any(hostname_term));
    let preferred = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .is_some_and(|terms| terms.iter().any(|t| hostname_term(&t["podAffinityTerm"])));
    match placement {
        Placement::Spread => {
            assert_eq!(
                spread["whenUnsatisfiable"], "DoNotSchedule",
                "{origin}: zone spread"
            );
            assert!(
                required,
                "{origin}: hostname anti-affinity must be required"
            );
        }
        Placement::SingleNode => {
            // A node without a zone label fails a DoNotSchedule zone constraint outright.
            assert_eq!(
                spread["whenUnsatisfiable"], "ScheduleAnyway",
                "{origin}: zone spread"
            );
            assert!(
                preferred && !required,
                "{origin}: one node: anti-affinity is a preference"
            );
        }
    }

    // PodDisruptionBudget: one broker at a time.
    let pdb = b.one("PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"], "policy/v1", "{origin}: PDB apiVersion");
    assert_eq!(
        pdb["spec"]["maxUnavailable"], 1,
        "{origin}: PDB maxUnavailable"
    );
    assert!(
        selects(&pdb["spec"]["selector"]["matchLabels"], &pod_labels),
        "{origin}: PDB selector"
    );

    // Runs as the image's non-root user, and can write its volume.
    let security = &pod["securityContext"];
    assert_eq!(security["runAsNonRoot"], true, "{origin}: runAsNonRoot");
    assert_eq!(
        security["fsGroup"], security["runAsGroup"],
        "{origin}: volume group"
    );

    check_rbac(
        b,
        pod["serviceAccountName"]
            .as_str()
            .expect("serviceAccountName"),
        namespace,
    );
}

/// The brokers' ServiceAccount may read nodes and reconcile KafkaTopics, nothing else.
fn check_rbac(b: &Bundle, account: &str, namespace: &str) {
    let origin = &b.origin;
    b.named("ServiceAccount", account);
    let bound_to_us = |binding: &&&Value| {
        binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| {
                s["kind"] == "ServiceAccount" && s["name"] == account && s["namespace"] == namespace
            })
    };
    let mut grants: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (binding_kind, role_kind) in [
        ("ClusterRoleBinding", "ClusterRole"),
        ("RoleBinding", "Role"),
    ] {
        for binding in b.all(binding_kind).iter().filter(bound_to_us) {
            assert_eq!(
                binding["roleRef"]["kind"], role_kind,
                "{origin}: {binding_kind} roleRef"
            );
            let role = b.named(
                role_kind,
                binding["roleRef"]["name"].as_str().expect("roleRef"),
            );
            for rule in role["rules"].as_array().into_iter().flatten() {
                for group in rule["apiGroups"].as_array().into_iter().flatten() {
                    for resource in rule["resources"].as_array().into_iter().flatten() {
                        for verb in rule["verbs"].as_array().into_iter().flatten() {
                            let scope = if role_kind == "ClusterRole" {
                                "cluster"
                            } else {
                                "namespace"
                            };
                            grants.insert((
                                scope.to_string(),
                                format!(
                                    "{}/{}",
                                    group.as_str().unwrap_or("?"),
                                    resource.as_str().unwrap_or("?")
                                ),
                                verb.as_str().unwrap_or("?").to_string(),
                            ));
                        }
                    }
                }
            }
        }
    }
    let crd = b.named("CustomResourceDefinition", "kafkatopics.rivulet.io");
    let group = crd["spec"]["group"].as_str().expect("group");
    let plural = crd["spec"]["names"]["plural"].as_str().expect("plural");
    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    expected.insert(("cluster".into(), "/nodes".into(), "get".into()));
    for verb in ["get", "list", "watch", "patch"] {
        expected.insert(("namespace".into(), format!("{group}/{plural}"), verb.into()));
    }
    for verb in ["get", "patch"] {
        expected.insert((
            "namespace".into(),
            format!("{group}/{plural}/status"),
            verb.into(),
        ));
    }
    assert_eq!(grants, expected, "{origin}: the brokers' permissions");
}

#[test]
fn every_overlay_keeps_the_broker_invariants() {
    let bundles = bundles();
    assert!(!bundles.is_empty());
    for (bundle, placement) in &bundles {
        check_brokers(bundle, *placement);
    }
}

/// What makes each overlay what it is, from the rendered overlays or, without kustomize, from
/// the overlays' own patch files.
#[derive(Debug)]
struct OverlayFacts {
    dev_image: String,
    zones_min_domains: Value,
    external_env: Vec<Value>,
    external_services: Vec<Value>,
    external_replicas: u64,
}

fn pod_spec(b: &Bundle) -> Value {
    b.one("StatefulSet")["spec"]["template"]["spec"].clone()
}

fn overlay_facts() -> OverlayFacts {
    if kustomize_available().is_some() {
        let dev = render_with_kubectl("overlays/dev");
        let zones = render_with_kubectl("overlays/three-zones");
        let external = render_with_kubectl("overlays/external");
        return OverlayFacts {
            dev_image: pod_spec(&dev)["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            zones_min_domains: pod_spec(&zones)["topologySpreadConstraints"][0]["minDomains"]
                .clone(),
            external_env: pod_spec(&external)["containers"][0]["env"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            external_services: external.all("Service").into_iter().cloned().collect(),
            external_replicas: external.one("StatefulSet")["spec"]["replicas"]
                .as_u64()
                .unwrap_or_default(),
        };
    }
    eprintln!("no kubectl with kustomize v5: checking the overlays' patch files");
    let k8s = repo().join("k8s");
    let load = |rel: &str| parse_yaml(&read(&k8s.join(rel)), rel);
    let base_image = load("base/kustomization.yaml")[0]["images"][0].clone();
    let dev_image = load("overlays/dev/kustomization.yaml")[0]["images"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == base_image["newName"])
        .map(|i| {
            format!(
                "{}:{}",
                i["newName"].as_str().unwrap_or_default(),
                i["newTag"].as_str().unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let zones = load("overlays/three-zones/statefulset.yaml").remove(0);
    let base_sts = load("base/statefulset.yaml").remove(0);
    let mut external_env = base_sts["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let component_patch = load("components/external-listener/statefulset-patch.yaml").remove(0);
    external_env.extend(
        component_patch
            .as_array()
            .into_iter()
            .flatten()
            .filter(|op| {
                op["op"] == "add" && op["path"] == "/spec/template/spec/containers/0/env/-"
            })
            .map(|op| op["value"].clone()),
    );
    let domain = load("components/external-listener/kustomization.yaml")[0]["configMapGenerator"]
        [0]["literals"][0]
        .as_str()
        .and_then(|l| l.strip_prefix("domain="))
        .unwrap_or_default()
        .to_string();
    let mut external_services = load("components/external-listener/services.yaml");
    for svc in &mut external_services {
        let annotation =
            &mut svc["metadata"]["annotations"]["external-dns.alpha.kubernetes.io/hostname"];
        if let Some(host) = annotation.as_str().and_then(|h| h.strip_suffix(".DOMAIN")) {
            *annotation = Value::String(format!("{host}.{domain}"));
        }
    }
    OverlayFacts {
        dev_image,
        zones_min_domains: zones["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
            ["minDomains"]
            .clone(),
        external_env,
        external_services,
        external_replicas: zones["spec"]["replicas"].as_u64().unwrap_or_default(),
    }
}

#[test]
fn overlays_differ_where_they_should() {
    let facts = overlay_facts();
    assert_eq!(
        facts.dev_image, "rivulet:dev",
        "the dev overlay runs the image docker/ builds"
    );
    assert_eq!(
        facts.zones_min_domains, 3,
        "three zones: never two voters in one zone"
    );

    let value = |name: &str| {
        facts
            .external_env
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["value"].as_str())
            .unwrap_or_else(|| panic!("external: env {name} is not set"))
            .to_string()
    };
    let advertised: BTreeMap<String, u16> = value("RIVULET_ADVERTISED_LISTENERS")
        .split(',')
        .map(listener)
        .collect();
    let listeners: BTreeMap<String, u16> = value("RIVULET_LISTENERS")
        .split(',')
        .map(listener)
        .collect();
    assert_eq!(
        advertised.keys().collect::<Vec<_>>(),
        listeners
            .keys()
            .filter(|l| *l != "CONTROLLER")
            .collect::<Vec<_>>(),
        "external: every client listener is advertised"
    );
    assert_eq!(
        advertised.get("EXTERNAL"),
        listeners.get("EXTERNAL"),
        "external: EXTERNAL port"
    );
    assert!(
        value("RIVULET_ADVERTISED_LISTENERS").contains("EXTERNAL://$(POD_NAME)."),
        "external: each broker advertises its own name"
    );
    assert!(facts.external_replicas >= 3);
    for n in 0..facts.external_replicas {
        let name = format!("rivulet-{n}-external");
        let svc = facts
            .external_services
            .iter()
            .find(|s| s["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("external: no Service {name} for broker {n}"));
        assert_eq!(
            svc["spec"]["selector"]["statefulset.kubernetes.io/pod-name"],
            format!("rivulet-{n}"),
            "external: {name} must reach broker {n} only"
        );
        let host = svc["metadata"]["annotations"]["external-dns.alpha.kubernetes.io/hostname"]
            .as_str()
            .unwrap_or_default();
        assert!(
            host.starts_with(&format!("rivulet-{n}.")) && !host.ends_with(".DOMAIN"),
            "external: {name} has no DNS name ({host:?})"
        );
    }
}

/// A minimal OpenAPI v3 (structural schema) check: types, required, bounds, enums and
/// additionalProperties, which is all the KafkaTopic schema uses besides patterns.
fn schema_errors(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let ty = schema["type"].as_str().unwrap_or_default();
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        errors.push(format!("{path}: expected {ty}, got {value}"));
        return;
    }
    if let Some(min) = schema["minimum"].as_i64() {
        if value.as_i64().is_some_and(|v| v < min) {
            errors.push(format!("{path}: {value} < {min}"));
        }
    }
    if let Some(max) = schema["maximum"].as_i64() {
        if value.as_i64().is_some_and(|v| v > max) {
            errors.push(format!("{path}: {value} > {max}"));
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            errors.push(format!("{path}: {value} not in {options:?}"));
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(required.as_str().unwrap_or_default()) {
                errors.push(format!("{path}: missing {required}"));
            }
        }
        for (key, v) in object {
            let sub = if let Some(s) = schema["properties"].get(key) {
                s
            } else if schema["additionalProperties"].is_object() {
                &schema["additionalProperties"]
            } else if schema["properties"].is_object() {
                errors.push(format!("{path}: unknown field {key}"));
                continue;
            } else {
                continue;
            };
            schema_errors(sub, v, &format!("{path}.{key}"), errors);
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            schema_errors(&schema["items"], item, &format!("{path}[{i}]"), errors);
        }
    }
}

#[test]
fn kafkatopic_crd_matches_the_reconciler_contract() {
    let path = repo().join("k8s/crd/kafkatopics.rivulet.io.yaml");
    let crd = parse_yaml(&read(&path), "the KafkaTopic CRD").remove(0);
    let spec = &crd["spec"];
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(spec["group"], "rivulet.io");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "KafkaTopic");
    assert_eq!(
        crd["metadata"]["name"],
        format!(
            "{}.{}",
            spec["names"]["plural"].as_str().unwrap(),
            "rivulet.io"
        )
    );
    let versions = spec["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!(
        (v["served"].clone(), v["storage"].clone()),
        (json!(true), json!(true))
    );
    assert!(
        v["subresources"]["status"].is_object(),
        "status is a subresource"
    );
    let columns: Vec<&str> = v["additionalPrinterColumns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for column in ["Topic", "Partitions", "Replicas", "Ready", "Age"] {
        assert!(
            columns.contains(&column),
            "printer column {column} missing: {columns:?}"
        );
    }

    let schema = &v["schema"]["openAPIV3Schema"];
    let topic_spec = &schema["properties"]["spec"];
    let required: BTreeSet<&str> = topic_spec["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        required,
        BTreeSet::from(["partitions", "replicas"]),
        "topicName defaults to metadata.name"
    );
    assert_eq!(
        topic_spec["properties"]["topicName"]["pattern"],
        "^[a-zA-Z0-9._-]+$"
    );
    assert_eq!(topic_spec["properties"]["topicName"]["maxLength"], 249);
    let status = &schema["properties"]["status"]["properties"];
    for field in ["observedGeneration", "topicId", "conditions"] {
        assert!(status[field].is_object(), "status.{field} missing");
    }
    let condition = &status["conditions"]["items"]["properties"];
    for field in ["type", "status", "reason", "message", "lastTransitionTime"] {
        assert!(condition[field].is_object(), "condition.{field} missing");
    }

    // The example is a valid KafkaTopic with a documented delete policy.
    let example_path = repo().join("k8s/examples/kafkatopic-orders.yaml");
    let example = parse_yaml(&read(&example_path), "the KafkaTopic example").remove(0);
    assert_eq!(
        example["apiVersion"],
        format!("{}/{}", spec["group"].as_str().unwrap(), "v1alpha1")
    );
    assert_eq!(example["kind"], "KafkaTopic");
    let mut errors = Vec::new();
    schema_errors(schema, &example, "example", &mut errors);
    assert!(
        errors.is_empty(),
        "the example does not match the CRD: {errors:?}"
    );
    let name = example["spec"]["topicName"].as_str().expect("topicName");
    assert!(name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
    let policy = &example["metadata"]["annotations"]["rivulet.io/delete-policy"];
    assert!(
        policy == "delete" || policy == "retain",
        "delete policy {policy}"
    );

    // And the schema really rejects what Kafka would reject.
    for (field, bad) in [
        ("partitions", json!(0)),
        ("replicas", json!(0)),
        ("partitions", json!("6")),
    ] {
        let mut topic = example.clone();
        topic["spec"][field] = bad.clone();
        let mut errors = Vec::new();
        schema_errors(schema, &topic, "topic", &mut errors);
        assert!(!errors.is_empty(), "spec.{field}={bad} was accepted");
    }
    let mut topic = example.clone();
    topic["spec"]["config"]["retention.ms"] = json!(604800000);
    let mut errors = Vec::new();
    schema_errors(schema, &topic, "topic", &mut errors);
    assert!(!errors.is_empty(), "config values must be strings");
}

//! Kubernetes awareness, used only when running in a pod: the broker id from the StatefulSet
//! ordinal, the rack from the node's `topology.kubernetes.io/zone` label (read through the
//! Kubernetes API), the advertised host from the pod's stable DNS name, and the quorum voters
//! from the StatefulSet name. Explicitly configured properties always win.
//!
//! The submodules hold the KafkaTopic custom resource and its reconciler, which the active
//! controller runs (see [`runner`]).

pub mod condition;
pub mod kafka_topic;
pub mod plan;
pub mod reconciler;
pub mod runner;
pub mod topic_id;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use tracing::{info, warn};

use crate::config::{BrokerConfig, ConfigError, Origin, Toggle};

/// The zone label Kubernetes puts on nodes.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("kubernetes.enabled=true but {0}")]
    NotInPod(String),
    #[error("Kubernetes API: {0}")]
    Api(String),
}

/// What the pod's environment says about it (downward API variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEnv {
    pub pod_name: String,
    pub namespace: String,
    pub headless_service: String,
    pub node_name: Option<String>,
    pub cluster_domain: Option<String>,
    pub voter_count: u32,
}

impl PodEnv {
    /// Reads POD_NAME (or HOSTNAME), POD_NAMESPACE, HEADLESS_SERVICE, NODE_NAME,
    /// CLUSTER_DOMAIN and RIVULET_VOTER_COUNT.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Option<PodEnv> {
        let pod_name = get("POD_NAME").or_else(|| get("HOSTNAME"))?;
        let namespace = get("POD_NAMESPACE")?;
        let (statefulset, _) = split_ordinal(&pod_name)?;
        Some(PodEnv {
            headless_service: get("HEADLESS_SERVICE")
                .unwrap_or_else(|| format!("{statefulset}-headless")),
            pod_name,
            namespace,
            node_name: get("NODE_NAME").filter(|n| !n.is_empty()),
            cluster_domain: get("CLUSTER_DOMAIN").filter(|d| !d.is_empty()),
            voter_count: get("RIVULET_VOTER_COUNT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(3)
                .max(1),
        })
    }

    fn dns_name(&self, pod: &str) -> String {
        let mut name = format!("{pod}.{}.{}.svc", self.headless_service, self.namespace);
        if let Some(domain) = &self.cluster_domain {
            name.push('.');
            name.push_str(domain);
        }
        name
    }
}

/// `rivulet-2` -> ("rivulet", 2).
pub fn split_ordinal(pod_name: &str) -> Option<(&str, i32)> {
    let (set, ordinal) = pod_name.rsplit_once('-')?;
    let ordinal: i32 = ordinal.parse().ok()?;
    (!set.is_empty() && ordinal >= 0).then_some((set, ordinal))
}

/// The properties a pod derives for itself, leaving explicitly set ones alone.
pub fn derived_properties(
    config: &BrokerConfig,
    pod: &PodEnv,
    rack: Option<String>,
) -> Vec<(&'static str, String)> {
    let explicit = |key: &str| config.properties.origin(key).is_some();
    let mut out = Vec::new();
    let Some((statefulset, ordinal)) = split_ordinal(&pod.pod_name) else {
        return out;
    };
    if !explicit("node.id") && !explicit("broker.id") {
        out.push(("node.id", ordinal.to_string()));
    }
    if !explicit("broker.rack") {
        if let Some(rack) = rack {
            out.push(("broker.rack", rack));
        }
    }
    if !explicit("advertised.listeners") {
        let host = pod.dns_name(&pod.pod_name);
        let advertised: Vec<String> = config
            .listeners
            .iter()
            .map(|l| format!("{}://{}:{}", l.name, host, l.port))
            .collect();
        out.push(("advertised.listeners", advertised.join(",")));
    }
    if !explicit("controller.quorum.voters") {
        let port = config.controller_listener.port;
        let voters: Vec<String> = (0..pod.voter_count as i32)
            .map(|i| format!("{i}@{}:{port}", pod.dns_name(&format!("{statefulset}-{i}"))))
            .collect();
        out.push(("controller.quorum.voters", voters.join(",")));
    }
    if !explicit("kubernetes.namespace") {
        out.push(("kubernetes.namespace", pod.namespace.clone()));
    }
    out
}

async fn node_zone(node_name: &str) -> Result<Option<String>, K8sError> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| K8sError::Api(e.to_string()))?;
    let nodes: Api<Node> = Api::all(client);
    let node = nodes
        .get(node_name)
        .await
        .map_err(|e| K8sError::Api(e.to_string()))?;
    Ok(node
        .metadata
        .labels
        .and_then(|l| l.get(ZONE_LABEL).cloned()))
}

/// Whether this process runs in a pod: the in-cluster API variables are set and the pod's
/// identity can be read from its environment. What `auto` means for the Kubernetes switches.
pub fn in_pod() -> bool {
    std::env::var("KUBERNETES_SERVICE_HOST").is_ok()
        && PodEnv::from_env(|k| std::env::var(k).ok()).is_some()
}

/// Applies the pod identity when `kubernetes.enabled` says so (auto: inside a pod).
pub async fn resolve_pod_identity(config: BrokerConfig) -> Result<BrokerConfig, K8sError> {
    let pod = PodEnv::from_env(|k| std::env::var(k).ok());
    let enabled = match config.kubernetes {
        Toggle::Off => false,
        Toggle::On => true,
        Toggle::Auto => in_pod(),
    };
    if !enabled {
        return Ok(config);
    }
    let pod = pod.ok_or_else(|| {
        K8sError::NotInPod(
            "POD_NAME (or HOSTNAME as <statefulset>-<ordinal>) and POD_NAMESPACE must be set"
                .to_string(),
        )
    })?;
    let rack = match (&pod.node_name, config.properties.origin("broker.rack")) {
        (Some(node), None) => match node_zone(node).await {
            Ok(zone) => zone,
            Err(e) => {
                warn!(node = %node, error = %e, "cannot read the node's zone label; running without a rack");
                None
            }
        },
        _ => None,
    };
    let mut props = config.properties.clone();
    for (key, value) in derived_properties(&config, &pod, rack) {
        info!(property = key, value = %value, "derived from the pod");
        props.set(key, value, Origin::Environment);
    }
    Ok(BrokerConfig::from_properties(props)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn ordinal_from_pod_name() {
        assert_eq!(split_ordinal("rivulet-2"), Some(("rivulet", 2)));
        assert_eq!(split_ordinal("my-kafka-10"), Some(("my-kafka", 10)));
        assert_eq!(split_ordinal("rivulet"), None);
        assert_eq!(split_ordinal("rivulet-x"), None);
    }

    #[test]
    fn pod_derives_id_rack_advertised_and_voters() {
        let mut p = Properties::default();
        p.set(
            "listeners",
            "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
            Origin::File,
        );
        let config = BrokerConfig::from_properties(p).unwrap();
        let pod = PodEnv::from_env(env(&[
            ("POD_NAME", "rivulet-1"),
            ("POD_NAMESPACE", "kafka"),
            ("HEADLESS_SERVICE", "rivulet-headless"),
            ("NODE_NAME", "node-a"),
        ]))
        .unwrap();
        let derived: HashMap<&str, String> =
            derived_properties(&config, &pod, Some("eu-west-1b".to_string()))
                .into_iter()
                .collect();
        assert_eq!(derived["node.id"], "1");
        assert_eq!(derived["broker.rack"], "eu-west-1b");
        assert_eq!(
            derived["advertised.listeners"],
            "PLAINTEXT://rivulet-1.rivulet-headless.kafka.svc:9092"
        );
        assert_eq!(
            derived["controller.quorum.voters"],
            "0@rivulet-0.rivulet-headless.kafka.svc:9093,1@rivulet-1.rivulet-headless.kafka.svc:9093,2@rivulet-2.rivulet-headless.kafka.svc:9093"
        );
    }

    #[test]
    fn explicit_properties_win() {
        let mut p = Properties::default();
        p.set("node.id", "7", Origin::File);
        p.set("controller.quorum.voters", "7@x:9093", Origin::File);
        let config = BrokerConfig::from_properties(p).unwrap();
        let pod = PodEnv::from_env(env(&[
            ("HOSTNAME", "rivulet-0"),
            ("POD_NAMESPACE", "default"),
        ]))
        .unwrap();
        let derived: HashMap<&str, String> = derived_properties(&config, &pod, None)
            .into_iter()
            .collect();
        assert!(!derived.contains_key("node.id"));
        assert!(!derived.contains_key("controller.quorum.voters"));
        assert!(!derived.contains_key("broker.rack"));
        assert_eq!(pod.headless_service, "rivulet-headless");
    }
}

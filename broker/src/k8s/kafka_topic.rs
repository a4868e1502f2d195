//! The `KafkaTopic` custom resource (`rivulet.io/v1alpha1`): a Kafka topic declared as a
//! Kubernetes object. The Rust type is the reconciler's view of `k8s/crd/kafkatopics.rivulet.io.yaml`;
//! a unit test keeps the two identical in fields, types and validation.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Annotation choosing what deleting the resource does to the topic.
pub const DELETE_POLICY_ANNOTATION: &str = "rivulet.io/delete-policy";

/// Finalizer the reconciler keeps on resources with `rivulet.io/delete-policy: delete`.
pub const TOPIC_DELETION_FINALIZER: &str = "rivulet.io/topic-deletion";

/// The condition type the reconciler maintains.
pub const READY: &str = "Ready";

/// The desired topic.
// One `printcolumn(...)` per column is kube-derive's syntax; clippy reads the repeated keys
// inside them as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rivulet.io",
    version = "v1alpha1",
    kind = "KafkaTopic",
    plural = "kafkatopics",
    singular = "kafkatopic",
    shortname = "kt",
    category = "rivulet",
    namespaced,
    status = "KafkaTopicStatus",
    derive = "PartialEq",
    doc = "A Kafka topic managed by Rivulet.",
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topicName"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Topic ID",
        type_ = "string",
        priority = 1,
        json_path = ".status.topicId"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicSpec {
    /// Kafka topic name, when it cannot be the resource name. Defaults to metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub topic_name: Option<String>,
    /// Number of partitions; can be raised, never lowered.
    #[schemars(range(min = 1, max = 2147483647))]
    pub partitions: i32,
    /// Replication factor.
    #[schemars(range(min = 1, max = 32767))]
    pub replicas: i32,
    /// Topic configs by Kafka name; configs not listed keep the broker defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// What the reconciler last observed and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    /// metadata.generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The topic's id in the cluster (Kafka's base64 UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Conditions, one per type; the reconciler sets Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One status condition (the shape of Kubernetes' `metav1.Condition`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    /// CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A condition's status, spelled as Kubernetes spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// What deleting a KafkaTopic does to its topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePolicy {
    /// The topic and its data stay (the default).
    Retain,
    /// The topic is deleted, then the resource.
    Delete,
}

impl KafkaTopic {
    /// The Kafka topic this resource declares: `spec.topicName`, else `metadata.name`.
    pub fn topic_name(&self) -> String {
        self.spec
            .topic_name
            .clone()
            .unwrap_or_else(|| self.name_any())
    }

    /// The `rivulet.io/delete-policy` annotation; `Err` carries a value that is neither.
    pub fn delete_policy(&self) -> Result<DeletePolicy, String> {
        match self
            .annotations()
            .get(DELETE_POLICY_ANNOTATION)
            .map(|v| v.trim())
        {
            None | Some("retain") => Ok(DeletePolicy::Retain),
            Some("delete") => Ok(DeletePolicy::Delete),
            Some(other) => Err(other.to_string()),
        }
    }

    /// Whether the deletion finalizer is on the resource.
    pub fn has_deletion_finalizer(&self) -> bool {
        self.finalizers()
            .iter()
            .any(|f| f == TOPIC_DELETION_FINALIZER)
    }

    /// The Ready condition, if the status carries one.
    pub fn ready_condition(&self) -> Option<&Condition> {
        self.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;
    use serde_json::{json, Value};

    const CRD_YAML: &str = include_str!("../../../k8s/crd/kafkatopics.rivulet.io.yaml");

    /// Drops what does not change the API (descriptions, `nullable` that `Option` fields
    /// derive, the title kube-derive adds), sorts `required` (a set) and makes every number a
    /// float, so `1` == `1.0`.
    fn normalize(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "description" | "nullable" | "title"))
                    .map(|(k, v)| {
                        let mut v = normalize(v);
                        if let (Value::Array(items), "required") = (&mut v, k.as_str()) {
                            items.sort_by_key(|i| i.to_string());
                        }
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
            Value::Number(n) => json!(n.as_f64()),
            other => other.clone(),
        }
    }

    #[test]
    fn the_rust_type_and_the_crd_yaml_agree() {
        let mut yaml: Value = serde_saphyr::from_str(CRD_YAML).unwrap();
        let derived = serde_json::to_value(KafkaTopic::crd()).unwrap();
        assert_eq!(yaml["apiVersion"], derived["apiVersion"]);
        assert_eq!(yaml["kind"], derived["kind"]);
        assert_eq!(yaml["metadata"]["name"], derived["metadata"]["name"]);

        // Filled in by the API server when absent, so only the YAML spells it out.
        let names = yaml["spec"]["names"].as_object_mut().unwrap();
        assert_eq!(names.remove("listKind"), Some(json!("KafkaTopicList")));
        // Every object has these; the YAML declares them, kube-derive leaves them implicit.
        let root = yaml["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            .as_object_mut()
            .unwrap();
        assert_eq!(root.remove("apiVersion"), Some(json!({"type": "string"})));
        assert_eq!(root.remove("kind"), Some(json!({"type": "string"})));
        assert_eq!(root.remove("metadata"), Some(json!({"type": "object"})));

        let (yaml, derived) = (normalize(&yaml["spec"]), normalize(&derived["spec"]));
        let yaml_schema = &yaml["versions"][0]["schema"]["openAPIV3Schema"];
        let derived_schema = &derived["versions"][0]["schema"]["openAPIV3Schema"];
        for part in ["spec", "status"] {
            assert_eq!(
                yaml_schema["properties"][part], derived_schema["properties"][part],
                "{part} differs between k8s/crd/kafkatopics.rivulet.io.yaml and KafkaTopic"
            );
        }
        assert_eq!(yaml, derived, "the CRD YAML and the KafkaTopic type differ");
    }

    #[test]
    fn topic_name_and_delete_policy() {
        let mut topic = KafkaTopic::new(
            "orders",
            KafkaTopicSpec {
                topic_name: None,
                partitions: 1,
                replicas: 1,
                config: BTreeMap::new(),
            },
        );
        assert_eq!(topic.topic_name(), "orders");
        assert_eq!(topic.delete_policy(), Ok(DeletePolicy::Retain));
        topic.spec.topic_name = Some("Orders_V1".to_string());
        assert_eq!(topic.topic_name(), "Orders_V1");
        for (value, policy) in [
            ("delete", Ok(DeletePolicy::Delete)),
            ("retain", Ok(DeletePolicy::Retain)),
            ("Delete", Err("Delete".to_string())),
        ] {
            topic
                .annotations_mut()
                .insert(DELETE_POLICY_ANNOTATION.to_string(), value.to_string());
            assert_eq!(topic.delete_policy(), policy);
        }
        assert!(!topic.has_deletion_finalizer());
        topic
            .finalizers_mut()
            .push(TOPIC_DELETION_FINALIZER.to_string());
        assert!(topic.has_deletion_finalizer());
    }

    #[test]
    fn status_round_trips_in_the_api_shape() {
        let text = r#"{"observedGeneration":3,"topicId":"ASNFZ4mrze_-3LqYdlQyEA","conditions":[
            {"type":"Ready","status":"False","reason":"PartitionDecreaseNotAllowed","message":"m",
             "lastTransitionTime":"2024-05-01T10:00:00Z","observedGeneration":3}]}"#;
        let status: KafkaTopicStatus = serde_json::from_str(text).unwrap();
        assert_eq!(status.conditions[0].status, ConditionStatus::False);
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }
}

//! Reconciles one KafkaTopic: keeps the deletion finalizer in line with the delete policy,
//! creates, grows or re-configures the topic through the controller (the same quorum requests
//! and validation as CreateTopics, CreatePartitions and IncrementalAlterConfigs), and writes the
//! outcome to the resource's status. Deleting a resource with policy `delete` deletes the topic
//! recorded in `status.topicId`, then releases the finalizer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use raft_controller::{ControllerError, CreateTopicSpec, MetadataImage, QuorumError};
use serde_json::json;
use tracing::{info, warn};

use super::condition::{reason, with_ready, Verdict};
use super::kafka_topic::{DeletePolicy, KafkaTopic, KafkaTopicStatus, TOPIC_DELETION_FINALIZER};
use super::plan::{self, Change, Plan};
use super::topic_id;
use crate::parts::Parts;

/// How often a resource is looked at again without any change: repairs drift the metadata
/// watch cannot see and retries refusals that may pass later (more brokers registered).
pub const RESYNC: Duration = Duration::from_secs(60);

/// How long a reconciliation waits for this broker's image to show what the controller
/// committed before it reports.
const APPLY_WAIT: Duration = Duration::from_secs(5);

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A reconciliation that must be retried (the resource's status is left as it was).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("metadata quorum: {0}")]
    Quorum(#[from] QuorumError),
    #[error("topic {topic} changed while being reconciled: {source}")]
    Raced {
        topic: String,
        source: ControllerError,
    },
    #[error("the controller refused to delete topic {topic}: {source}")]
    DeleteRefused {
        topic: String,
        source: ControllerError,
    },
    #[error("the controller gave no answer for topic {0}")]
    NoAnswer(String),
}

/// What every reconciliation shares.
#[derive(Debug)]
pub struct Reconciler {
    broker: Arc<Parts>,
    api: Api<KafkaTopic>,
    /// Every KafkaTopic of the namespace, as the controller's watch last saw them.
    store: Store<KafkaTopic>,
    /// Consecutive failures per resource uid, for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Reconciler {
    pub(crate) fn new(
        broker: Arc<Parts>,
        api: Api<KafkaTopic>,
        store: Store<KafkaTopic>,
    ) -> Reconciler {
        Reconciler {
            broker,
            api,
            store,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

fn failure_key(topic: &KafkaTopic) -> String {
    topic.uid().unwrap_or_else(|| topic.name_any())
}

/// The kube-runtime reconcile function. It works on the resource as the API server has it now,
/// not on the watch cache's copy, which can lag behind this reconciler's own last status write
/// (and would then, say, forget the topic id it just recorded).
pub async fn reconcile(
    topic: Arc<KafkaTopic>,
    cx: Arc<Reconciler>,
) -> Result<Action, ReconcileError> {
    let Some(current) = cx.api.get_opt(&topic.name_any()).await? else {
        cx.failures.lock().remove(&failure_key(&topic));
        return Ok(Action::await_change());
    };
    let action = reconcile_once(&current, &cx).await?;
    cx.failures.lock().remove(&failure_key(&topic));
    Ok(action)
}

/// The kube-runtime error policy: retry with exponential backoff per resource.
pub fn error_policy(topic: Arc<KafkaTopic>, error: &ReconcileError, cx: Arc<Reconciler>) -> Action {
    let failures = {
        let mut map = cx.failures.lock();
        let n = map.entry(failure_key(&topic)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = BACKOFF_FIRST
        .saturating_mul(1u32 << failures.saturating_sub(1).min(10))
        .min(BACKOFF_MAX);
    warn!(
        resource = %topic.name_any(),
        namespace = topic.namespace().unwrap_or_default(),
        failures,
        retry_in_ms = delay.as_millis() as u64,
        error = %error,
        "KafkaTopic reconciliation failed"
    );
    Action::requeue(delay)
}

async fn reconcile_once(topic: &KafkaTopic, cx: &Reconciler) -> Result<Action, ReconcileError> {
    let policy = topic.delete_policy();
    if topic.meta().deletion_timestamp.is_some() {
        return finalize(topic, policy, cx).await;
    }
    let wants_finalizer = policy == Ok(DeletePolicy::Delete);
    let updated;
    let topic = if wants_finalizer != topic.has_deletion_finalizer() {
        updated = set_finalizer(topic, wants_finalizer, cx).await?;
        &updated
    } else {
        topic
    };
    let managed = topic.status.as_ref().and_then(|s| s.topic_id.clone());
    let (verdict, topic_id) = match policy {
        Err(value) => (
            Verdict::not_ready(
                reason::INVALID_DELETE_POLICY,
                format!("annotation rivulet.io/delete-policy is {value:?}; use \"retain\" or \"delete\""),
            ),
            managed,
        ),
        Ok(_) => apply(topic, managed, cx).await?,
    };
    write_status(topic, &verdict, topic_id, cx).await?;
    Ok(Action::requeue(RESYNC))
}

/// Creates or changes the topic as the spec says; the verdict and the managed topic's id.
async fn apply(
    topic: &KafkaTopic,
    managed: Option<String>,
    cx: &Reconciler,
) -> Result<(Verdict, Option<String>), ReconcileError> {
    let name = topic.topic_name();
    if let Err(verdict) = plan::check_spec(&name, &topic.spec) {
        return Ok((verdict, managed));
    }
    if let Some(owner) = claimant(topic, &name, &cx.store, true) {
        let message = format!("topic {name} is declared by KafkaTopic {owner}, created earlier; this resource is not applied");
        return Ok((Verdict::not_ready(reason::TOPIC_CLAIMED, message), managed));
    }
    let image = cx.broker.quorum.image();
    match plan::plan(&name, &topic.spec, managed.as_deref(), &image) {
        Plan::Refuse(verdict) => Ok((verdict, managed)),
        Plan::Create => create(topic, &name, managed, cx).await,
        Plan::Change(change) => update(topic, &name, change, cx).await,
    }
}

async fn create(
    topic: &KafkaTopic,
    name: &str,
    managed: Option<String>,
    cx: &Reconciler,
) -> Result<(Verdict, Option<String>), ReconcileError> {
    let spec = CreateTopicSpec {
        name: name.to_string(),
        num_partitions: topic.spec.partitions,
        replication_factor: i16::try_from(topic.spec.replicas).unwrap_or(i16::MAX),
        assignments: Default::default(),
        configs: topic.spec.config.clone(),
    };
    let answer = cx
        .broker
        .quorum
        .create_topics(vec![spec], false)
        .await?
        .into_iter()
        .next();
    match answer {
        Some(Ok(created)) => {
            info!(
                topic = %name,
                resource = %topic.name_any(),
                partitions = created.num_partitions,
                replication_factor = created.replication_factor,
                "created topic for KafkaTopic"
            );
            await_image(cx, |image| image.topic_ids.contains_key(&created.id)).await;
            let message = describe(
                name,
                created.num_partitions,
                created.replication_factor.into(),
                topic.spec.config.len(),
            );
            Ok((
                Verdict::ready(reason::CREATED, message),
                Some(topic_id::encode(&created.id)),
            ))
        }
        Some(Err(e @ ControllerError::TopicAlreadyExists(_))) => Err(ReconcileError::Raced {
            topic: name.to_string(),
            source: e,
        }),
        Some(Err(e)) => Ok((refused_by_controller(&e), managed)),
        None => Err(ReconcileError::NoAnswer(name.to_string())),
    }
}

async fn update(
    topic: &KafkaTopic,
    name: &str,
    change: Change,
    cx: &Reconciler,
) -> Result<(Verdict, Option<String>), ReconcileError> {
    let id = topic_id::encode(&change.topic_id);
    let quorum = &cx.broker.quorum;
    if !change.config_ops.is_empty() {
        match quorum
            .alter_topic_configs(name.to_string(), change.config_ops.clone(), false)
            .await?
        {
            Ok(()) => {
                info!(topic = %name, resource = %topic.name_any(), changes = ?change.config_ops, "altered topic configs for KafkaTopic")
            }
            Err(e) => return controller_refusal(name, e, Some(id)),
        }
    }
    if let Some(total) = change.grow_to {
        match quorum
            .create_partitions(name.to_string(), total, None, false)
            .await?
        {
            Ok(()) => {
                info!(topic = %name, resource = %topic.name_any(), partitions = total, "increased partition count for KafkaTopic")
            }
            Err(e) => return controller_refusal(name, e, Some(id)),
        }
    }
    let wanted_partitions = usize::try_from(topic.spec.partitions).unwrap_or(0);
    await_image(cx, |image| {
        image.topic(name).is_some_and(|t| {
            t.partitions.len() >= wanted_partitions && t.configs == topic.spec.config
        })
    })
    .await;
    let message = describe(
        name,
        topic.spec.partitions,
        topic.spec.replicas,
        topic.spec.config.len(),
    );
    let previous = topic
        .ready_condition()
        .filter(|c| c.status == super::kafka_topic::ConditionStatus::True);
    let verdict = if change.adopted {
        info!(topic = %name, resource = %topic.name_any(), "KafkaTopic adopted an existing topic");
        Verdict::ready(
            reason::ADOPTED,
            format!("{message} (existing topic adopted)"),
        )
    } else if !change.is_noop() {
        Verdict::ready(reason::UPDATED, message)
    } else if let Some(previous) = previous {
        // Nothing changed since the last Ready verdict: keep it as it was.
        Verdict::ready(
            previous.reason.as_deref().unwrap_or(reason::UP_TO_DATE),
            previous.message.clone().unwrap_or(message),
        )
    } else {
        Verdict::ready(reason::UP_TO_DATE, message)
    };
    Ok((verdict, Some(id)))
}

/// A controller refusal of a change: retried if the topic vanished meanwhile, else reported.
fn controller_refusal(
    name: &str,
    error: ControllerError,
    id: Option<String>,
) -> Result<(Verdict, Option<String>), ReconcileError> {
    match error {
        ControllerError::UnknownTopicOrPartition(_) => Err(ReconcileError::Raced {
            topic: name.to_string(),
            source: error,
        }),
        e => Ok((refused_by_controller(&e), id)),
    }
}

fn refused_by_controller(error: &ControllerError) -> Verdict {
    let reason = match error {
        ControllerError::InvalidConfig(_) => reason::INVALID_CONFIG,
        ControllerError::InvalidTopic(_) => reason::INVALID_TOPIC_NAME,
        ControllerError::InvalidPartitions(_) => "InvalidPartitions",
        ControllerError::InvalidReplicationFactor(_) => "InvalidReplicationFactor",
        ControllerError::InvalidReplicaAssignment(_) => "InvalidReplicaAssignment",
        _ => "RefusedByController",
    };
    Verdict::not_ready(reason, error.to_string())
}

fn describe(name: &str, partitions: i32, replicas: i32, overrides: usize) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!(
        "topic {name}: {}, replication factor {replicas}, {}",
        plural(usize::try_from(partitions).unwrap_or(0), "partition"),
        plural(overrides, "config override")
    )
}

/// Another live KafkaTopic that declares the same topic: with `older_only`, only one created
/// before `topic` (ties broken by name), which then owns the topic.
fn claimant(
    topic: &KafkaTopic,
    name: &str,
    store: &Store<KafkaTopic>,
    older_only: bool,
) -> Option<String> {
    let key = |t: &KafkaTopic| (t.meta().creation_timestamp.clone(), t.name_any());
    store
        .state()
        .iter()
        .filter(|other| other.uid() != topic.uid() && other.meta().deletion_timestamp.is_none())
        .filter(|other| other.topic_name() == name)
        .filter(|other| !older_only || key(other) < key(topic))
        .map(|other| other.name_any())
        .min()
}

/// The resource is being deleted: with policy `delete` and the finalizer on, delete the topic
/// it manages (unless another live resource declares it), then release the finalizer.
async fn finalize(
    topic: &KafkaTopic,
    policy: Result<DeletePolicy, String>,
    cx: &Reconciler,
) -> Result<Action, ReconcileError> {
    if !topic.has_deletion_finalizer() {
        return Ok(Action::await_change());
    }
    if policy == Ok(DeletePolicy::Delete) {
        let image = cx.broker.quorum.image();
        let managed = topic
            .status
            .as_ref()
            .and_then(|s| s.topic_id.as_deref())
            .and_then(topic_id::decode);
        let name = managed.and_then(|id| image.topic_ids.get(&id).cloned());
        match (managed, name) {
            (Some(id), Some(name)) => {
                if let Some(other) = claimant(topic, &name, &cx.store, false) {
                    info!(topic = %name, resource = %topic.name_any(), other = %other, "KafkaTopic deleted; topic kept: another KafkaTopic declares it");
                } else if !cx.broker.config.delete_topic_enable {
                    let verdict = Verdict::not_ready(
                        reason::TOPIC_DELETION_DISABLED,
                        format!("topic {name} cannot be deleted: delete.topic.enable=false; the finalizer stays"),
                    );
                    let managed = topic.status.as_ref().and_then(|s| s.topic_id.clone());
                    write_status(topic, &verdict, managed, cx).await?;
                    return Ok(Action::requeue(RESYNC));
                } else {
                    delete_topic(topic, &name, id, cx).await?;
                }
            }
            _ => {
                info!(resource = %topic.name_any(), "KafkaTopic deleted; it manages no existing topic")
            }
        }
    } else {
        info!(resource = %topic.name_any(), topic = %topic.topic_name(), "KafkaTopic deleted; topic retained");
    }
    set_finalizer(topic, false, cx).await?;
    Ok(Action::await_change())
}

async fn delete_topic(
    topic: &KafkaTopic,
    name: &str,
    id: uuid::Uuid,
    cx: &Reconciler,
) -> Result<(), ReconcileError> {
    let answer = cx
        .broker
        .quorum
        .delete_topics(vec![name.to_string()])
        .await?
        .into_iter()
        .next();
    match answer {
        Some(Ok(_)) => {
            info!(topic = %name, resource = %topic.name_any(), "deleted topic of deleted KafkaTopic");
            await_image(cx, |image| !image.topic_ids.contains_key(&id)).await;
            Ok(())
        }
        Some(Err(ControllerError::UnknownTopicOrPartition(_))) => Ok(()),
        Some(Err(e)) => Err(ReconcileError::DeleteRefused {
            topic: name.to_string(),
            source: e,
        }),
        None => Err(ReconcileError::NoAnswer(name.to_string())),
    }
}

/// Adds or removes the deletion finalizer. The patch carries the resourceVersion it was
/// computed from, so a concurrent change of the list makes it fail (and be retried) instead of
/// dropping someone else's finalizer.
async fn set_finalizer(
    topic: &KafkaTopic,
    on: bool,
    cx: &Reconciler,
) -> Result<KafkaTopic, ReconcileError> {
    let mut finalizers: Vec<String> = topic
        .finalizers()
        .iter()
        .filter(|f| *f != TOPIC_DELETION_FINALIZER)
        .cloned()
        .collect();
    if on {
        finalizers.push(TOPIC_DELETION_FINALIZER.to_string());
    }
    let patch = json!({
        "metadata": {
            "resourceVersion": topic.resource_version(),
            "finalizers": finalizers,
        }
    });
    let updated = cx
        .api
        .patch(
            &topic.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    info!(resource = %topic.name_any(), finalizer = TOPIC_DELETION_FINALIZER, on, "KafkaTopic finalizer updated");
    Ok(updated)
}

/// Writes status (observed generation, topic id, Ready condition) when it differs from what the
/// resource already shows.
async fn write_status(
    topic: &KafkaTopic,
    verdict: &Verdict,
    topic_id: Option<String>,
    cx: &Reconciler,
) -> Result<(), ReconcileError> {
    let previous = topic.status.clone().unwrap_or_default();
    let generation = topic.meta().generation;
    let next = KafkaTopicStatus {
        observed_generation: generation,
        topic_id,
        conditions: with_ready(
            &previous.conditions,
            verdict,
            generation,
            Time(Timestamp::now()),
        ),
    };
    if next == previous {
        return Ok(());
    }
    if !verdict.ready {
        warn!(resource = %topic.name_any(), reason = %verdict.reason, message = %verdict.message, "KafkaTopic not ready");
    }
    cx.api
        .patch_status(
            &topic.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": next })),
        )
        .await?;
    Ok(())
}

/// Waits (bounded) until this broker's metadata image satisfies `done`.
async fn await_image(cx: &Reconciler, done: impl Fn(&MetadataImage) -> bool) {
    let mut images = cx.broker.quorum.subscribe();
    let _ = tokio::time::timeout(APPLY_WAIT, images.wait_for(|image| done(image))).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::runtime::{reflector, watcher};

    use crate::k8s::kafka_topic::KafkaTopicSpec;

    fn resource(name: &str, topic: Option<&str>, created_s: i64, deleting: bool) -> KafkaTopic {
        let mut t = KafkaTopic::new(
            name,
            KafkaTopicSpec {
                topic_name: topic.map(str::to_string),
                partitions: 1,
                replicas: 1,
                config: Default::default(),
            },
        );
        t.metadata.namespace = Some("ns".to_string());
        t.metadata.uid = Some(format!("uid-{name}"));
        t.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created_s).unwrap()));
        if deleting {
            t.metadata.deletion_timestamp =
                Some(Time(Timestamp::from_second(created_s + 1).unwrap()));
        }
        t
    }

    #[test]
    fn the_oldest_live_resource_owns_a_topic() {
        let (store, mut writer) = reflector::store();
        let first = resource("first", Some("orders"), 100, false);
        let same_time = resource("aaa", Some("orders"), 200, false);
        let second = resource("second", Some("orders"), 200, false);
        let older_but_deleting = resource("gone", Some("orders"), 50, true);
        let other_topic = resource("other", None, 10, false);
        for t in [
            &first,
            &same_time,
            &second,
            &older_but_deleting,
            &other_topic,
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(t.clone()));
        }
        assert_eq!(claimant(&first, "orders", &store, true), None);
        assert_eq!(
            claimant(&second, "orders", &store, true).as_deref(),
            Some("aaa")
        );
        assert_eq!(
            claimant(&same_time, "orders", &store, true).as_deref(),
            Some("first")
        );
        assert_eq!(claimant(&other_topic, "other", &store, true), None);
        // On deletion any other live resource keeps the topic alive.
        assert_eq!(
            claimant(&older_but_deleting, "orders", &store, false).as_deref(),
            Some("aaa")
        );
        assert_eq!(claimant(&other_topic, "other", &store, false), None);
    }

    #[test]
    fn controller_refusals_become_reasons() {
        let reason_of = |e: ControllerError| refused_by_controller(&e).reason;
        assert_eq!(
            reason_of(ControllerError::InvalidReplicationFactor(
                "3 > 2 brokers".into()
            )),
            "InvalidReplicationFactor"
        );
        assert_eq!(
            reason_of(ControllerError::InvalidConfig("x".into())),
            "InvalidConfig"
        );
        assert_eq!(
            reason_of(ControllerError::InvalidTopic("collides".into())),
            "InvalidTopicName"
        );
        assert_eq!(
            reason_of(ControllerError::InvalidRequest("x".into())),
            "RefusedByController"
        );
        let verdict = refused_by_controller(&ControllerError::InvalidPartitions("too many".into()));
        assert!(!verdict.ready);
        assert!(verdict.message.contains("too many"));
    }

    #[test]
    fn messages_describe_the_topic() {
        assert_eq!(
            describe("orders", 6, 3, 1),
            "topic orders: 6 partitions, replication factor 3, 1 config override"
        );
        assert_eq!(
            describe("orders", 1, 1, 0),
            "topic orders: 1 partition, replication factor 1, 0 config overrides"
        );
    }
}

//! Runs the KafkaTopic reconciler in every broker that has it enabled, but lets it act only
//! while this broker is the active controller: on becoming controller it starts a kube-runtime
//! Controller watching KafkaTopics in `kubernetes.namespace`; on losing the role (or on
//! shutdown) it stops it, letting reconciliations in flight finish. No separate operator pod.
//!
//! Besides watch events and the periodic resync, every change of the cluster's topics or live
//! brokers (from the metadata image) re-reconciles all resources, so a topic deleted or altered
//! behind a resource's back is repaired at once.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller, Error as ControllerError};
use kube::runtime::watcher;
use kube::Client;
use raft_controller::MetadataImage;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use super::kafka_topic::KafkaTopic;
use super::reconciler::{self, Reconciler};
use crate::config::{BrokerConfig, Toggle};
use crate::parts::Parts;
use crate::shutdown::Shutdown;

/// How often the controller role is checked (it is a lease, not an event).
const ROLE_POLL: Duration = Duration::from_millis(500);
/// Wait before retrying when the Kubernetes client cannot be built.
const CONNECT_RETRY: Duration = Duration::from_secs(10);
/// How long reconciliations in flight may take to finish after the role is lost.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// Reconciliations of different resources running at once.
const CONCURRENCY: u16 = 4;

/// Whether this broker runs the reconciler: `kubernetes.topic.reconciler.enable`, where `auto`
/// means inside a pod.
pub fn enabled(config: &BrokerConfig) -> bool {
    match config.topic_reconciler {
        Toggle::On => true,
        Toggle::Off => false,
        Toggle::Auto => super::in_pod(),
    }
}

/// The reconciler task; returns on shutdown.
pub(crate) async fn run(ctx: Arc<Parts>, mut shutdown: Shutdown) {
    info!(
        node = ctx.config.node_id,
        "KafkaTopic reconciler enabled; active while this broker is the controller"
    );
    loop {
        if !wait_for_role(&ctx, true, &mut shutdown).await {
            return;
        }
        let client = match Client::try_default().await {
            Ok(client) => client,
            Err(e) => {
                warn!(error = %e, retry_in_s = CONNECT_RETRY.as_secs(), "KafkaTopic reconciler cannot build a Kubernetes client");
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(CONNECT_RETRY) => continue,
                }
            }
        };
        let namespace = namespace(&ctx.config, &client);
        info!(namespace = %namespace, "active controller: reconciling KafkaTopics");
        reconcile_while_controller(&ctx, client, &namespace, &mut shutdown).await;
        info!(namespace = %namespace, "stopped reconciling KafkaTopics");
        if shutdown.is_triggered() {
            return;
        }
    }
}

/// `kubernetes.namespace`, else the pod's namespace, else the client's default (kubeconfig).
fn namespace(config: &BrokerConfig, client: &Client) -> String {
    config
        .kubernetes_namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .or_else(|| {
            std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|ns| !ns.is_empty())
        })
        .unwrap_or_else(|| client.default_namespace().to_string())
}

/// Waits until this broker's controller role is `controller`; false on shutdown.
async fn wait_for_role(ctx: &Parts, controller: bool, shutdown: &mut Shutdown) -> bool {
    loop {
        if shutdown.is_triggered() {
            return false;
        }
        if ctx.quorum.is_controller() == controller {
            return true;
        }
        tokio::select! {
            _ = shutdown.wait() => return false,
            _ = tokio::time::sleep(ROLE_POLL) => {}
        }
    }
}

async fn reconcile_while_controller(
    ctx: &Arc<Parts>,
    client: Client,
    namespace: &str,
    shutdown: &mut Shutdown,
) {
    let api: Api<KafkaTopic> = Api::namespaced(client, namespace);
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(CONCURRENCY));
    let cx = Arc::new(Reconciler::new(ctx.clone(), api, controller.store()));
    let (stop, stopped) = oneshot::channel::<()>();
    let results = controller
        .reconcile_all_on(topology_changes(ctx.quorum.subscribe()))
        .graceful_shutdown_on(async move {
            let _ = stopped.await;
        })
        .run(reconciler::reconcile, reconciler::error_policy, cx)
        .for_each(|result| {
            match result {
                Ok((object, _)) => debug!(resource = %object.name, "KafkaTopic reconciled"),
                // Reported with its backoff by the error policy.
                Err(ControllerError::ReconcilerFailed(..)) => {}
                Err(ControllerError::ObjectNotFound(object)) => debug!(resource = %object.name, "KafkaTopic gone before its reconciliation"),
                Err(e) => warn!(error = %e, "KafkaTopic watch failed; retrying with backoff (is the CRD installed, may the broker list/watch kafkatopics?)"),
            }
            std::future::ready(())
        });
    tokio::pin!(results);
    tokio::select! {
        _ = &mut results => return,
        _ = wait_for_role(ctx, false, shutdown) => {}
    }
    let _ = stop.send(());
    if tokio::time::timeout(STOP_GRACE, results).await.is_err() {
        warn!(
            grace_s = STOP_GRACE.as_secs(),
            "KafkaTopic reconciliations still running after the grace period; abandoned"
        );
    }
}

/// One item whenever the cluster's topics (names, ids, partition counts, replication factors,
/// configs) or its set of live brokers change.
fn topology_changes(
    images: watch::Receiver<Arc<MetadataImage>>,
) -> impl Stream<Item = ()> + Send + 'static {
    let initial = fingerprint(&images.borrow());
    futures::stream::unfold((images, initial), |(mut images, last)| async move {
        loop {
            images.changed().await.ok()?;
            let current = fingerprint(&images.borrow_and_update());
            if current != last {
                return Some(((), (images, current)));
            }
        }
    })
}

fn fingerprint(image: &MetadataImage) -> u64 {
    let mut hasher = DefaultHasher::new();
    for (name, topic) in &image.topics {
        name.hash(&mut hasher);
        topic.id.hash(&mut hasher);
        topic.partitions.len().hash(&mut hasher);
        topic
            .partitions
            .first()
            .map(|p| p.replicas.len())
            .hash(&mut hasher);
        topic.configs.hash(&mut hasher);
    }
    for broker in image.brokers.values().filter(|b| b.is_eligible()) {
        broker.id.hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_controller::{PartitionState, TopicImage};
    use uuid::Uuid;

    fn topic(name: &str, partitions: usize, configs: &[(&str, &str)]) -> Arc<TopicImage> {
        Arc::new(TopicImage {
            name: name.to_string(),
            id: Uuid::from_u128(7),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            partitions: (0..partitions)
                .map(|p| PartitionState {
                    partition: p as i32,
                    replicas: vec![0],
                    isr: vec![0],
                    leader: 0,
                    leader_epoch: 0,
                    partition_epoch: 0,
                })
                .collect(),
        })
    }

    #[tokio::test]
    async fn topic_changes_trigger_and_leadership_changes_do_not() {
        let mut image = MetadataImage::default();
        image.topics.insert("a".into(), topic("a", 1, &[]));
        let (tx, rx) = watch::channel(Arc::new(image.clone()));
        let changes = topology_changes(rx);
        tokio::pin!(changes);

        // A leader change, an ISR change and a new log offset: no trigger.
        let mut moved = (*image.topics["a"]).clone();
        moved.partitions[0].leader_epoch = 3;
        moved.partitions[0].isr = vec![];
        image.topics.insert("a".into(), Arc::new(moved));
        image.offset = 42;
        tx.send_replace(Arc::new(image.clone()));
        let quiet = tokio::time::timeout(Duration::from_millis(100), changes.next()).await;
        assert!(
            quiet.is_err(),
            "a leadership change re-reconciled every KafkaTopic"
        );

        // A config change: one trigger.
        image
            .topics
            .insert("a".into(), topic("a", 1, &[("retention.ms", "1")]));
        tx.send_replace(Arc::new(image.clone()));
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(1), changes.next()).await,
            Ok(Some(()))
        );

        // A deleted topic: one trigger.
        image.topics.clear();
        tx.send_replace(Arc::new(image));
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(1), changes.next()).await,
            Ok(Some(()))
        );

        drop(tx);
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(1), changes.next()).await,
            Ok(None)
        );
    }
}

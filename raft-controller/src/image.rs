//! The metadata image: the cluster state every node rebuilds by applying the committed log,
//! read-only to everyone but the state machine, plus the dispatch of a command to the code
//! that computes its (deterministic) effect.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_core::acl::AclBinding;
use kafka_core::quota::ClientQuotaMap;
use kafka_core::scram::{ScramCredential, ScramMechanism};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commands::{Applied, CommandResponse, MetadataOp};
use crate::controller::{brokers, election, fencing, isr, resign, topics};
use crate::error::ControllerError;

/// Partition has no leader.
pub const NO_LEADER: i32 = -1;

/// Size of the producer id block handed out by one AllocateProducerIds.
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// Topic config that allows electing an out-of-sync replica.
pub const UNCLEAN_LEADER_ELECTION_CONFIG: &str = "unclean.leader.election.enable";

/// The cluster image. Cheap to clone: topics are shared `Arc`s.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Raft log index of the last applied entry.
    pub offset: u64,
    /// The cluster id once the first controller set it.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Registered brokers by id.
    #[serde(default)]
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Topics by name.
    #[serde(default)]
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    /// Topic names by id.
    #[serde(default)]
    pub topic_ids: BTreeMap<Uuid, String>,
    /// Cluster-wide dynamic broker configs.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, String>,
    /// Next producer id to hand out.
    #[serde(default)]
    pub next_producer_id: i64,
    /// Access control lists (CreateAcls / DeleteAcls).
    #[serde(default)]
    pub acls: BTreeSet<AclBinding>,
    /// SCRAM credentials by user and mechanism (AlterUserScramCredentials).
    #[serde(default)]
    pub scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Client quotas by entity (AlterClientQuotas).
    #[serde(default)]
    pub client_quotas: ClientQuotaMap,
}

/// A broker's registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Broker id.
    pub id: i32,
    /// The registering process.
    pub incarnation_id: Uuid,
    /// Broker epoch: log index of the registration.
    pub epoch: i64,
    /// Rack (zone).
    #[serde(default)]
    pub rack: Option<String>,
    /// Advertised listeners.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Fenced brokers may not lead partitions or join ISRs.
    pub fenced: bool,
    /// The broker asked to shut down; its leaderships are being moved away.
    #[serde(default)]
    pub in_controlled_shutdown: bool,
    /// Log index at which the controlled shutdown began.
    #[serde(default)]
    pub controlled_shutdown_offset: Option<u64>,
}

impl BrokerRegistration {
    /// May lead partitions and join ISRs.
    pub fn is_eligible(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// An advertised listener.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// Listener name, e.g. `PLAINTEXT`.
    pub listener: String,
    /// Host clients connect to.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Security protocol, e.g. `PLAINTEXT`.
    pub security_protocol: String,
}

/// A topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Topic config overrides.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// Partitions; index = partition id.
    pub partitions: Vec<PartitionState>,
}

/// Replication state of one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Partition id.
    pub partition: i32,
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Leader, or `NO_LEADER`.
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of this partition.
    pub partition_epoch: i32,
}

impl MetadataImage {
    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_ids
            .get(id)
            .and_then(|name| self.topics.get(name))
    }

    /// A partition by topic name and index.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }

    /// A broker's registration.
    pub fn broker(&self, id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Registered brokers that are not fenced.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Whether `id` may lead a partition or join an ISR: registered, unfenced, not shutting down.
    pub fn is_eligible(&self, id: i32) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(BrokerRegistration::is_eligible)
    }

    /// Ids of all eligible brokers.
    pub fn eligible_brokers(&self) -> BTreeSet<i32> {
        self.brokers
            .values()
            .filter(|b| b.is_eligible())
            .map(|b| b.id)
            .collect()
    }

    /// Partitions (topic name, state) that `broker` leads.
    pub fn partitions_led_by(&self, broker: i32) -> impl Iterator<Item = (&str, &PartitionState)> {
        self.topics.values().flat_map(move |t| {
            t.partitions
                .iter()
                .filter(move |p| p.leader == broker)
                .map(move |p| (t.name.as_str(), p))
        })
    }

    /// Whether unclean leader election is allowed for `topic`: its config, else the cluster
    /// default.
    pub fn unclean_election_allowed(&self, topic: &TopicImage) -> bool {
        topic
            .configs
            .get(UNCLEAN_LEADER_ELECTION_CONFIG)
            .or_else(|| self.broker_configs.get(UNCLEAN_LEADER_ELECTION_CONFIG))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Records that the entry at `index` carried no command (blank or membership entry).
    pub(crate) fn advance_to(&mut self, index: u64) {
        self.offset = index;
    }

    /// Applies the command committed at log index `index`.
    pub(crate) fn apply(&mut self, index: u64, op: &MetadataOp) -> CommandResponse {
        self.offset = index;
        match op {
            MetadataOp::InitCluster { cluster_id } => {
                let id = self.cluster_id.get_or_insert_with(|| cluster_id.clone());
                Ok(Applied::ClusterId(id.clone()))
            }
            MetadataOp::SetBrokerConfigs { configs } => {
                for (name, value) in configs {
                    match value {
                        Some(value) => self.broker_configs.insert(name.clone(), value.clone()),
                        None => self.broker_configs.remove(name),
                    };
                }
                if configs.contains_key(UNCLEAN_LEADER_ELECTION_CONFIG) {
                    election::elect_leaderless_unclean(self, None);
                }
                Ok(Applied::Nothing)
            }
            MetadataOp::RegisterBroker {
                broker_id,
                incarnation_id,
                rack,
                endpoints,
            } => brokers::apply_register(self, index, *broker_id, *incarnation_id, rack, endpoints),
            MetadataOp::FenceBroker {
                broker_id,
                broker_epoch,
            } => {
                self.check_broker_epoch(*broker_id, *broker_epoch)?;
                fencing::fence(self, *broker_id);
                Ok(Applied::Nothing)
            }
            MetadataOp::UnfenceBroker {
                broker_id,
                broker_epoch,
            } => {
                self.check_broker_epoch(*broker_id, *broker_epoch)?;
                fencing::unfence(self, *broker_id);
                Ok(Applied::Nothing)
            }
            MetadataOp::BeginControlledShutdown {
                broker_id,
                broker_epoch,
            } => {
                self.check_broker_epoch(*broker_id, *broker_epoch)?;
                fencing::begin_controlled_shutdown(self, index, *broker_id);
                Ok(Applied::Nothing)
            }
            MetadataOp::CreateTopic {
                name,
                topic_id,
                configs,
                assignments,
            } => topics::apply_create(self, name, *topic_id, configs, assignments),
            MetadataOp::DeleteTopic { name, topic_id } => {
                topics::apply_delete(self, name, *topic_id)
            }
            MetadataOp::CreatePartitions {
                topic_id,
                assignments,
            } => topics::apply_create_partitions(self, *topic_id, assignments),
            MetadataOp::AlterTopicConfigs { topic_id, ops } => {
                topics::apply_alter_configs(self, *topic_id, ops)
            }
            MetadataOp::AlterPartition(req) => isr::apply_alter_partition(self, req),
            MetadataOp::ResignLeadership(req) => resign::apply_resign_leadership(self, req),
            MetadataOp::ElectLeaders { kind, partitions } => Ok(Applied::Elections(
                election::apply_elect_leaders(self, *kind, partitions),
            )),
            MetadataOp::CreateAcls { acls } => {
                self.acls.extend(acls.iter().cloned());
                Ok(Applied::Nothing)
            }
            MetadataOp::DeleteAcls { filters } => {
                let deleted: Vec<Vec<AclBinding>> = filters
                    .iter()
                    .map(|f| self.acls.iter().filter(|b| f.matches(b)).cloned().collect())
                    .collect();
                for binding in deleted.iter().flatten() {
                    self.acls.remove(binding);
                }
                Ok(Applied::AclsDeleted(deleted))
            }
            MetadataOp::AlterScramCredentials {
                upsertions,
                deletions,
            } => {
                let mut missing: Vec<String> = deletions
                    .iter()
                    .filter(|(user, mechanism)| {
                        !self
                            .scram
                            .get(user)
                            .is_some_and(|c| c.contains_key(mechanism))
                    })
                    .map(|(user, _)| user.clone())
                    .collect();
                missing.sort_unstable();
                missing.dedup();
                for (user, mechanism) in deletions.iter().filter(|(u, _)| !missing.contains(u)) {
                    if let Some(credentials) = self.scram.get_mut(user) {
                        credentials.remove(mechanism);
                        if credentials.is_empty() {
                            self.scram.remove(user);
                        }
                    }
                }
                for (user, mechanism, credential) in
                    upsertions.iter().filter(|(u, _, _)| !missing.contains(u))
                {
                    self.scram
                        .entry(user.clone())
                        .or_default()
                        .insert(*mechanism, credential.clone());
                }
                Ok(Applied::ScramMissing(missing))
            }
            MetadataOp::AlterClientQuotas { entries } => {
                for (entity, changes) in entries {
                    let values = self.client_quotas.entry(entity.clone()).or_default();
                    for (key, value) in changes {
                        match value {
                            Some(v) => values.insert(*key, *v),
                            None => values.remove(key),
                        };
                    }
                    if values.is_empty() {
                        self.client_quotas.remove(entity);
                    }
                }
                Ok(Applied::Nothing)
            }
            MetadataOp::AllocateProducerIds {
                broker_id,
                broker_epoch,
            } => {
                self.check_broker_epoch(*broker_id, *broker_epoch)?;
                let first = self.next_producer_id;
                self.next_producer_id = first
                    .checked_add(i64::from(PRODUCER_ID_BLOCK_SIZE))
                    .ok_or_else(|| {
                        ControllerError::InvalidRequest("producer ids exhausted".into())
                    })?;
                Ok(Applied::ProducerIds {
                    first,
                    count: PRODUCER_ID_BLOCK_SIZE,
                })
            }
        }
    }

    /// Checks that `broker_id` is registered with `epoch`.
    pub(crate) fn check_broker_epoch(
        &self,
        broker_id: i32,
        epoch: i64,
    ) -> Result<&BrokerRegistration, ControllerError> {
        let reg = self
            .brokers
            .get(&broker_id)
            .ok_or(ControllerError::BrokerIdNotRegistered(broker_id))?;
        if reg.epoch != epoch {
            return Err(ControllerError::StaleBrokerEpoch);
        }
        Ok(reg)
    }

    /// Mutable access to a topic (copy-on-write against published images).
    pub(crate) fn topic_mut(&mut self, name: &str) -> Option<&mut TopicImage> {
        self.topics.get_mut(name).map(Arc::make_mut)
    }

    /// The partition a leader's request is about, with its topic's name, after checking that
    /// `broker_id` leads it at `leader_epoch` (the checks every leader-sent request makes).
    pub(crate) fn led_partition_mut(
        &mut self,
        broker_id: i32,
        topic_id: Uuid,
        partition: i32,
        leader_epoch: i32,
    ) -> Result<(String, &mut PartitionState), ControllerError> {
        let unknown =
            || ControllerError::UnknownTopicOrPartition(format!("{topic_id}-{partition}"));
        let name = self.topic_ids.get(&topic_id).cloned().ok_or_else(unknown)?;
        let index = usize::try_from(partition).map_err(|_| unknown())?;
        let topic = self.topic_mut(&name).ok_or_else(unknown)?;
        let p = topic.partitions.get_mut(index).ok_or_else(unknown)?;
        if leader_epoch != p.leader_epoch {
            return Err(ControllerError::FencedLeaderEpoch);
        }
        if broker_id != p.leader {
            return Err(ControllerError::NotLeaderOrFollower);
        }
        Ok((name, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(iterations: i32) -> ScramCredential {
        ScramCredential {
            salt: vec![1, 2, 3],
            iterations,
            stored_key: vec![4; 32],
            server_key: vec![5; 32],
        }
    }

    fn alter(
        image: &mut MetadataImage,
        upsertions: &[(&str, ScramMechanism, i32)],
        deletions: &[(&str, ScramMechanism)],
    ) -> Vec<String> {
        let op = MetadataOp::AlterScramCredentials {
            upsertions: upsertions
                .iter()
                .map(|(u, m, i)| (u.to_string(), *m, credential(*i)))
                .collect(),
            deletions: deletions.iter().map(|(u, m)| (u.to_string(), *m)).collect(),
        };
        match image.apply(1, &op) {
            Ok(Applied::ScramMissing(missing)) => missing,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn scram_credentials_are_set_replaced_and_deleted_per_user() {
        use ScramMechanism::{Sha256, Sha512};
        let mut image = MetadataImage::default();
        let none: Vec<String> = Vec::new();
        assert_eq!(
            alter(
                &mut image,
                &[("alice", Sha256, 4096), ("alice", Sha512, 8192)],
                &[]
            ),
            none
        );
        assert_eq!(image.scram["alice"].len(), 2);
        assert_eq!(alter(&mut image, &[("alice", Sha256, 5000)], &[]), none);
        assert_eq!(image.scram["alice"][&Sha256].iterations, 5000);

        // bob's deletion finds nothing: none of bob's changes apply, alice's do.
        assert_eq!(
            alter(
                &mut image,
                &[("bob", Sha256, 4096)],
                &[("bob", Sha512), ("alice", Sha512)]
            ),
            vec!["bob".to_string()]
        );
        assert!(!image.scram.contains_key("bob"));
        assert_eq!(image.scram["alice"].len(), 1);

        assert_eq!(alter(&mut image, &[], &[("alice", Sha256)]), none);
        assert!(image.scram.is_empty());
    }

    #[test]
    fn client_quotas_are_set_removed_and_forgotten_when_empty() {
        use kafka_core::quota::{QuotaEntity, QuotaKey};
        let mut image = MetadataImage::default();
        let alice = QuotaEntity::from_parts([("user", Some("alice"))]).expect("a valid entity");
        let value = |v: f64| QuotaKey::ProducerByteRate.check(v).ok();
        let set = MetadataOp::AlterClientQuotas {
            entries: vec![(
                alice.clone(),
                vec![
                    (QuotaKey::ProducerByteRate, value(1024.0)),
                    (QuotaKey::ConsumerByteRate, value(2048.0)),
                ],
            )],
        };
        assert_eq!(image.apply(1, &set), Ok(Applied::Nothing));
        assert_eq!(image.client_quotas[&alice].len(), 2);
        let remove = MetadataOp::AlterClientQuotas {
            entries: vec![(
                alice.clone(),
                vec![
                    (QuotaKey::ProducerByteRate, None),
                    (QuotaKey::ConsumerByteRate, None),
                    (QuotaKey::RequestPercentage, None),
                ],
            )],
        };
        assert_eq!(image.apply(2, &remove), Ok(Applied::Nothing));
        assert!(image.client_quotas.is_empty());
    }
}

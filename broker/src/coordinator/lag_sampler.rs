//! Sampling the latest offsets of the partitions that groups coordinated here have committed
//! offsets for: read locally where this broker leads the partition, otherwise asked from its
//! leader with ListOffsets (LATEST as a consumer sees it: the high watermark), one request per
//! leader, all leaders at once, over connections kept between samples.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_core::ErrorCode;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use raft_controller::MetadataImage;
use storage::TopicPartition;
use tracing::debug;

use super::cluster::Cluster;
use crate::replica::peer_client::PeerConnection;
use crate::replica::peer_client::PeerSecurity;

/// ListOffsets version used towards other brokers (all Rivulet brokers serve v1-v8).
const LIST_OFFSETS_VERSION: i16 = 4;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const LATEST_TIMESTAMP: i64 = -1;

#[derive(Debug)]
pub struct LatestOffsetSampler {
    node_id: i32,
    listener: String,
    peers: Arc<PeerSecurity>,
    connections: HashMap<i32, PeerConnection>,
}

impl LatestOffsetSampler {
    pub fn new(node_id: i32, listener: String, peers: Arc<PeerSecurity>) -> LatestOffsetSampler {
        LatestOffsetSampler {
            node_id,
            listener,
            peers,
            connections: HashMap::new(),
        }
    }

    /// The latest offset of each partition of `wanted` that could be learned.
    pub async fn sample(
        &mut self,
        wanted: &BTreeSet<TopicPartition>,
        image: &MetadataImage,
        cluster: &dyn Cluster,
    ) -> HashMap<TopicPartition, i64> {
        let mut latest = HashMap::new();
        let mut remote: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for tp in wanted {
            if let Some(partition) = cluster.partition(tp) {
                if partition.is_leader() {
                    latest.insert(tp.clone(), partition.high_watermark());
                    continue;
                }
            }
            if let Some(state) = image.partition(&tp.topic, tp.partition) {
                if state.leader >= 0 && state.leader != self.node_id {
                    remote.entry(state.leader).or_default().push(tp.clone());
                }
            }
        }
        self.connections.retain(|id, _| remote.contains_key(id));
        let client_id = format!("rivulet-group-coordinator-{}", self.node_id);
        let requests = remote.into_iter().map(|(leader, partitions)| {
            let connection = self.connections.remove(&leader);
            let address = image.brokers.get(&leader).and_then(|b| {
                b.endpoints
                    .iter()
                    .find(|e| e.listener == self.listener)
                    .map(|e| format!("{}:{}", e.host, e.port))
            });
            let client_id = client_id.clone();
            let peers = self.peers.clone();
            async move {
                let (connection, offsets) =
                    list_latest(connection, address, client_id, peers, leader, partitions).await;
                (leader, connection, offsets)
            }
        });
        for (leader, connection, offsets) in futures::future::join_all(requests).await {
            if let Some(c) = connection {
                self.connections.insert(leader, c);
            }
            latest.extend(offsets);
        }
        latest
    }
}

/// Asks `leader` for the latest offsets of `partitions`; returns the connection if still usable.
async fn list_latest(
    connection: Option<PeerConnection>,
    address: Option<String>,
    client_id: String,
    peers: Arc<PeerSecurity>,
    leader: i32,
    partitions: Vec<TopicPartition>,
) -> (Option<PeerConnection>, Vec<(TopicPartition, i64)>) {
    let mut connection = match connection {
        Some(c) => c,
        None => {
            let Some(address) = address else {
                debug!(leader, "no endpoint known for the leader; lag not sampled");
                return (None, Vec::new());
            };
            match PeerConnection::connect(&address, client_id, REQUEST_TIMEOUT, &peers).await {
                Ok(c) => c,
                Err(e) => {
                    debug!(leader, error = %e, "cannot reach the leader to sample offsets");
                    return (None, Vec::new());
                }
            }
        }
    };
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(tp.topic).or_default().push(tp.partition);
    }
    let topics = by_topic
        .into_iter()
        .map(|(topic, indexes)| {
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(
                    indexes
                        .into_iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(LATEST_TIMESTAMP)
                        })
                        .collect(),
                )
        })
        .collect();
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_topics(topics);
    match connection
        .request(&request, LIST_OFFSETS_VERSION, REQUEST_TIMEOUT)
        .await
    {
        Ok(response) => {
            let offsets = response
                .topics
                .into_iter()
                .flat_map(|t| {
                    let topic = t.name.0.to_string();
                    t.partitions
                        .into_iter()
                        .filter(|p| {
                            ErrorCode::from_code(p.error_code) == ErrorCode::NONE && p.offset >= 0
                        })
                        .map(move |p| {
                            (
                                TopicPartition {
                                    topic: topic.clone(),
                                    partition: p.partition_index,
                                },
                                p.offset,
                            )
                        })
                })
                .collect();
            (Some(connection), offsets)
        }
        Err(e) => {
            debug!(leader, error = %e, "sampling offsets from the leader failed");
            (None, Vec::new())
        }
    }
}

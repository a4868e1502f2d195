//! Request dispatch by API key: version checks, body decoding, and the table of supported APIs
//! that ApiVersions advertises.
//!
//! Each API lives in its own module and returns a [`Pending`] future. Whatever must happen in
//! arrival order (appends) happens before that future is returned.

mod api_versions;
mod cluster;
mod configs;
mod delete_records;
mod fetch;
mod fetch_response;
mod groups;
mod leader_epochs;
mod list_offsets;
mod metadata;
mod offsets;
mod produce;
mod producer_ids;
mod topics;

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use tracing::error;

use crate::context::Context;
use crate::metrics::Metrics;
use crate::server::response::{self, Response};
use crate::server::{ConnectionInfo, RequestFrame};

pub use api_versions::SUPPORTED_APIS;
pub use fetch_response::{encode_fetch_response, FetchPartitionRecords};

/// What a request produces once it completes.
#[derive(Debug)]
pub enum Outcome {
    /// Write this response.
    Respond(Response),
    /// No response (produce with acks=0).
    Silent,
    /// Close the connection (Kafka's way of failing acks=0 produce and broken requests).
    Close(String),
}

/// The not-yet-finished part of a request.
pub type Pending = BoxFuture<'static, Outcome>;

/// What a handler knows about the request it serves.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    pub connection: ConnectionInfo,
}

impl RequestContext {
    /// Encodes `body` as this request's response.
    pub fn respond<R: Encodable + HeaderVersion>(&self, body: &R, error_code: i16) -> Outcome {
        match response::encode(body, self.version, self.correlation_id, error_code) {
            Ok(r) => Outcome::Respond(r),
            Err(e) => {
                error!(api = ?self.api_key, version = self.version, error = %e, "response encoding failed");
                Outcome::Close(format!("response encoding failed: {e}"))
            }
        }
    }
}

/// The first error among a response's per-resource error codes (the one the request metrics
/// count), or NONE when every resource succeeded.
pub(crate) fn first_error(codes: impl IntoIterator<Item = i16>) -> i16 {
    codes
        .into_iter()
        .find(|c| *c != crate::error_codes::NONE)
        .unwrap_or(crate::error_codes::NONE)
}

/// An outcome that is already known.
pub fn ready(outcome: Outcome) -> Pending {
    futures::future::ready(outcome).boxed()
}

/// Routes decoded requests to their handlers.
#[derive(Debug)]
pub struct Dispatcher {
    ctx: Arc<Context>,
}

impl Dispatcher {
    pub fn new(ctx: Arc<Context>) -> Dispatcher {
        Dispatcher { ctx }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.ctx.metrics
    }

    /// Starts handling a request. `Err` closes the connection, as Kafka does for requests it
    /// cannot parse or versions it does not support.
    pub fn dispatch(
        &self,
        connection: &ConnectionInfo,
        frame: RequestFrame,
    ) -> Result<Pending, String> {
        let version = frame.version();
        let rc = RequestContext {
            api_key: frame.api_key,
            version,
            correlation_id: frame.correlation_id(),
            client_id: frame.client_id().to_string(),
            connection: connection.clone(),
        };
        if frame.api_key == ApiKey::ApiVersions {
            return Ok(ready(api_versions::handle(&self.ctx, &rc, frame.body)));
        }
        let Some(range) = api_versions::supported_range(frame.api_key) else {
            return Err(format!(
                "api {:?} is not supported by this broker",
                frame.api_key
            ));
        };
        if version < range.0 || version > range.1 {
            return Err(format!(
                "{:?} v{version} is not supported (supported: v{}..=v{})",
                frame.api_key, range.0, range.1
            ));
        }
        let ctx = &self.ctx;
        let body = frame.body;
        Ok(match frame.api_key {
            ApiKey::Metadata => metadata::handle(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::Produce => produce::handle(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::Fetch => fetch::handle(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::ListOffsets => list_offsets::handle(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::CreateTopics => topics::create_topics(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::DeleteTopics => topics::delete_topics(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::CreatePartitions => {
                topics::create_partitions(ctx, rc.clone(), decode(&rc, body)?)
            }
            ApiKey::DescribeConfigs => configs::describe(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::AlterConfigs => configs::alter(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::IncrementalAlterConfigs => {
                configs::incremental_alter(ctx, rc.clone(), decode(&rc, body)?)
            }
            ApiKey::DeleteRecords => delete_records::handle(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::OffsetForLeaderEpoch => {
                leader_epochs::handle(ctx, rc.clone(), decode(&rc, body)?)
            }
            ApiKey::DescribeCluster => {
                cluster::describe_cluster(ctx, rc.clone(), decode(&rc, body)?)
            }
            ApiKey::ElectLeaders => cluster::elect_leaders(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::DescribeLogDirs => {
                cluster::describe_log_dirs(ctx, rc.clone(), decode(&rc, body)?)
            }
            ApiKey::DescribeProducers => {
                producer_ids::describe_producers(ctx, rc.clone(), decode(&rc, body)?)
            }
            ApiKey::InitProducerId => {
                producer_ids::init_producer_id(ctx, rc.clone(), decode(&rc, body)?)
            }
            ApiKey::FindCoordinator => {
                groups::find_coordinator(ctx, rc.clone(), decode(&rc, body)?)
            }
            ApiKey::JoinGroup => groups::join_group(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::SyncGroup => groups::sync_group(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::Heartbeat => groups::heartbeat(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::LeaveGroup => groups::leave_group(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::DescribeGroups => groups::describe_groups(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::ListGroups => groups::list_groups(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::DeleteGroups => groups::delete_groups(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::OffsetCommit => offsets::offset_commit(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::OffsetFetch => offsets::offset_fetch(ctx, rc.clone(), decode(&rc, body)?),
            ApiKey::OffsetDelete => offsets::offset_delete(ctx, rc.clone(), decode(&rc, body)?),
            other => return Err(format!("api {other:?} is not supported by this broker")),
        })
    }
}

/// Decodes a request body; a malformed body closes the connection (Kafka's InvalidRequestException).
fn decode<T: Decodable>(rc: &RequestContext, mut body: bytes::Bytes) -> Result<T, String> {
    let decoded = T::decode(&mut body, rc.version)
        .map_err(|e| format!("malformed {:?} v{} request: {e}", rc.api_key, rc.version))?;
    Ok(decoded)
}

//! The request handlers: one module per API family, the [`table`] of served APIs, and the
//! [`Dispatcher`] that serves the network layer from that table.
//!
//! Each handler returns a [`Pending`] future. Whatever must happen in arrival order (appends)
//! happens before that future is returned.

mod acls;
mod api_versions;
mod authorization;
mod cluster;
mod configs;
mod decode;
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
mod sasl;
mod scram_credentials;
mod table;
mod topics;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kafka_core::ErrorCode;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use tracing::error;

use crate::context::Context;
use crate::metrics::Metrics;
use crate::server::response;
use crate::server::{ConnectionInfo, LimitEvent, Outcome, Pending, RequestFrame, Service};

pub use decode::{decode_request, DecodedRequest, RequestDecodeError};
pub use fetch_response::{encode_fetch_response, FetchPartitionRecords};

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
    pub fn respond<R: Encodable + HeaderVersion>(
        &self,
        body: &R,
        error_code: ErrorCode,
    ) -> Outcome {
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
pub(crate) fn first_error(codes: impl IntoIterator<Item = i16>) -> ErrorCode {
    codes
        .into_iter()
        .map(ErrorCode::from_code)
        .find(|c| *c != ErrorCode::NONE)
        .unwrap_or(ErrorCode::NONE)
}

/// An outcome that is already known.
pub fn ready(outcome: Outcome) -> Pending {
    futures::future::ready(outcome).boxed()
}

/// Serves the network layer: routes each request to its entry in the [`table`] and counts it.
#[derive(Debug)]
pub struct Dispatcher {
    ctx: Arc<Context>,
}

impl Dispatcher {
    pub fn new(ctx: Arc<Context>) -> Dispatcher {
        for spec in table::APIS {
            ctx.metrics().declare_api(spec.name);
        }
        Dispatcher { ctx }
    }

    fn metrics(&self) -> &Metrics {
        self.ctx.metrics()
    }
}

impl Service for Dispatcher {
    fn dispatch(
        &self,
        connection: &ConnectionInfo,
        frame: RequestFrame,
    ) -> Result<Pending, String> {
        let version = frame.version();
        let spec = table::route(frame.api_key, version)?;
        let rc = RequestContext {
            api_key: frame.api_key,
            version,
            correlation_id: frame.correlation_id(),
            client_id: frame.client_id().to_string(),
            connection: connection.clone(),
        };
        (spec.handler)(&self.ctx, rc, frame.body)
    }

    fn completed(
        &self,
        api: ApiKey,
        elapsed: Duration,
        error_code: ErrorCode,
        zero_copy_bytes: u64,
    ) {
        let name = table::spec(api).map_or("Other", |s| s.name);
        self.metrics()
            .request_completed(name, elapsed, error_code, zero_copy_bytes);
    }

    fn connection_opened(&self, listener: &str) {
        self.metrics().connection_opened(listener);
    }

    fn connection_closed(&self, listener: &str) {
        self.metrics().connection_closed(listener);
    }

    fn connection_limited(&self, listener: &str, event: LimitEvent) {
        self.metrics().connection_limited(listener, event);
    }
}

/// Helpers for the handlers' response encoding tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::ops::RangeInclusive;

    use bytes::BytesMut;
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::protocol::{Decodable, Encodable};

    /// The versions served for `api`.
    pub(crate) fn versions(api: ApiKey) -> RangeInclusive<i16> {
        super::table::spec(api)
            .map(|s| s.versions())
            .unwrap_or_else(|| panic!("{api:?} is not served"))
    }

    /// Encodes at `version` (what the broker sends) and decodes it back (what a client reads).
    pub(crate) fn round_trip<T: Encodable + Decodable>(response: &T, version: i16) -> T {
        let mut buf = BytesMut::new();
        response
            .encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("encoding at v{version} failed: {e}"));
        T::decode(&mut buf.freeze(), version)
            .unwrap_or_else(|e| panic!("decoding at v{version} failed: {e}"))
    }
}

//! The request handlers: one module per API family, the [`table`] of served APIs, and the
//! [`Dispatcher`] that serves the network layer from that table.
//!
//! Each handler returns a [`Pending`] future. Whatever must happen in arrival order (appends)
//! happens before that future is returned.

mod acls;
mod api_versions;
mod authorization;
mod client_quotas;
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
use std::time::{Duration, Instant};

use futures::FutureExt;
use kafka_core::quota::{resolve, QuotaKey};
use kafka_core::ErrorCode;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use tracing::error;

use crate::context::{Context, MetadataView};
use crate::metrics::Metrics;
use crate::quota::{BusyTime, Client};
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
    /// Size of the request body (what `producer_byte_rate` meters).
    pub request_bytes: usize,
}

impl RequestContext {
    /// Who client quotas meter this request as; `None` on the inter-broker listener, which no
    /// client quota holds.
    pub fn quota_client(&self, ctx: &Context) -> Option<Client<'_>> {
        (self.connection.listener != ctx.config().inter_broker_listener_name).then(|| Client {
            user: self.connection.principal.name(),
            client_id: &self.client_id,
        })
    }

    /// Records `amount` of `key` for this request's client; how long it must now wait.
    pub fn record_quota(&self, ctx: &Context, key: QuotaKey, amount: f64) -> Duration {
        let Some(client) = self.quota_client(ctx) else {
            return Duration::ZERO;
        };
        let image = ctx.latest_image();
        let throttle =
            ctx.quotas()
                .record(&image.client_quotas, key, client, amount, Instant::now());
        ctx.metrics().quota_throttled(key, throttle);
        throttle
    }

    /// A throttle as `throttle_time_ms`.
    pub fn throttle_ms(throttle: Duration) -> i32 {
        i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
    }
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

    /// The (user, client id) a request's busy time is metered as, when a `request_percentage`
    /// quota holds it. The APIs a client needs to connect and authenticate are exempt, as in
    /// Kafka.
    fn request_time_meter(&self, rc: &RequestContext) -> Option<(String, String)> {
        if matches!(
            rc.api_key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) {
            return None;
        }
        let client = rc.quota_client(&self.ctx)?;
        let image = self.ctx.latest_image();
        resolve(
            &image.client_quotas,
            client.user,
            client.client_id,
            QuotaKey::RequestPercentage,
        )?;
        Some((client.user.to_string(), client.client_id.to_string()))
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
            request_bytes: frame.body.len(),
        };
        let Some(metered) = self.request_time_meter(&rc) else {
            return (spec.handler)(&self.ctx, rc, frame.body);
        };
        let started = Instant::now();
        let pending = (spec.handler)(&self.ctx, rc, frame.body)?;
        let ctx = self.ctx.clone();
        Ok(BusyTime::new(pending, started.elapsed())
            .map(move |(mut outcome, busy)| {
                let image = ctx.latest_image();
                let client = Client {
                    user: &metered.0,
                    client_id: &metered.1,
                };
                let percent = busy.as_secs_f64() * 100.0;
                let throttle = ctx.quotas().record(
                    &image.client_quotas,
                    QuotaKey::RequestPercentage,
                    client,
                    percent,
                    Instant::now(),
                );
                ctx.metrics()
                    .quota_throttled(QuotaKey::RequestPercentage, throttle);
                match &mut outcome {
                    Outcome::Respond(r) => r.throttle = r.throttle.max(throttle),
                    Outcome::Silent(muted) => *muted = (*muted).max(throttle),
                    Outcome::Close(_) => {}
                }
                outcome
            })
            .boxed())
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

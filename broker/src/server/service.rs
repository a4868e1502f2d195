//! What the network layer needs from whoever answers requests: the [`Service`] a connection
//! hands its frames to, and the [`Outcome`] each request ends in. The request handlers
//! (`api/`) implement it; the network layer knows nothing else about them.

use std::time::Duration;

use futures::future::BoxFuture;
use kafka_core::ErrorCode;
use kafka_protocol::messages::ApiKey;

use super::connection::ConnectionInfo;
use super::frame::RequestFrame;
use super::response::Response;

/// What a request produces once it completes.
#[derive(Debug)]
pub enum Outcome {
    /// Write this response.
    Respond(Response),
    /// No response (produce with acks=0); the connection is muted this long (a quota
    /// throttles the client).
    Silent(Duration),
    /// Close the connection (Kafka's way of failing acks=0 produce and broken requests).
    Close(String),
}

/// A connection limit took effect on a listener (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitEvent {
    /// A connection was closed at once: its address was at `max.connections.per.ip`.
    RejectedPerIp,
    /// Accepting paused this long at `max.connections` (broker or listener).
    Blocked(Duration),
    /// Accepting was delayed this long by `max.connection.creation.rate`.
    Throttled(Duration),
}

/// The not-yet-finished part of a request.
pub type Pending = BoxFuture<'static, Outcome>;

/// Answers the requests of every connection of a listener.
pub trait Service: Send + Sync + 'static {
    /// Starts handling a request; whatever must happen in arrival order (appends) happens
    /// before this returns. `Err` closes the connection, as Kafka does for requests it cannot
    /// parse or versions it does not support.
    fn dispatch(&self, connection: &ConnectionInfo, frame: RequestFrame)
        -> Result<Pending, String>;

    /// A request's response was written (or, with `acks=0`, skipped): `error_code` is the
    /// response's first error, `zero_copy_bytes` what went out with sendfile.
    fn completed(
        &self,
        api: ApiKey,
        elapsed: Duration,
        error_code: ErrorCode,
        zero_copy_bytes: u64,
    );

    /// A connection was accepted on `listener`.
    fn connection_opened(&self, listener: &str);

    /// A connection of `listener` closed.
    fn connection_closed(&self, listener: &str);

    /// A connection limit took effect on `listener`.
    fn connection_limited(&self, listener: &str, event: LimitEvent);
}

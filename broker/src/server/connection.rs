//! One client connection: authenticates it (TLS, SASL) as its listener requires, then reads
//! pipelined requests, runs them concurrently, and writes the responses strictly in request
//! order (Kafka clients match responses by order per connection). On SASL listeners a
//! SaslHandshake after authentication re-authenticates (KIP-368) once the responses before it
//! are written, and a request after the session's lifetime closes the connection. A response
//! that carries a quota throttle mutes the connection (its socket is not read) for that long.
//!
//! Handlers do their ordering-sensitive work (appends) synchronously when dispatched, in arrival
//! order, and return a future only for what may wait (replication, long polls, rebalances).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use kafka_core::ErrorCode;
use kafka_protocol::messages::ApiKey;
use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::authentication::{self, ListenerAuth, Reauthentication};
use super::frame::{FrameError, FrameReader};
use super::response::{ResponseSocket, ResponseWriter};
use super::service::{Outcome, Pending, Service};
use crate::config::security::SaslMechanism;
use crate::security::{KafkaPrincipal, SaslServer};
use crate::shutdown::Shutdown;

/// Who is on the other end.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub id: u64,
    pub peer: SocketAddr,
    pub listener: String,
    /// Who the connection authenticated as (ANONYMOUS until it has, and on PLAINTEXT).
    pub principal: KafkaPrincipal,
}

/// Per-connection limits from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_frame_bytes: usize,
    pub idle_timeout: Duration,
    /// `queued.max.requests`: while this many requests are unanswered, the socket is not read
    /// (the buffer then holds at most one partial frame), so memory per connection is bounded.
    pub max_in_flight: usize,
    /// How long a closing connection waits for its in-flight requests.
    pub drain_timeout: Duration,
}

type InFlight = FuturesOrdered<futures::future::BoxFuture<'static, (Outcome, ApiKey, Instant)>>;

/// The SASL session of a connection.
struct Session<'a> {
    sasl: &'a SaslServer,
    mechanism: SaslMechanism,
    /// When the authentication lapses (`connections.max.reauth.ms`), if it does.
    expires: Option<Instant>,
}

impl<'a> Session<'a> {
    fn new(sasl: &'a SaslServer, mechanism: SaslMechanism) -> Session<'a> {
        Session {
            sasl,
            mechanism,
            expires: sasl.session_lifetime().map(|d| Instant::now() + d),
        }
    }

    fn expired(&self) -> bool {
        self.expires.is_some_and(|at| Instant::now() >= at)
    }
}

/// Serves one connection until the client closes it, it idles out, a request forces a close,
/// or the broker shuts down.
pub async fn serve<S: Service>(
    stream: TcpStream,
    mut info: ConnectionInfo,
    service: Arc<S>,
    limits: ConnectionLimits,
    auth: ListenerAuth,
    shutdown: Shutdown,
) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(peer = %info.peer, error = %e, "set_nodelay failed");
    }
    service.connection_opened(&info.listener);
    let close_reason = match &auth.tls {
        None => {
            let (read_half, write_half) = stream.into_split();
            Connection::new(write_half, service.as_ref(), limits)
                .run(read_half, &auth, &mut info, shutdown)
                .await
        }
        Some(tls) => match authentication::tls_handshake(&auth, tls, stream).await {
            Ok((stream, principal)) => {
                debug!(peer = %info.peer, connection = info.id, principal = %principal, "TLS handshake done");
                info.principal = principal;
                let (read_half, write_half) = tokio::io::split(stream);
                Connection::new(write_half, service.as_ref(), limits)
                    .run(read_half, &auth, &mut info, shutdown)
                    .await
            }
            Err(reason) => reason,
        },
    };
    service.connection_closed(&info.listener);
    if close_reason == "closed by client" {
        debug!(peer = %info.peer, connection = info.id, "connection closed by client");
    } else {
        info!(peer = %info.peer, connection = info.id, principal = %info.principal, reason = %close_reason, "closing connection");
    }
}

/// The serving half of a connection once its transport is set up.
struct Connection<'a, S, W> {
    writer: ResponseWriter<W>,
    service: &'a S,
    limits: ConnectionLimits,
}

impl<'a, S: Service, W: ResponseSocket> Connection<'a, S, W> {
    fn new(socket: W, service: &'a S, limits: ConnectionLimits) -> Self {
        Connection {
            writer: ResponseWriter::new(socket),
            service,
            limits,
        }
    }

    /// Authenticates (SASL listeners), then serves requests read from `socket`; returns why
    /// the connection ends.
    async fn run<R: AsyncRead + Unpin>(
        mut self,
        socket: R,
        auth: &ListenerAuth,
        info: &mut ConnectionInfo,
        mut shutdown: Shutdown,
    ) -> String {
        let mut reader = FrameReader::new(socket, self.limits.max_frame_bytes);
        let mut session = None;
        if let Some(sasl) = &auth.sasl {
            match authentication::sasl_exchange(
                sasl,
                &mut reader,
                &mut self.writer,
                self.service,
                info,
                None,
            )
            .await
            {
                Ok(done) => {
                    debug!(peer = %info.peer, connection = info.id, principal = %done.principal, "authenticated");
                    info.principal = done.principal;
                    session = Some(Session::new(sasl, done.mechanism));
                }
                Err(reason) => {
                    let _ = self.writer.shutdown().await;
                    return reason;
                }
            }
        }
        let reason = self
            .serve_requests(&mut reader, info, session, &mut shutdown)
            .await;
        let _ = self.writer.shutdown().await;
        reason
    }

    async fn serve_requests<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut FrameReader<R>,
        info: &ConnectionInfo,
        mut session: Option<Session<'_>>,
        shutdown: &mut Shutdown,
    ) -> String {
        let (limits, service, writer) = (self.limits, self.service, &mut self.writer);
        let mut in_flight: InFlight = FuturesOrdered::new();
        let idle = tokio::time::sleep(limits.idle_timeout);
        tokio::pin!(idle);
        // Made once, not once per loop turn: every turn would otherwise register and drop a waiter.
        let shutting_down = shutdown.wait();
        tokio::pin!(shutting_down);

        // While a quota throttles the client, its socket is not read (Kafka mutes the channel).
        let mute = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(mute);
        let mut muted = false;

        // Whether requests already accepted still get their responses after the loop ends.
        let mut drain = false;
        let close_reason: String = loop {
            tokio::select! {
                biased;
                _ = &mut shutting_down => {
                    drain = true;
                    break "broker shutting down".to_string();
                }
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let mut batch = vec![done];
                    while let Some(Some(more)) = in_flight.next().now_or_never() {
                        batch.push(more);
                    }
                    match write_batch(writer, batch, service).await {
                        Ok(Written { close: Some(reason), .. }) => break reason,
                        Ok(Written { throttle, .. }) if !throttle.is_zero() => {
                            mute.as_mut().reset(tokio::time::Instant::now() + throttle);
                            muted = true;
                        }
                        Ok(_) => {}
                        Err(e) => break format!("write failed: {e}"),
                    }
                    idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                }
                _ = &mut mute, if muted => {
                    muted = false;
                    idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                }
                frame = reader.read_frame(), if !muted && in_flight.len() < limits.max_in_flight => {
                    match frame {
                        Ok(Some(frame)) => {
                            idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                            // This request, then those that arrived in the same read, without waiting.
                            let mut next = Some(frame);
                            let mut failed = None;
                            while let Some(frame) = next.take() {
                                let outcome = match session.as_mut() {
                                    Some(s) if frame.api_key == ApiKey::SaslHandshake => {
                                        reauthenticate(s, frame, reader, writer, &mut in_flight, service, info).await
                                    }
                                    Some(s) if s.expired() => Err(format!(
                                        "{:?} request after the SASL session expired (connections.max.reauth.ms) without re-authentication",
                                        frame.api_key
                                    )),
                                    _ => start(service, info, frame, &mut in_flight),
                                };
                                if let Err(reason) = outcome {
                                    failed = Some(reason);
                                    break;
                                }
                                if in_flight.len() >= limits.max_in_flight {
                                    break;
                                }
                                match reader.parse_buffered() {
                                    Ok(frame) => next = frame,
                                    Err(e) => failed = Some(frame_error_reason(info, &e)),
                                }
                            }
                            if let Some(reason) = failed {
                                break reason;
                            }
                        }
                        Ok(None) => {
                            drain = true;
                            break "closed by client".to_string();
                        }
                        Err(e) => break frame_error_reason(info, &e),
                    }
                }
                _ = &mut idle => break format!("idle for more than {:?}", limits.idle_timeout),
            }
        };

        // Let requests already accepted finish (bounded), so a graceful close loses no response.
        if drain && !in_flight.is_empty() {
            let drain = async {
                while let Some(done) = in_flight.next().await {
                    if !matches!(
                        write_batch(writer, vec![done], service).await,
                        Ok(Written { close: None, .. })
                    ) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(limits.drain_timeout, drain).await;
        }
        close_reason
    }
}

/// Re-authenticates a connection (KIP-368) from its SaslHandshake: the responses to the
/// requests before it are written first, so the exchange's answers keep request order.
async fn reauthenticate<S: Service, R: AsyncRead + Unpin, W: ResponseSocket>(
    session: &mut Session<'_>,
    handshake: super::frame::RequestFrame,
    reader: &mut FrameReader<R>,
    writer: &mut ResponseWriter<W>,
    in_flight: &mut InFlight,
    service: &S,
    info: &ConnectionInfo,
) -> Result<(), String> {
    while let Some(done) = in_flight.next().await {
        match write_batch(writer, vec![done], service).await {
            Ok(Written { close: None, .. }) => {}
            Ok(Written {
                close: Some(reason),
                ..
            }) => return Err(reason),
            Err(e) => return Err(format!("write failed: {e}")),
        }
    }
    let reauthentication = Reauthentication {
        handshake,
        principal: &info.principal,
        mechanism: session.mechanism,
    };
    authentication::sasl_exchange(
        session.sasl,
        reader,
        writer,
        service,
        info,
        Some(reauthentication),
    )
    .await?;
    debug!(peer = %info.peer, connection = info.id, principal = %info.principal, "re-authenticated");
    *session = Session::new(session.sasl, session.mechanism);
    Ok(())
}

fn frame_error_reason(info: &ConnectionInfo, e: &FrameError) -> String {
    match e {
        FrameError::Io(_) | FrameError::Truncated => format!("read failed: {e}"),
        _ => {
            warn!(peer = %info.peer, listener = %info.listener, connection = info.id, error = %e, "invalid request frame");
            format!("invalid request: {e}")
        }
    }
}

/// Dispatches one request; its synchronous part runs now, in arrival order.
fn start<S: Service>(
    service: &S,
    info: &ConnectionInfo,
    frame: super::frame::RequestFrame,
    in_flight: &mut InFlight,
) -> Result<(), String> {
    let api_key = frame.api_key;
    let received_at = frame.received_at;
    let pending: Pending = service.dispatch(info, frame).map_err(|reason| {
        warn!(peer = %info.peer, api = ?api_key, reason = %reason, "closing connection on bad request");
        reason
    })?;
    in_flight.push_back(
        pending
            .map(move |outcome| (outcome, api_key, received_at))
            .boxed(),
    );
    Ok(())
}

/// What writing a batch of responses asks of the connection.
struct Written {
    /// Close, for this reason.
    close: Option<String>,
    /// Stop reading for this long (a quota throttles the client).
    throttle: Duration,
}

/// Writes a batch of completed responses in order.
async fn write_batch<S: Service, W: ResponseSocket>(
    writer: &mut ResponseWriter<W>,
    batch: Vec<(Outcome, ApiKey, Instant)>,
    service: &S,
) -> std::io::Result<Written> {
    let mut close = None;
    let mut throttle = Duration::ZERO;
    for (outcome, api_key, received_at) in batch {
        match outcome {
            Outcome::Respond(response) => {
                throttle = throttle.max(response.throttle);
                let zero_copy = writer.write(&response).await?;
                service.completed(
                    api_key,
                    received_at.elapsed(),
                    response.error_code,
                    zero_copy,
                );
            }
            Outcome::Silent(muted) => {
                throttle = throttle.max(muted);
                service.completed(api_key, received_at.elapsed(), ErrorCode::NONE, 0)
            }
            Outcome::Close(reason) => {
                close = Some(reason);
                break;
            }
        }
    }
    writer.flush().await?;
    Ok(Written { close, throttle })
}

//! Authenticating a new connection before it may send anything else, as Kafka's
//! `SslTransportLayer` and `SaslServerAuthenticator` do: the TLS handshake (its client
//! certificate, if any, names the principal through `ssl.principal.mapping.rules`), then on SASL
//! listeners the SASL exchange — ApiVersions may come first, then SaslHandshake naming a
//! mechanism, then (v1) SaslAuthenticate rounds until the mechanism is done, or (v0, clients
//! from before KIP-152) the mechanism's tokens as bare length-prefixed frames. Any other
//! request before that, a mechanism the listener does not enable, or failed credentials close
//! the connection after the Kafka error is sent. Every refusal is logged with its reason; no
//! password is.
//!
//! Re-authentication (KIP-368): a SaslHandshake on an authenticated connection runs the
//! exchange again; the principal and the mechanism may not change. SaslAuthenticate tells the
//! client the session lifetime (`connections.max.reauth.ms`); the connection enforces it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_core::ErrorCode;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tracing::info;

use super::connection::ConnectionInfo;
use super::frame::{FrameReader, RequestFrame};
use super::response::{self, ResponseSocket, ResponseWriter};
use super::service::{Outcome, Service};
use crate::config::security::SaslMechanism;
use crate::config::ListenerSecurity;
use crate::security::{
    CredentialStore, Exchange, KafkaPrincipal, PrincipalMapper, SaslServer, Step, TlsIdentity,
};

/// How long a new connection may take to finish its TLS handshake or its SASL exchange.
pub const AUTHENTICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How one listener authenticates its connections.
#[derive(Debug, Clone, Default)]
pub struct ListenerAuth {
    pub tls: Option<Arc<TlsIdentity>>,
    /// Maps client-certificate subjects to principal names (`ssl.principal.mapping.rules`).
    pub principal_mapper: Option<Arc<PrincipalMapper>>,
    pub sasl: Option<SaslServer>,
}

impl ListenerAuth {
    /// Loads what a listener's settings name (certificates, mapping rules, SASL users); SCRAM
    /// credentials are looked up in `credentials`. An error stops the broker from starting.
    pub fn configure(
        listener: &str,
        security: &ListenerSecurity,
        credentials: Arc<dyn CredentialStore>,
    ) -> Result<ListenerAuth, String> {
        let mut auth = ListenerAuth::default();
        if let Some(tls) = &security.tls {
            let mapper = PrincipalMapper::parse(&tls.principal_mapping_rules)
                .map_err(|e| format!("ssl.principal.mapping.rules: {e}"))?;
            auth.principal_mapper = Some(Arc::new(mapper));
            let identity = TlsIdentity::load(listener, tls.clone()).map_err(|e| e.to_string())?;
            auth.tls = Some(Arc::new(identity));
        }
        if let Some(sasl) = &security.sasl {
            auth.sasl = Some(SaslServer::new(sasl.clone(), credentials)?);
        }
        info!(
            listener,
            protocol = security.protocol.name(),
            "listener security configured"
        );
        Ok(auth)
    }
}

/// Runs the TLS handshake; the principal is the mapped subject of the client certificate, or
/// ANONYMOUS without one. `Err` is the reason the connection is closed.
pub async fn tls_handshake(
    auth: &ListenerAuth,
    tls: &TlsIdentity,
    stream: TcpStream,
) -> Result<(TlsStream<TcpStream>, KafkaPrincipal), String> {
    let accepted = tokio::time::timeout(AUTHENTICATION_TIMEOUT, tls.acceptor().accept(stream))
        .await
        .map_err(|_| format!("TLS handshake not finished within {AUTHENTICATION_TIMEOUT:?}"))?
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let certificate = accepted
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first());
    let principal = match certificate {
        None => KafkaPrincipal::anonymous(),
        Some(certificate) => {
            let dn = crate::security::principal::subject_dn(certificate)?;
            let name = match &auth.principal_mapper {
                Some(mapper) => mapper.map(&dn).ok_or_else(|| {
                    format!("no ssl.principal.mapping.rules rule applies to {dn:?}")
                })?,
                None => dn,
            };
            KafkaPrincipal::user(&name)
        }
    };
    Ok((accepted, principal))
}

/// A finished SASL exchange.
#[derive(Debug)]
pub struct Authenticated {
    pub principal: KafkaPrincipal,
    pub mechanism: SaslMechanism,
}

/// A re-authentication of an authenticated connection: the SaslHandshake that began it and
/// what may not change.
#[derive(Debug)]
pub struct Reauthentication<'a> {
    pub handshake: RequestFrame,
    pub principal: &'a KafkaPrincipal,
    pub mechanism: SaslMechanism,
}

/// Runs the SASL exchange on a connection (from its first request, or from the SaslHandshake
/// of a re-authentication); `Err` is the reason the connection is closed (any error response
/// has been written).
pub async fn sasl_exchange<R, W, S>(
    sasl: &SaslServer,
    reader: &mut FrameReader<R>,
    writer: &mut ResponseWriter<W>,
    service: &S,
    info: &ConnectionInfo,
    reauthentication: Option<Reauthentication<'_>>,
) -> Result<Authenticated, String>
where
    R: AsyncRead + Unpin,
    W: ResponseSocket,
    S: Service,
{
    let (mut first, previous) = match reauthentication {
        Some(r) => (Some(r.handshake), Some((r.principal, r.mechanism))),
        None => (None, None),
    };
    let lifetime_ms = sasl
        .session_lifetime()
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let exchange = async {
        let mut exchange = None;
        loop {
            let frame = match first.take() {
                Some(frame) => frame,
                None => match reader.read_frame().await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => return Err("closed by client before authenticating".to_string()),
                    Err(e) => return Err(format!("read failed during authentication: {e}")),
                },
            };
            let version = frame.version();
            let correlation_id = frame.correlation_id();
            match frame.api_key {
                ApiKey::ApiVersions => {
                    let outcome = service.dispatch(info, frame)?.await;
                    write(writer, outcome).await?;
                }
                ApiKey::SaslHandshake if exchange.is_none() => {
                    let request: SaslHandshakeRequest = decode(&frame)?;
                    let enabled = sasl
                        .mechanism_names()
                        .into_iter()
                        .map(StrBytes::from_static_str)
                        .collect();
                    let mut started = sasl.start(&request.mechanism);
                    let changed = previous.is_some_and(|(_, mechanism)| {
                        started.as_ref().is_some_and(|s| s.mechanism() != mechanism)
                    });
                    if changed || (previous.is_some() && version == 0) {
                        started = None;
                    }
                    let code = if started.is_some() {
                        ErrorCode::NONE
                    } else {
                        ErrorCode::UNSUPPORTED_SASL_MECHANISM
                    };
                    let body = SaslHandshakeResponse::default()
                        .with_error_code(code.code())
                        .with_mechanisms(enabled);
                    respond(writer, &body, version, correlation_id, code).await?;
                    match started {
                        // v0: the SASL tokens follow as bare length-prefixed frames.
                        Some(started) if version == 0 => {
                            return unframed(started, reader, writer, info).await;
                        }
                        Some(started) => exchange = Some(started),
                        None if previous.is_some() => {
                            return Err(refused(
                                info,
                                None,
                                &format!(
                                    "re-authentication with SaslHandshake v{version} and mechanism {:?}: only v1+ with the connection's own mechanism may re-authenticate",
                                    request.mechanism.as_str()
                                ),
                            ))
                        }
                        None => {
                            return Err(refused(
                                info,
                                None,
                                &format!(
                                    "SASL mechanism {:?} is not enabled",
                                    request.mechanism.as_str()
                                ),
                            ))
                        }
                    }
                }
                ApiKey::SaslAuthenticate if exchange.is_some() => {
                    let request: SaslAuthenticateRequest = decode(&frame)?;
                    let Some(current) = exchange.as_mut() else {
                        return Err("SaslAuthenticate without a mechanism".to_string());
                    };
                    let mechanism = current.mechanism();
                    match current.step(&request.auth_bytes) {
                        Ok(Step::Continue { message }) => {
                            let body = SaslAuthenticateResponse::default()
                                .with_auth_bytes(Bytes::from(message));
                            respond(writer, &body, version, correlation_id, ErrorCode::NONE)
                                .await?;
                        }
                        Ok(Step::Done { principal, .. })
                            if previous.is_some_and(|(p, _)| *p != principal) =>
                        {
                            let old = previous.map(|(p, _)| p.to_string()).unwrap_or_default();
                            let message = format!(
                                "Cannot change principals during re-authentication from {old}: {principal}"
                            );
                            let code = ErrorCode::SASL_AUTHENTICATION_FAILED;
                            let body = SaslAuthenticateResponse::default()
                                .with_error_code(code.code())
                                .with_error_message(Some(StrBytes::from_string(message.clone())));
                            respond(writer, &body, version, correlation_id, code).await?;
                            return Err(refused(info, Some(mechanism.name()), &message));
                        }
                        Ok(Step::Done { principal, message }) => {
                            let mut body = SaslAuthenticateResponse::default()
                                .with_auth_bytes(Bytes::from(message));
                            if version >= 1 {
                                body = body.with_session_lifetime_ms(lifetime_ms);
                            }
                            respond(writer, &body, version, correlation_id, ErrorCode::NONE)
                                .await?;
                            return Ok(Authenticated {
                                principal,
                                mechanism,
                            });
                        }
                        Err(failure) => {
                            let code = ErrorCode::SASL_AUTHENTICATION_FAILED;
                            let body = SaslAuthenticateResponse::default()
                                .with_error_code(code.code())
                                .with_error_message(Some(StrBytes::from_string(
                                    failure.message.clone(),
                                )));
                            respond(writer, &body, version, correlation_id, code).await?;
                            return Err(refused(info, Some(mechanism.name()), &failure.reason));
                        }
                    }
                }
                other => {
                    return Err(refused(
                        info,
                        None,
                        &format!(
                            "unexpected {other:?} v{version} request during SASL authentication (ILLEGAL_SASL_STATE)"
                        ),
                    ))
                }
            }
        }
    };
    tokio::time::timeout(AUTHENTICATION_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            format!("SASL authentication not finished within {AUTHENTICATION_TIMEOUT:?}")
        })?
}

/// The exchange after a v0 SaslHandshake (clients from before KIP-152): the client's token
/// arrives as a bare length-prefixed frame and the broker's answer goes back the same way; a
/// failure closes the connection without an answer, as Kafka does.
async fn unframed<R, W>(
    mut exchange: Exchange,
    reader: &mut FrameReader<R>,
    writer: &mut ResponseWriter<W>,
    info: &ConnectionInfo,
) -> Result<Authenticated, String>
where
    R: AsyncRead + Unpin,
    W: ResponseSocket,
{
    let mechanism = exchange.mechanism();
    loop {
        let token = match reader.read_token().await {
            Ok(Some(token)) => token,
            Ok(None) => return Err("closed by client before authenticating".to_string()),
            Err(e) => return Err(format!("read failed during authentication: {e}")),
        };
        match exchange.step(&token) {
            Ok(Step::Continue { message }) => write_token(writer, &message).await?,
            Ok(Step::Done { principal, message }) => {
                write_token(writer, &message).await?;
                return Ok(Authenticated {
                    principal,
                    mechanism,
                });
            }
            Err(failure) => return Err(refused(info, Some(mechanism.name()), &failure.reason)),
        }
    }
}

/// A bare length-prefixed SASL token (the v0 exchange).
async fn write_token<W: ResponseSocket>(
    writer: &mut ResponseWriter<W>,
    message: &[u8],
) -> Result<(), String> {
    let mut frame = bytes::BytesMut::with_capacity(4 + message.len());
    bytes::BufMut::put_u32(&mut frame, message.len() as u32);
    frame.extend_from_slice(message);
    let response = response::Response {
        chunks: vec![response::Chunk::Bytes(frame.freeze())],
        error_code: ErrorCode::NONE,
        throttle: std::time::Duration::ZERO,
    };
    write(writer, Outcome::Respond(response)).await
}

/// Logs a refused authentication and gives the close reason.
fn refused(info: &ConnectionInfo, mechanism: Option<&str>, reason: &str) -> String {
    info!(
        peer = %info.peer,
        listener = %info.listener,
        connection = info.id,
        mechanism = mechanism.unwrap_or("-"),
        reason,
        "authentication failed"
    );
    format!("authentication failed: {reason}")
}

fn decode<T: Decodable>(frame: &RequestFrame) -> Result<T, String> {
    let mut body = frame.body.clone();
    T::decode(&mut body, frame.version()).map_err(|e| {
        format!(
            "malformed {:?} v{} request: {e}",
            frame.api_key,
            frame.version()
        )
    })
}

async fn respond<W: ResponseSocket, R: Encodable + HeaderVersion>(
    writer: &mut ResponseWriter<W>,
    body: &R,
    version: i16,
    correlation_id: i32,
    code: ErrorCode,
) -> Result<(), String> {
    let response = response::encode(body, version, correlation_id, code)
        .map_err(|e| format!("response encoding failed: {e}"))?;
    write(writer, Outcome::Respond(response)).await
}

async fn write<W: ResponseSocket>(
    writer: &mut ResponseWriter<W>,
    outcome: Outcome,
) -> Result<(), String> {
    match outcome {
        Outcome::Respond(response) => {
            writer
                .write(&response)
                .await
                .map_err(|e| format!("write failed: {e}"))?;
            writer
                .flush()
                .await
                .map_err(|e| format!("write failed: {e}"))
        }
        Outcome::Silent(_) => Ok(()),
        Outcome::Close(reason) => Err(reason),
    }
}

//! A minimal Kafka protocol client for broker-to-broker requests (follower fetches, offset
//! sampling): one request at a time on one connection, over TLS with the broker's own
//! certificate when the inter-broker listener is SSL.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes,
};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::security::SaslMechanism;
use crate::config::InterBrokerSasl;
use crate::security::scram_client::ScramClient;
use crate::security::TlsIdentity;

/// How this broker connects to the others' inter-broker listener: TLS with its own certificate
/// and/or a SASL login, as that listener requires.
#[derive(Debug, Default)]
pub struct PeerSecurity {
    pub tls: Option<Arc<TlsIdentity>>,
    pub sasl: Option<InterBrokerSasl>,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    #[error("request timed out")]
    Timeout,
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("TLS with {addr}: {reason}")]
    Tls { addr: String, reason: String },
    #[error("SASL login to {addr} failed: {reason}")]
    Sasl { addr: String, reason: String },
}

/// The byte stream to a peer: plain TCP or TLS over it.
trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerIo for T {}

pub struct PeerConnection {
    stream: Box<dyn PeerIo>,
    buffer: BytesMut,
    next_correlation_id: i32,
    client_id: StrBytes,
    max_response_bytes: usize,
}

impl std::fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConnection")
            .field("client_id", &self.client_id)
            .field("next_correlation_id", &self.next_correlation_id)
            .finish_non_exhaustive()
    }
}

impl PeerConnection {
    /// Connects to `addr` (`host:port`) as `security` says: a TLS handshake as this broker's
    /// identity, checking the peer's certificate against `host`, then a SASL login.
    pub async fn connect(
        addr: &str,
        client_id: String,
        timeout: Duration,
        security: &PeerSecurity,
    ) -> Result<PeerConnection, PeerError> {
        let mut connection = PeerConnection::open(addr, client_id, timeout, security).await?;
        if let Some(sasl) = &security.sasl {
            connection
                .login(sasl, timeout)
                .await
                .map_err(|reason| PeerError::Sasl {
                    addr: addr.to_string(),
                    reason,
                })?;
        }
        Ok(connection)
    }

    async fn open(
        addr: &str,
        client_id: String,
        timeout: Duration,
        security: &PeerSecurity,
    ) -> Result<PeerConnection, PeerError> {
        let tls = security.tls.as_deref();
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| PeerError::ConnectTimeout(addr.to_string()))?
            .map_err(|source| PeerError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn PeerIo> = match tls {
            None => Box::new(tcp),
            Some(identity) => {
                let tls_error = |reason: String| PeerError::Tls {
                    addr: addr.to_string(),
                    reason,
                };
                let connector = identity.connector().ok_or_else(|| {
                    tls_error("the listener has no truststore to check the peer with".into())
                })?;
                let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| tls_error(format!("bad server name {host}: {e}")))?;
                let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| PeerError::ConnectTimeout(addr.to_string()))?
                    .map_err(|e| tls_error(e.to_string()))?;
                Box::new(stream)
            }
        };
        Ok(PeerConnection {
            stream,
            buffer: BytesMut::with_capacity(256 * 1024),
            next_correlation_id: 1,
            client_id: StrBytes::from_string(client_id),
            max_response_bytes: 1 << 30,
        })
    }

    /// SaslHandshake v1 and SaslAuthenticate v2 with the broker's own login.
    async fn login(&mut self, sasl: &InterBrokerSasl, timeout: Duration) -> Result<(), String> {
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(sasl.mechanism.name()));
        let response = self
            .request(&handshake, 1, timeout)
            .await
            .map_err(|e| e.to_string())?;
        if response.error_code != 0 {
            return Err(format!(
                "mechanism {} refused (error {})",
                sasl.mechanism.name(),
                response.error_code
            ));
        }
        let password = sasl.password.expose();
        match sasl.mechanism {
            SaslMechanism::Plain => {
                let token = format!("\0{}\0{password}", sasl.username);
                self.authenticate(token.into_bytes(), timeout).await?;
                Ok(())
            }
            SaslMechanism::Scram(mechanism) => {
                let (mut client, first) = ScramClient::start(mechanism, &sasl.username, password)?;
                let challenge = self.authenticate(first, timeout).await?;
                let last = client.step(&challenge)?.ok_or("no client-final message")?;
                let signature = self.authenticate(last, timeout).await?;
                match client.step(&signature)? {
                    None => Ok(()),
                    Some(_) => Err("the server did not finish the exchange".to_string()),
                }
            }
            SaslMechanism::OAuthBearer => {
                Err("OAUTHBEARER is not an inter-broker mechanism".into())
            }
        }
    }

    /// One SaslAuthenticate round: the server's answer, or its error.
    async fn authenticate(&mut self, token: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, String> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
        let response = self
            .request(&request, 2, timeout)
            .await
            .map_err(|e| e.to_string())?;
        if response.error_code != 0 {
            let message = response
                .error_message
                .map(|m| m.to_string())
                .unwrap_or_default();
            return Err(format!("error {}: {message}", response.error_code));
        }
        Ok(response.auth_bytes.to_vec())
    }

    /// Sends `request` at `version` and waits for its response.
    pub async fn request<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, PeerError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut out = BytesMut::with_capacity(256);
        out.put_i32(0);
        encode_request_header_into_buffer(&mut out, &header)
            .map_err(|e| PeerError::Protocol(e.to_string()))?;
        request
            .encode(&mut out, version)
            .map_err(|e| PeerError::Protocol(e.to_string()))?;
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        tokio::time::timeout(timeout, async {
            self.stream.write_all(&out).await?;
            let mut frame = self.read_frame().await?;
            let header_version = R::Response::header_version(version);
            let response_header = ResponseHeader::decode(&mut frame, header_version)
                .map_err(|e| PeerError::Protocol(e.to_string()))?;
            if response_header.correlation_id != correlation_id {
                return Err(PeerError::Protocol(format!(
                    "correlation id {} does not match request {}",
                    response_header.correlation_id, correlation_id
                )));
            }
            R::Response::decode(&mut frame, version).map_err(|e| PeerError::Protocol(e.to_string()))
        })
        .await
        .map_err(|_| PeerError::Timeout)?
    }

    async fn read_frame(&mut self) -> Result<bytes::Bytes, PeerError> {
        loop {
            if self.buffer.len() >= 4 {
                let len = i32::from_be_bytes([
                    self.buffer[0],
                    self.buffer[1],
                    self.buffer[2],
                    self.buffer[3],
                ]);
                if len < 0 || len as usize > self.max_response_bytes {
                    return Err(PeerError::Protocol(format!("bad response length {len}")));
                }
                let len = len as usize;
                if self.buffer.len() >= 4 + len {
                    self.buffer.advance(4);
                    return Ok(self.buffer.split_to(len).freeze());
                }
                self.buffer.reserve(4 + len - self.buffer.len());
            } else {
                self.buffer.reserve(64 * 1024);
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(PeerError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed the connection",
                )));
            }
        }
    }
}

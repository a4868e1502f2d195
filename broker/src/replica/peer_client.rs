//! A minimal Kafka protocol client for broker-to-broker requests (follower fetches, offset
//! sampling): one request at a time on one connection, over TLS with the broker's own
//! certificate when the inter-broker listener is SSL.

use std::io;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes,
};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::security::TlsIdentity;

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
    /// Connects to `addr` (`host:port`); with `tls`, completes a TLS handshake as that
    /// identity, checking the peer's certificate against `host`.
    pub async fn connect(
        addr: &str,
        client_id: String,
        timeout: Duration,
        tls: Option<&TlsIdentity>,
    ) -> Result<PeerConnection, PeerError> {
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

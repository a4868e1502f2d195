//! Encoded responses: a length-prefixed frame made of in-memory chunks and segment-file regions,
//! and the writer that sends them (coalescing small chunks; file regions go with `sendfile` on a
//! plain socket and are copied through the TLS session on an encrypted one).

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_core::ErrorCode;
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use storage::FileRegion;
use tokio::io::{AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::zerocopy;

/// Chunks below this size are copied into the coalescing buffer rather than written alone.
const COALESCE_LIMIT: usize = 64 * 1024;

/// File regions below this size are read into the coalescing buffer (one positional read from
/// the page cache) instead of being sent with sendfile: for small regions the syscalls that
/// sendfile costs (plus the write it forces for the bytes before it) outweigh the copy.
const INLINE_FILE_LIMIT: usize = 16 * 1024;

/// One piece of a response frame.
#[derive(Debug, Clone)]
pub enum Chunk {
    Bytes(Bytes),
    File(FileRegion),
}

impl Chunk {
    pub fn len(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::File(r) => r.len as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A complete response frame, length prefix included.
#[derive(Debug, Clone)]
pub struct Response {
    pub chunks: Vec<Chunk>,
    /// Kafka error code worth counting in metrics (the top-level or first partition error), NONE if none.
    pub error_code: ErrorCode,
    /// How long the connection is muted once this is written: the client went over a quota
    /// (Kafka mutes the channel, so a client ignoring `throttle_time_ms` is held back too).
    pub throttle: Duration,
}

impl Response {
    /// Total bytes on the wire.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Chunk::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.iter().all(Chunk::is_empty)
    }

    /// Bytes that go out through sendfile.
    pub fn file_bytes(&self) -> u64 {
        self.chunks
            .iter()
            .map(|c| match c {
                Chunk::File(r) => u64::from(r.len),
                Chunk::Bytes(_) => 0,
            })
            .sum()
    }
}

/// The response could not be encoded at the version the client asked for (a broker bug).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode response v{version}: {reason}")]
pub struct EncodeError {
    pub version: i16,
    pub reason: String,
}

/// Writes the length prefix and response header for a body of `body_len` bytes.
pub fn frame_prefix<R: HeaderVersion>(
    version: i16,
    correlation_id: i32,
    body_len: usize,
) -> Result<BytesMut, EncodeError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = R::header_version(version);
    let header_len = header
        .compute_size(header_version)
        .map_err(|e| EncodeError {
            version,
            reason: e.to_string(),
        })?;
    let total = header_len + body_len;
    let total = i32::try_from(total).map_err(|_| EncodeError {
        version,
        reason: format!("response of {total} bytes is too large"),
    })?;
    let mut buf = BytesMut::with_capacity(4 + header_len);
    buf.put_i32(total);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| EncodeError {
            version,
            reason: e.to_string(),
        })?;
    Ok(buf)
}

/// Encodes a whole response message into one chunk.
pub fn encode<R: Encodable + HeaderVersion>(
    body: &R,
    version: i16,
    correlation_id: i32,
    error_code: ErrorCode,
) -> Result<Response, EncodeError> {
    let body_len = body.compute_size(version).map_err(|e| EncodeError {
        version,
        reason: e.to_string(),
    })?;
    let mut buf = frame_prefix::<R>(version, correlation_id, body_len)?;
    buf.reserve(body_len);
    body.encode(&mut buf, version).map_err(|e| EncodeError {
        version,
        reason: e.to_string(),
    })?;
    Ok(Response {
        chunks: vec![Chunk::Bytes(buf.freeze())],
        error_code,
        throttle: Duration::ZERO,
    })
}

/// The sending side of a connection.
pub trait ResponseSocket: AsyncWrite + Unpin + Send {
    /// Sends a large file region after the bytes already written; returns the bytes that went
    /// out without passing through the broker's memory.
    fn send_region(&mut self, region: &FileRegion) -> impl Future<Output = io::Result<u64>> + Send;
}

impl ResponseSocket for OwnedWriteHalf {
    async fn send_region(&mut self, region: &FileRegion) -> io::Result<u64> {
        zerocopy::send_region(self.as_ref(), region).await
    }
}

impl ResponseSocket for WriteHalf<TlsStream<TcpStream>> {
    /// Bytes must be encrypted on their way out: read the region and write it through TLS.
    async fn send_region(&mut self, region: &FileRegion) -> io::Result<u64> {
        let mut bytes = BytesMut::with_capacity(region.len as usize);
        region.read_into(&mut bytes)?;
        self.write_all(&bytes).await?;
        Ok(0)
    }
}

/// Writes responses in order, copying small chunks into one buffer so a burst of small
/// responses costs one `write`, and sending large file regions on their own.
#[derive(Debug)]
pub struct ResponseWriter<W> {
    socket: W,
    pending: BytesMut,
}

impl<W: ResponseSocket> ResponseWriter<W> {
    pub fn new(socket: W) -> ResponseWriter<W> {
        ResponseWriter {
            socket,
            pending: BytesMut::with_capacity(COALESCE_LIMIT),
        }
    }

    /// Queues a response; large file regions and large chunks force the queued bytes out
    /// first. Returns the bytes sent with sendfile.
    pub async fn write(&mut self, response: &Response) -> io::Result<u64> {
        let mut zero_copy = 0;
        for chunk in &response.chunks {
            match chunk {
                Chunk::Bytes(b) if b.len() < COALESCE_LIMIT => {
                    if self.pending.len() + b.len() > COALESCE_LIMIT {
                        self.flush().await?;
                    }
                    self.pending.extend_from_slice(b);
                }
                Chunk::Bytes(b) => {
                    self.flush().await?;
                    self.socket.write_all(b).await?;
                }
                Chunk::File(region) if (region.len as usize) < INLINE_FILE_LIMIT => {
                    if self.pending.len() + region.len as usize > COALESCE_LIMIT {
                        self.flush().await?;
                    }
                    region.read_into(&mut self.pending)?;
                }
                Chunk::File(region) => {
                    self.flush().await?;
                    zero_copy += self.socket.send_region(region).await?;
                }
            }
        }
        Ok(zero_copy)
    }

    /// Sends whatever is queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.socket.write_all(&self.pending).await?;
            self.pending.clear();
        }
        Ok(())
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.socket.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataResponse};
    use kafka_protocol::protocol::Decodable;

    fn flatten(r: &Response) -> Bytes {
        let mut out = BytesMut::new();
        for c in &r.chunks {
            match c {
                Chunk::Bytes(b) => out.extend_from_slice(b),
                Chunk::File(f) => out.extend_from_slice(&f.read_to_bytes().unwrap()),
            }
        }
        out.freeze()
    }

    #[test]
    fn flexible_response_has_tagged_header() {
        let body = MetadataResponse::default().with_throttle_time_ms(5);
        let r = encode(&body, 12, 77, ErrorCode::NONE).unwrap();
        let mut bytes = flatten(&r);
        let len = bytes.get_i32() as usize;
        assert_eq!(len, bytes.len());
        let header = ResponseHeader::decode(&mut bytes, 1).unwrap();
        assert_eq!(header.correlation_id, 77);
        let decoded = MetadataResponse::decode(&mut bytes, 12).unwrap();
        assert_eq!(decoded.throttle_time_ms, 5);
    }

    #[test]
    fn api_versions_header_is_never_flexible() {
        let body = ApiVersionsResponse::default();
        let r = encode(&body, 3, 9, ErrorCode::NONE).unwrap();
        let mut bytes = flatten(&r);
        let _len = bytes.get_i32();
        assert_eq!(bytes.get_i32(), 9);
        ApiVersionsResponse::decode(&mut bytes, 3).unwrap();
        assert!(!bytes.has_remaining());
    }
}

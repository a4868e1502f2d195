//! Length-prefixed Kafka frames: reading them off a socket and splitting the request header.

use std::io;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read; every case closes the connection, as Kafka does.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("request of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("malformed {api:?} v{version} request header: {reason}")]
    BadHeader {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("connection closed mid-frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One request as read from the wire: the decoded header and the undecoded body.
#[derive(Debug)]
pub struct RequestFrame {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
    pub received_at: Instant,
}

impl RequestFrame {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }

    pub fn client_id(&self) -> &str {
        self.header.client_id.as_deref().unwrap_or("")
    }

    /// Splits a complete frame (length prefix removed) into header and body.
    pub fn parse(mut frame: Bytes, received_at: Instant) -> Result<RequestFrame, FrameError> {
        let size = frame.len();
        if size < 8 {
            return Err(FrameError::TooShort(size));
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api_key = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApiKey(key))?;
        let header_version = api_key.request_header_version(version);
        let header = RequestHeader::decode(&mut frame, header_version).map_err(|e| {
            FrameError::BadHeader {
                api: api_key,
                version,
                reason: e.to_string(),
            }
        })?;
        Ok(RequestFrame {
            api_key,
            header,
            body: frame,
            received_at,
        })
    }
}

/// Reads frames from the read half of a connection into one growing buffer, so reading is
/// cancel-safe: a read interrupted by `select!` loses nothing.
#[derive(Debug)]
pub struct FrameReader<R> {
    socket: R,
    buffer: BytesMut,
    max_size: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(socket: R, max_size: usize) -> FrameReader<R> {
        FrameReader {
            socket,
            buffer: BytesMut::with_capacity(64 * 1024),
            max_size,
        }
    }

    /// The next frame, or `None` on a clean close between frames.
    pub async fn read_frame(&mut self) -> Result<Option<RequestFrame>, FrameError> {
        loop {
            if let Some(frame) = self.parse_buffered()? {
                return Ok(Some(frame));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Reads more bytes into the buffer; `false` on a clean close between frames.
    async fn fill(&mut self) -> Result<bool, FrameError> {
        if self.buffer.capacity() - self.buffer.len() < 4096 {
            self.buffer.reserve(64 * 1024);
        }
        if self.socket.read_buf(&mut self.buffer).await? == 0 {
            return if self.buffer.is_empty() {
                Ok(false)
            } else {
                Err(FrameError::Truncated)
            };
        }
        Ok(true)
    }

    /// A complete frame already in the buffer, if any (used to drain pipelined requests).
    pub fn parse_buffered(&mut self) -> Result<Option<RequestFrame>, FrameError> {
        match self.take_frame(true)? {
            Some(frame) => RequestFrame::parse(frame, Instant::now()).map(Some),
            None => Ok(None),
        }
    }

    /// The next length-prefixed frame as raw bytes, not a Kafka request: the SASL tokens a
    /// client sends after a v0 SaslHandshake. `None` on a clean close.
    pub async fn read_token(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if let Some(token) = self.take_frame(false)? {
                return Ok(Some(token));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Splits a complete frame (without its length prefix) off the buffer; `request` frames
    /// are refused early when their would-be API key is unknown.
    fn take_frame(&mut self, request: bool) -> Result<Option<Bytes>, FrameError> {
        if self.buffer.len() < 4 {
            return Ok(None);
        }
        let declared = i32::from_be_bytes([
            self.buffer[0],
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
        ]);
        if declared < 0 {
            return Err(FrameError::NegativeLength(declared));
        }
        let size = declared as usize;
        if size > self.max_size {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_size,
            });
        }
        if self.buffer.len() < 4 + size {
            // Garbage is refused as soon as its would-be API key is in, without waiting for
            // (and buffering) the body its length prefix announces.
            if request && self.buffer.len() >= 6 {
                let key = i16::from_be_bytes([self.buffer[4], self.buffer[5]]);
                if ApiKey::try_from(key).is_err() {
                    return Err(FrameError::UnknownApiKey(key));
                }
            }
            // The buffer grows with the bytes that arrive (read_frame reserves as it reads),
            // not to the announced size: a peer announcing socket.request.max.bytes and sending
            // nothing costs no memory.
            return Ok(None);
        }
        self.buffer.advance(4);
        Ok(Some(self.buffer.split_to(size).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::protocol::{encode_request_header_into_buffer, StrBytes};

    fn header_bytes(key: ApiKey, version: i16, correlation: i32) -> BytesMut {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).unwrap();
        buf
    }

    #[test]
    fn parses_header_and_keeps_body() {
        let mut buf = header_bytes(ApiKey::Metadata, 9, 42);
        buf.put_slice(b"body");
        let frame = RequestFrame::parse(buf.freeze(), Instant::now()).unwrap();
        assert_eq!(frame.api_key, ApiKey::Metadata);
        assert_eq!(frame.version(), 9);
        assert_eq!(frame.correlation_id(), 42);
        assert_eq!(frame.client_id(), "test");
        assert_eq!(&frame.body[..], b"body");
    }

    #[test]
    fn rejects_unknown_keys_and_short_frames() {
        let mut buf = BytesMut::new();
        buf.put_i16(999);
        buf.put_i16(0);
        buf.put_i32(1);
        buf.put_i16(-1);
        assert!(matches!(
            RequestFrame::parse(buf.freeze(), Instant::now()),
            Err(FrameError::UnknownApiKey(999))
        ));
        assert!(matches!(
            RequestFrame::parse(Bytes::from_static(b"\0\x03"), Instant::now()),
            Err(FrameError::TooShort(2))
        ));
    }

    #[tokio::test]
    async fn garbage_is_refused_before_its_announced_body_arrives() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (read_half, _write_half) = server.into_split();
        let mut reader = FrameReader::new(read_half, 1 << 20);
        // 500 kB announced, then "GA" where the API key goes; nothing more is sent.
        client.write_all(&500_000i32.to_be_bytes()).await.unwrap();
        client.write_all(b"GA").await.unwrap();
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), reader.read_frame())
            .await
            .expect("refused without waiting for the body");
        assert!(matches!(result, Err(FrameError::UnknownApiKey(0x4741))));
        assert!(reader.buffer.capacity() < 500_000);
    }

    #[tokio::test]
    async fn too_large_frames_are_refused_from_the_prefix() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (read_half, _write_half) = server.into_split();
        let mut reader = FrameReader::new(read_half, 1024);
        client.write_all(&1025i32.to_be_bytes()).await.unwrap();
        let result = reader.read_frame().await;
        assert!(matches!(
            result,
            Err(FrameError::TooLarge {
                size: 1025,
                max: 1024
            })
        ));
    }

    #[test]
    fn truncated_client_id_is_a_bad_header() {
        let mut buf = BytesMut::new();
        buf.put_i16(ApiKey::Metadata as i16);
        buf.put_i16(1);
        buf.put_i32(1);
        buf.put_i16(50);
        buf.put_slice(b"abc");
        assert!(matches!(
            RequestFrame::parse(buf.freeze(), Instant::now()),
            Err(FrameError::BadHeader { .. })
        ));
    }
}

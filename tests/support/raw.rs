//! A raw Kafka protocol connection for tests that must send exactly the bytes they choose.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest, TopicName,
};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes,
};

pub struct RawConnection {
    stream: TcpStream,
    correlation: i32,
}

impl RawConnection {
    pub fn connect(addr: SocketAddr) -> RawConnection {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        RawConnection {
            stream,
            correlation: 0,
        }
    }

    /// Connects from the loopback address `source` (e.g. 127.0.0.2), so tests can act as
    /// several client hosts.
    pub fn connect_from(source: &str, addr: SocketAddr) -> io::Result<RawConnection> {
        let source: std::net::IpAddr = source
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{source}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stream = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(source, 0))?;
            let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            stream.into_std()
        })?;
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(RawConnection {
            stream,
            correlation: 0,
        })
    }

    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Encodes header + body for `request` at `version`, with a length prefix.
    pub fn frame<R: Request>(&mut self, request: &R, version: i16) -> Bytes {
        self.frame_with_key(R::KEY, version, |buf| {
            request.encode(buf, version).expect("encode request")
        })
    }

    pub fn frame_with_key(
        &mut self,
        api_key: i16,
        version: i16,
        body: impl FnOnce(&mut BytesMut),
    ) -> Bytes {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        if encode_request_header_into_buffer(&mut buf, &header).is_err() {
            // An API key the codec does not know: write a v1 header by hand.
            buf.truncate(4);
            buf.put_i16(api_key);
            buf.put_i16(version);
            buf.put_i32(self.correlation);
            buf.put_i16(8);
            buf.put_slice(b"raw-test");
        }
        body(&mut buf);
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        buf.freeze()
    }

    pub fn read_frame(&mut self) -> io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        if len < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "negative length",
            ));
        }
        let mut body = vec![0u8; len as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// Sends `request` and decodes the response.
    pub fn request<R: Request>(&mut self, request: &R, version: i16) -> io::Result<R::Response> {
        let frame = self.frame(request, version);
        self.send_raw(&frame)?;
        let mut response = self.read_frame()?;
        let header = ResponseHeader::decode(&mut response, R::Response::header_version(version))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        assert_eq!(header.correlation_id, self.correlation, "correlation id");
        R::Response::decode(&mut response, version)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    /// Authenticates with SASL/PLAIN (SaslHandshake v1, SaslAuthenticate v2); the broker's
    /// error code (0 on success).
    pub fn authenticate_plain(&mut self, user: &str, password: &str) -> io::Result<i16> {
        Ok(self.authenticate_plain_session(user, password)?.0)
    }

    /// [`RawConnection::authenticate_plain`], with the session lifetime the broker grants (ms,
    /// 0 for no limit).
    pub fn authenticate_plain_session(
        &mut self,
        user: &str,
        password: &str,
    ) -> io::Result<(i16, i64)> {
        let handshake =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        let response = self.request(&handshake, 1)?;
        if response.error_code != 0 {
            return Ok((response.error_code, 0));
        }
        let token = Bytes::from(format!("\0{user}\0{password}").into_bytes());
        let authenticate = SaslAuthenticateRequest::default().with_auth_bytes(token);
        let response = self.request(&authenticate, 2)?;
        Ok((response.error_code, response.session_lifetime_ms))
    }

    /// True if the broker closes the connection within `timeout` (reads EOF or reset).
    pub fn is_closed_within(&mut self, timeout: Duration) -> bool {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("timeout");
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

/// A consumer's Fetch (by topic name, up to 1 MiB) of one partition from `offset`, waiting up
/// to `max_wait_ms` for at least one byte.
pub fn consumer_fetch(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

/// Reads the i32 error code at the start of a response body after skipping `skip` bytes.
pub fn peek_i16(mut body: Bytes, skip: usize) -> i16 {
    body.advance(skip);
    body.get_i16()
}

//! Decoding a request frame exactly as the server does before a handler runs, without running
//! it: the header split of the network layer, the routing of the [`table`](super::table), then
//! the body decoding of the API's own table entry. Fuzzing drives the decoders through this.

use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use super::table;
use crate::server::frame::FrameError;
use crate::server::RequestFrame;

/// A frame the server would hand to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedRequest {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
}

/// Why the server closes the connection instead of handling a frame.
#[derive(Debug, thiserror::Error)]
pub enum RequestDecodeError {
    /// The frame is too short, names an unknown API key or has a malformed header.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The API or version is not served, or the body does not decode.
    #[error("{0}")]
    Refused(String),
}

/// Decodes one request frame (its length prefix removed) as the server does: the header, the
/// served API and version, and the body as that API's handler decodes it.
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, RequestDecodeError> {
    let frame = RequestFrame::parse(frame, Instant::now())?;
    let decoded = DecodedRequest {
        api_key: frame.api_key,
        version: frame.version(),
        correlation_id: frame.correlation_id(),
    };
    let spec =
        table::route(decoded.api_key, decoded.version).map_err(RequestDecodeError::Refused)?;
    (spec.check_body)(decoded.version, frame.body).map_err(RequestDecodeError::Refused)?;
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{MetadataRequest, RequestHeader};
    use kafka_protocol::protocol::{encode_request_header_into_buffer, Encodable, StrBytes};

    fn frame(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("t")));
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).unwrap();
        buf.put_slice(body);
        buf.freeze()
    }

    #[test]
    fn decodes_a_served_request() {
        let mut body = BytesMut::new();
        MetadataRequest::default().encode(&mut body, 12).unwrap();
        let decoded = decode_request(frame(ApiKey::Metadata, 12, &body)).unwrap();
        assert_eq!(
            decoded,
            DecodedRequest {
                api_key: ApiKey::Metadata,
                version: 12,
                correlation_id: 7
            }
        );
    }

    #[test]
    fn refuses_unserved_versions_and_truncated_bodies() {
        assert!(matches!(
            decode_request(frame(ApiKey::Produce, 2, b"")),
            Err(RequestDecodeError::Refused(_))
        ));
        assert!(matches!(
            decode_request(frame(ApiKey::Metadata, 12, b"\x05")),
            Err(RequestDecodeError::Refused(_))
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(b"\x00")),
            Err(RequestDecodeError::Frame(FrameError::TooShort(1)))
        ));
    }

    #[test]
    fn api_versions_of_an_unserved_version_is_handled_not_decoded() {
        assert!(decode_request(frame(ApiKey::ApiVersions, 99, b"\xff")).is_ok());
        assert!(decode_request(frame(ApiKey::ApiVersions, 3, b"\xff")).is_err());
    }
}

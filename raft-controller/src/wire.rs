//! The quorum RPC decoders on their own, run on a frame's payload exactly as the server runs
//! them on requests and the client on responses; public so they can be fuzzed without peers.

use crate::network::frame;
use crate::network::messages::RpcResponse;
use crate::network::server::{self, Incoming};

/// A request payload the server would serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedRpc {
    /// The envelope id its answer carries.
    pub id: u64,
    /// The request variant (`AppendEntries`, `Vote`, ...).
    pub kind: &'static str,
}

/// Why a payload is refused.
#[derive(Debug, thiserror::Error)]
pub enum RpcDecodeError {
    /// The id is readable, the body is not: the server answers `BadRequest`.
    #[error("undecodable request {id}: {reason}")]
    Undecodable { id: u64, reason: String },
    /// Not an envelope at all: the connection is closed.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Decodes a request payload as the RPC server does.
pub fn decode_request(payload: &[u8]) -> Result<DecodedRpc, RpcDecodeError> {
    match server::decode_request(payload) {
        Incoming::Request(envelope) => Ok(DecodedRpc {
            id: envelope.id,
            kind: envelope.body.kind(),
        }),
        Incoming::Undecodable { id, error } => Err(RpcDecodeError::Undecodable {
            id,
            reason: error.to_string(),
        }),
        Incoming::Malformed(error) => Err(RpcDecodeError::Malformed(error.to_string())),
    }
}

/// Decodes a response payload as the RPC client does; returns the id of the request it answers.
pub fn decode_response(payload: &[u8]) -> Result<u64, RpcDecodeError> {
    frame::decode::<RpcResponse>(payload)
        .map(|envelope| envelope.id)
        .map_err(|error| RpcDecodeError::Malformed(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_requests_and_responses() {
        let vote = br#"{"id":3,"body":{"AddLearner":{"node_id":4,"addr":"127.0.0.1:9093"}}}"#;
        assert_eq!(
            decode_request(vote).unwrap(),
            DecodedRpc {
                id: 3,
                kind: "AddLearner"
            }
        );
        let answer = br#"{"id":3,"body":{"BadRequest":"no"}}"#;
        assert_eq!(decode_response(answer).unwrap(), 3);
    }

    #[test]
    fn an_unknown_body_with_an_id_is_undecodable_garbage_is_malformed() {
        assert!(matches!(
            decode_request(br#"{"id":9,"body":{"Nope":1}}"#),
            Err(RpcDecodeError::Undecodable { id: 9, .. })
        ));
        assert!(matches!(
            decode_request(b"\xff{"),
            Err(RpcDecodeError::Malformed(_))
        ));
        assert!(decode_response(b"[]").is_err());
    }
}

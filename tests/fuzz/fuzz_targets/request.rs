//! A request frame (length prefix removed: API key, version, correlation id, client id, tagged
//! fields, body) decoded by the broker exactly as its server does before any handler runs.
#![no_main]

use broker::wire::decode_request;
use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // ApiVersions answers any version, even an unsupported one (KIP-511); others are refused.
    if let Ok(request) = decode_request(Bytes::copy_from_slice(data)) {
        assert!(
            request.version >= 0 || request.api_key == ApiKey::ApiVersions,
            "negative version served: {request:?}"
        );
    }
});

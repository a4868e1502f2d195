//! ApiVersions: advertises the [`table`](super::table) of APIs and versions this broker serves.

use bytes::Bytes;
use kafka_core::ErrorCode;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::Decodable;
use tracing::warn;

use super::table::{self, APIS};
use super::{Outcome, RequestContext};

fn api_version(api: ApiKey, min: i16, max: i16) -> ApiVersion {
    ApiVersion::default()
        .with_api_key(api as i16)
        .with_min_version(min)
        .with_max_version(max)
}

/// KIP-511: client software name and version must match this pattern.
fn valid_software_field(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
        }
        _ => false,
    }
}

/// The versions of ApiVersions this broker serves.
fn served() -> (i16, i16) {
    table::spec(ApiKey::ApiVersions).map_or((0, 0), |s| (s.min_version, s.max_version))
}

/// The request body, as far as it is read: only served versions from v3 on carry fields that
/// matter (the client software name and version); an unsupported version is answered without
/// reading its body. `Err` is a malformed body, which closes the connection.
pub(super) fn decode(version: i16, mut body: Bytes) -> Result<Option<ApiVersionsRequest>, String> {
    let (min, max) = served();
    if version < 3 || version < min || version > max {
        return Ok(None);
    }
    ApiVersionsRequest::decode(&mut body, version)
        .map(Some)
        .map_err(|e| format!("malformed ApiVersions v{version} request: {e}"))
}

pub(super) fn handle(rc: &RequestContext, body: Bytes) -> Outcome {
    let (min, max) = served();
    if rc.version > max || rc.version < min {
        // KIP-511: answer at v0 with the versions of ApiVersions itself, so the client retries.
        let response = ApiVersionsResponse::default()
            .with_error_code(ErrorCode::UNSUPPORTED_VERSION.code())
            .with_api_keys(vec![api_version(ApiKey::ApiVersions, min, max)]);
        let downgraded = RequestContext {
            version: 0,
            ..rc.clone()
        };
        return downgraded.respond(&response, ErrorCode::UNSUPPORTED_VERSION);
    }
    let mut error_code = ErrorCode::NONE;
    match decode(rc.version, body) {
        Ok(Some(request)) => {
            let name = request.client_software_name.as_str();
            let version = request.client_software_version.as_str();
            if !valid_software_field(name) || !valid_software_field(version) {
                warn!(peer = %rc.connection.peer, name, version, "invalid client software name/version");
                error_code = ErrorCode::INVALID_REQUEST;
            }
        }
        Ok(None) => {}
        Err(reason) => return Outcome::Close(reason),
    }
    let api_keys = if error_code == ErrorCode::NONE {
        APIS.iter()
            .map(|s| api_version(s.key, s.min_version, s.max_version))
            .collect()
    } else {
        Vec::new()
    };
    let response = ApiVersionsResponse::default()
        .with_error_code(error_code.code())
        .with_api_keys(api_keys);
    rc.respond(&response, error_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_field_pattern() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("2.0.2"));
        assert!(valid_software_field("confluent-kafka-python"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-bad"));
        assert!(!valid_software_field("bad name"));
    }
}

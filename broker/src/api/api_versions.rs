//! ApiVersions: the table of APIs and versions this broker really implements.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::Decodable;
use tracing::warn;

use super::{Outcome, RequestContext};
use crate::context::Context;
use crate::error_codes::{INVALID_REQUEST, NONE, UNSUPPORTED_VERSION};

/// (API, min version, max version) for every API served.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeProducers, 0, 0),
];

/// The version range served for `api`, if it is served at all.
pub fn supported_range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|(_, min, max)| (*min, *max))
}

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

pub fn handle(_ctx: &Context, rc: &RequestContext, mut body: Bytes) -> Outcome {
    let (min, max) = supported_range(ApiKey::ApiVersions).unwrap_or((0, 0));
    if rc.version > max || rc.version < min {
        // KIP-511: answer at v0 with the versions of ApiVersions itself, so the client retries.
        let response = ApiVersionsResponse::default()
            .with_error_code(UNSUPPORTED_VERSION)
            .with_api_keys(vec![api_version(ApiKey::ApiVersions, min, max)]);
        let downgraded = RequestContext {
            version: 0,
            ..rc.clone()
        };
        return downgraded.respond(&response, UNSUPPORTED_VERSION);
    }
    let mut error_code = NONE;
    if rc.version >= 3 {
        match ApiVersionsRequest::decode(&mut body, rc.version) {
            Ok(request) => {
                let name = request.client_software_name.as_str();
                let version = request.client_software_version.as_str();
                if !valid_software_field(name) || !valid_software_field(version) {
                    warn!(peer = %rc.connection.peer, name, version, "invalid client software name/version");
                    error_code = INVALID_REQUEST;
                }
            }
            Err(e) => {
                return Outcome::Close(format!(
                    "malformed ApiVersions v{} request: {e}",
                    rc.version
                ));
            }
        }
    }
    let api_keys = if error_code == NONE {
        SUPPORTED_APIS
            .iter()
            .map(|(k, min, max)| api_version(*k, *min, *max))
            .collect()
    } else {
        Vec::new()
    };
    let response = ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys);
    rc.respond(&response, error_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Message;

    #[test]
    fn advertised_versions_are_within_what_the_codec_supports() {
        for (api, min, max) in SUPPORTED_APIS {
            let codec = api.valid_versions();
            assert!(min <= max, "{api:?}");
            assert!(
                *min >= codec.min && *max <= codec.max,
                "{api:?} {min}..{max} vs codec {codec}"
            );
        }
        assert_eq!(ApiVersionsRequest::VERSIONS.max, 4);
    }

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

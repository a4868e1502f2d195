//! The one table of served APIs: each API's key, the versions served and its handler. Dispatch,
//! the ApiVersions answer and the per-API request metrics all read it, so an API is added (or
//! its versions widened) in exactly one place.

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Decodable;

use super::{
    acls, api_versions, client_quotas, cluster, configs, delete_records, fetch, groups,
    leader_epochs, list_offsets, metadata, offsets, produce, producer_ids, ready, sasl,
    scram_credentials, topics, Pending, RequestContext,
};
use crate::context::Context;

/// Starts a request on its handler: decodes the body and returns what is left to wait for.
/// `Err` closes the connection (a malformed body: Kafka's InvalidRequestException).
type Handler = fn(&Arc<Context>, RequestContext, Bytes) -> Result<Pending, String>;

/// Decodes a body at a version exactly as the handler does, and drops the result.
type BodyCheck = fn(i16, Bytes) -> Result<(), String>;

/// One served API.
#[derive(Debug)]
pub(crate) struct ApiSpec {
    pub(crate) key: ApiKey,
    pub(crate) min_version: i16,
    pub(crate) max_version: i16,
    /// Kafka's request name, the `request=` label of the request metrics.
    pub(crate) name: &'static str,
    pub(crate) handler: Handler,
    /// The handler's own body decoding on its own (for `wire::decode_request`).
    pub(crate) check_body: BodyCheck,
}

impl ApiSpec {
    pub(crate) fn versions(&self) -> RangeInclusive<i16> {
        self.min_version..=self.max_version
    }
}

/// Decodes the body and hands it, with the request context, to `$handler`; `check_body`
/// decodes the same type, the one `$handler` takes.
macro_rules! api {
    ($key:ident, $min:literal ..= $max:literal, $handler:path) => {
        ApiSpec {
            key: ApiKey::$key,
            min_version: $min,
            max_version: $max,
            name: stringify!($key),
            handler: |ctx, rc, body| {
                let request = decode(rc.api_key, rc.version, body)?;
                Ok($handler(ctx, rc, request))
            },
            check_body: |version, body| decode_for($handler, ApiKey::$key, version, body),
        }
    };
}

/// Every API this broker serves, with the versions it really implements.
pub(crate) const APIS: &[ApiSpec] = &[
    api!(Produce, 3..=11, produce::handle),
    api!(Fetch, 4..=17, fetch::handle),
    api!(ListOffsets, 1..=8, list_offsets::handle),
    api!(Metadata, 0..=12, metadata::handle),
    api!(OffsetCommit, 2..=9, offsets::offset_commit),
    api!(OffsetFetch, 1..=9, offsets::offset_fetch),
    api!(FindCoordinator, 0..=6, groups::find_coordinator),
    api!(JoinGroup, 0..=9, groups::join_group),
    api!(Heartbeat, 0..=4, groups::heartbeat),
    api!(LeaveGroup, 0..=5, groups::leave_group),
    api!(SyncGroup, 0..=5, groups::sync_group),
    api!(DescribeGroups, 0..=5, groups::describe_groups),
    api!(ListGroups, 0..=5, groups::list_groups),
    ApiSpec {
        key: ApiKey::ApiVersions,
        min_version: 0,
        max_version: 4,
        name: "ApiVersions",
        // Decodes its own body: an unsupported version is answered, not refused (KIP-511).
        handler: |_, rc, body| Ok(ready(api_versions::handle(&rc, body))),
        check_body: |version, body| api_versions::decode(version, body).map(drop),
    },
    api!(CreateTopics, 2..=7, topics::create_topics),
    api!(DeleteTopics, 1..=6, topics::delete_topics),
    api!(DeleteRecords, 0..=2, delete_records::handle),
    api!(InitProducerId, 0..=5, producer_ids::init_producer_id),
    api!(OffsetForLeaderEpoch, 2..=4, leader_epochs::handle),
    api!(DescribeConfigs, 1..=4, configs::describe),
    api!(AlterConfigs, 0..=2, configs::alter),
    api!(DescribeLogDirs, 1..=4, cluster::describe_log_dirs),
    api!(CreatePartitions, 0..=3, topics::create_partitions),
    api!(DeleteGroups, 0..=2, groups::delete_groups),
    api!(ElectLeaders, 0..=2, cluster::elect_leaders),
    api!(IncrementalAlterConfigs, 0..=1, configs::incremental_alter),
    api!(OffsetDelete, 0..=0, offsets::offset_delete),
    api!(DescribeCluster, 0..=1, cluster::describe_cluster),
    api!(DescribeProducers, 0..=0, producer_ids::describe_producers),
    api!(SaslHandshake, 0..=1, sasl::sasl_handshake),
    api!(SaslAuthenticate, 0..=2, sasl::sasl_authenticate),
    api!(DescribeAcls, 1..=3, acls::describe_acls),
    api!(CreateAcls, 1..=3, acls::create_acls),
    api!(DeleteAcls, 1..=3, acls::delete_acls),
    api!(
        DescribeUserScramCredentials,
        0..=0,
        scram_credentials::describe
    ),
    api!(AlterUserScramCredentials, 0..=0, scram_credentials::alter),
    api!(DescribeClientQuotas, 0..=1, client_quotas::describe),
    api!(AlterClientQuotas, 0..=1, client_quotas::alter),
];

/// The table entry of `api`, if it is served at all.
pub(crate) fn spec(api: ApiKey) -> Option<&'static ApiSpec> {
    APIS.iter().find(|s| s.key == api)
}

/// The served entry for a request of `api` at `version`, or why the connection is closed: an
/// API this broker does not serve, or a version outside the served range (except ApiVersions,
/// which answers unsupported versions itself, KIP-511).
pub(crate) fn route(api: ApiKey, version: i16) -> Result<&'static ApiSpec, String> {
    let spec = spec(api).ok_or_else(|| format!("api {api:?} is not supported by this broker"))?;
    if api != ApiKey::ApiVersions && !spec.versions().contains(&version) {
        return Err(format!(
            "{api:?} v{version} is not supported (supported: v{}..=v{})",
            spec.min_version, spec.max_version
        ));
    }
    Ok(spec)
}

/// Decodes a request body; a malformed body closes the connection.
fn decode<T: Decodable>(api: ApiKey, version: i16, mut body: Bytes) -> Result<T, String> {
    T::decode(&mut body, version).map_err(|e| format!("malformed {api:?} v{version} request: {e}"))
}

/// [`decode`] into the request type `handler` takes.
fn decode_for<T: Decodable>(
    _handler: fn(&Arc<Context>, RequestContext, T) -> Pending,
    api: ApiKey,
    version: i16,
    body: Bytes,
) -> Result<(), String> {
    decode::<T>(api, version, body).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Message;

    #[test]
    fn each_api_once_within_what_the_codec_supports() {
        for (i, s) in APIS.iter().enumerate() {
            let codec = s.key.valid_versions();
            assert!(s.min_version <= s.max_version, "{:?}", s.key);
            assert!(
                s.min_version >= codec.min && s.max_version <= codec.max,
                "{:?} {:?} vs codec {codec}",
                s.key,
                s.versions()
            );
            assert_eq!(format!("{:?}", s.key), s.name);
            assert!(
                APIS[..i].iter().all(|other| other.key != s.key),
                "{:?} listed twice",
                s.key
            );
        }
        assert_eq!(
            spec(ApiKey::ApiVersions).map(ApiSpec::versions),
            Some(0..=kafka_protocol::messages::ApiVersionsRequest::VERSIONS.max)
        );
    }
}

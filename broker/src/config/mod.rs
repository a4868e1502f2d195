//! Broker configuration: Kafka property names resolved into typed settings.

pub mod connections;
pub mod definitions;
pub mod listener;
pub mod security;
pub mod sources;

use std::collections::BTreeMap;
use std::path::PathBuf;

use storage::LogConfig;

pub use connections::{ConnectionLimitsConfig, ListenerConnectionLimits};
pub use definitions::{definition, is_known_property, ConfigType, Definition, BROKER_PROPERTIES};
pub use listener::Listener;
pub use security::{InterBrokerSasl, ListenerSecurity, SecurityProtocol};
pub use sources::{Origin, Properties};

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("line {line} is not key=value: {text:?}")]
    Syntax { line: usize, text: String },
    #[error("override {0:?} is not key=value")]
    Override(String),
    #[error("{key}={value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

/// On/off/auto switches (`kubernetes.enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toggle {
    On,
    Off,
    Auto,
}

/// Every typed broker setting.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub rack: Option<String>,
    /// Client listeners (everything but the controller listener).
    pub listeners: Vec<Listener>,
    /// The listener that carries the Raft metadata quorum.
    pub controller_listener: Listener,
    /// What clients are told, one per client listener (same names).
    pub advertised_listeners: Vec<Listener>,
    pub inter_broker_listener_name: String,
    /// How each client listener authenticates connections (`listener.security.protocol.map`
    /// and the `ssl.*` / `sasl.*` settings), keyed by listener name.
    pub listener_security: BTreeMap<String, ListenerSecurity>,
    /// `sasl.scram.bootstrap.credentials.file`: SCRAM users created at start-up if missing.
    pub scram_bootstrap_file: Option<PathBuf>,
    /// How this broker logs in to the inter-broker listener of the others, when it is SASL.
    pub inter_broker_sasl: Option<InterBrokerSasl>,
    /// How the controller (Raft) listener secures its connections: PLAINTEXT or SSL.
    pub controller_security: ListenerSecurity,
    /// ACL enforcement (`authorizer.class.name`).
    pub authorizer_enabled: bool,
    /// `super.users`, as `User:name` strings.
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
    pub voters: BTreeMap<i32, String>,
    pub quorum_election_timeout_ms: u64,
    pub quorum_heartbeat_interval_ms: u64,
    pub quorum_request_timeout_ms: u64,
    pub metadata_snapshot_records: u64,
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    pub cluster_id: Option<String>,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub min_insync_replicas: i32,
    pub auto_create_topics: bool,
    pub delete_topic_enable: bool,
    pub unclean_leader_election: bool,
    pub auto_leader_rebalance: bool,
    pub leader_imbalance_check_interval_ms: u64,
    pub message_max_bytes: u32,
    /// Topic-level defaults derived from the `log.*` properties.
    pub log_defaults: LogConfig,
    pub log_retention_check_interval_ms: u64,
    pub recovery_threads: usize,
    pub replica_lag_time_max_ms: u64,
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_response_max_bytes: i32,
    pub replica_fetch_wait_max_ms: i32,
    pub replica_fetch_min_bytes: i32,
    pub replica_fetch_backoff_ms: u64,
    pub hw_checkpoint_interval_ms: u64,
    pub rack_aware_replica_selector: bool,
    pub offsets_topic_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: u64,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: u64,
    pub offsets_commit_timeout_ms: u64,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_max_size: i32,
    pub socket_request_max_bytes: usize,
    pub connections_max_idle_ms: u64,
    pub queued_max_requests: usize,
    /// `max.connections*` and `max.connection.creation.rate`, broker-wide and per listener.
    pub connection_limits: ConnectionLimitsConfig,
    /// `quota.window.num`: the longest client-quota throttle, in windows.
    pub quota_window_num: u32,
    /// `quota.window.size.seconds`: the allowance a client may use at once.
    pub quota_window_size_seconds: u32,
    pub io_threads: usize,
    pub metrics_listener: Option<String>,
    pub controlled_shutdown: bool,
    pub controlled_shutdown_timeout_ms: u64,
    pub kubernetes: Toggle,
    pub topic_reconciler: Toggle,
    pub kubernetes_namespace: Option<String>,
    /// The explicitly set properties, for DescribeConfigs.
    pub properties: Properties,
}

/// Typed access to merged properties (explicit value, else the table default).
struct Resolver<'a> {
    props: &'a Properties,
}

impl Resolver<'_> {
    fn raw(&self, key: &str) -> Option<String> {
        if let Some(v) = self.props.get(key) {
            return Some(v.to_string());
        }
        definition(key)
            .map(|d| d.default)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
    }

    fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|e| Self::invalid(key, &v, e.to_string())),
        }
    }

    fn req<T: std::str::FromStr>(&self, key: &str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.parse(key)?
            .ok_or_else(|| Self::invalid(key, "", "a value is required"))
    }

    fn boolean(&self, key: &str) -> Result<bool, ConfigError> {
        match self.raw(key).as_deref().map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Self::invalid(key, v, "expected true or false")),
            None => Ok(false),
        }
    }

    fn toggle(&self, key: &str) -> Result<Toggle, ConfigError> {
        match self.raw(key).as_deref().map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Toggle::On),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Toggle::Off),
            Some(v) if v.eq_ignore_ascii_case("auto") => Ok(Toggle::Auto),
            Some(v) => Err(Self::invalid(key, v, "expected true, false or auto")),
            None => Ok(Toggle::Auto),
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        self.raw(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.raw(key)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl BrokerConfig {
    /// Resolves the explicit properties against the defaults.
    pub fn from_properties(props: Properties) -> Result<BrokerConfig, ConfigError> {
        let r = Resolver { props: &props };
        let node_id: i32 = match r.parse::<i32>("broker.id")? {
            Some(id) if props.get("broker.id").is_some() => id,
            _ => r.req("node.id")?,
        };
        if node_id < 0 {
            return Err(Resolver::invalid(
                "node.id",
                &node_id.to_string(),
                "must be >= 0",
            ));
        }

        let controller_names = r.list("controller.listener.names");
        let mut listeners = Vec::new();
        let mut controller_listener = None;
        for text in r.list("listeners") {
            let listener = Listener::parse(&text)
                .map_err(|reason| Resolver::invalid("listeners", &text, reason))?;
            if controller_names.iter().any(|n| n == &listener.name) {
                controller_listener = Some(listener);
            } else {
                listeners.push(listener);
            }
        }
        let controller_listener = controller_listener.ok_or_else(|| {
            Resolver::invalid(
                "listeners",
                &r.raw("listeners").unwrap_or_default(),
                format!("no listener named by controller.listener.names ({controller_names:?})"),
            )
        })?;
        if listeners.is_empty() {
            return Err(Resolver::invalid(
                "listeners",
                &r.raw("listeners").unwrap_or_default(),
                "at least one client listener is required",
            ));
        }
        let mut advertised_listeners = Vec::new();
        for text in r.list("advertised.listeners") {
            let listener = Listener::parse(&text)
                .map_err(|reason| Resolver::invalid("advertised.listeners", &text, reason))?;
            advertised_listeners.push(listener);
        }
        let advertised_listeners = listeners
            .iter()
            .map(|l| {
                advertised_listeners
                    .iter()
                    .find(|a| a.name == l.name)
                    .cloned()
                    .unwrap_or_else(|| l.advertisable())
            })
            .collect();
        let inter_broker_listener_name = r
            .string("inter.broker.listener.name")
            .unwrap_or_else(|| "PLAINTEXT".to_string());
        if !listeners
            .iter()
            .any(|l| l.name == inter_broker_listener_name)
        {
            return Err(Resolver::invalid(
                "inter.broker.listener.name",
                &inter_broker_listener_name,
                "no such client listener",
            ));
        }

        let ResolvedSecurity {
            clients: listener_security,
            controller: controller_security,
            inter_broker_sasl,
        } = resolve_listener_security(
            &r,
            &listeners,
            &controller_listener,
            &inter_broker_listener_name,
        )?;

        let voters_text = r.raw("controller.quorum.voters").unwrap_or_default();
        let voters = kafka_core::parse_voters(&voters_text).map_err(|e| {
            Resolver::invalid("controller.quorum.voters", &voters_text, e.to_string())
        })?;

        let mut log_dirs: Vec<PathBuf> =
            r.list("log.dirs").into_iter().map(PathBuf::from).collect();
        if props.get("log.dirs").is_none() {
            if let Some(dir) = r.string("log.dir") {
                log_dirs = vec![PathBuf::from(dir)];
            }
        }
        if log_dirs.is_empty() {
            return Err(Resolver::invalid(
                "log.dirs",
                "",
                "at least one directory is required",
            ));
        }

        let message_max_bytes: u32 = r.req("message.max.bytes")?;
        let log_defaults = log_defaults(&r, message_max_bytes)?;

        let selector = r.string("replica.selector.class").unwrap_or_default();
        let rack_aware_replica_selector = match selector.as_str() {
            "rack" | "org.apache.kafka.common.replica.RackAwareReplicaSelector" => true,
            "leader" | "" | "org.apache.kafka.common.replica.LeaderSelector" => false,
            other => {
                return Err(Resolver::invalid(
                    "replica.selector.class",
                    other,
                    "expected rack or leader",
                ))
            }
        };

        let io_threads: usize = r.req("num.io.threads")?;
        let listener_names: Vec<String> = listeners.iter().map(|l| l.name.clone()).collect();
        let connection_limits =
            ConnectionLimitsConfig::resolve(&props, |key| r.raw(key), &listener_names)?;
        let config = BrokerConfig {
            node_id,
            rack: r.string("broker.rack"),
            listeners,
            controller_listener,
            advertised_listeners,
            inter_broker_listener_name,
            listener_security,
            controller_security,
            inter_broker_sasl,
            scram_bootstrap_file: r
                .string("sasl.scram.bootstrap.credentials.file")
                .map(PathBuf::from),
            authorizer_enabled: authorizer_enabled(&r)?,
            super_users: r
                .string("super.users")
                .unwrap_or_default()
                .split(';')
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            allow_everyone_if_no_acl_found: r.boolean("allow.everyone.if.no.acl.found")?,
            voters,
            quorum_election_timeout_ms: r.req("controller.quorum.election.timeout.ms")?,
            quorum_heartbeat_interval_ms: r.req("controller.quorum.heartbeat.interval.ms")?,
            quorum_request_timeout_ms: r.req("controller.quorum.request.timeout.ms")?,
            metadata_snapshot_records: r.req("metadata.snapshot.max.new.records")?,
            broker_session_timeout_ms: r.req("broker.session.timeout.ms")?,
            broker_heartbeat_interval_ms: r.req("broker.heartbeat.interval.ms")?,
            cluster_id: r.string("cluster.id"),
            log_dirs,
            num_partitions: positive(&r, "num.partitions")?,
            default_replication_factor: positive(&r, "default.replication.factor")?,
            min_insync_replicas: positive(&r, "min.insync.replicas")?,
            auto_create_topics: r.boolean("auto.create.topics.enable")?,
            delete_topic_enable: r.boolean("delete.topic.enable")?,
            unclean_leader_election: r.boolean("unclean.leader.election.enable")?,
            auto_leader_rebalance: r.boolean("auto.leader.rebalance.enable")?,
            leader_imbalance_check_interval_ms: r
                .req::<u64>("leader.imbalance.check.interval.seconds")?
                .saturating_mul(1000),
            message_max_bytes,
            log_defaults,
            log_retention_check_interval_ms: r.req("log.retention.check.interval.ms")?,
            recovery_threads: r.req::<usize>("num.recovery.threads.per.data.dir")?.max(1),
            replica_lag_time_max_ms: r.req("replica.lag.time.max.ms")?,
            replica_fetch_max_bytes: positive(&r, "replica.fetch.max.bytes")?,
            replica_fetch_response_max_bytes: positive(&r, "replica.fetch.response.max.bytes")?,
            replica_fetch_wait_max_ms: r.req("replica.fetch.wait.max.ms")?,
            replica_fetch_min_bytes: r.req("replica.fetch.min.bytes")?,
            replica_fetch_backoff_ms: r.req("replica.fetch.backoff.ms")?,
            hw_checkpoint_interval_ms: r.req("replica.high.watermark.checkpoint.interval.ms")?,
            rack_aware_replica_selector,
            offsets_topic_partitions: positive(&r, "offsets.topic.num.partitions")?,
            offsets_topic_replication_factor: positive(&r, "offsets.topic.replication.factor")?,
            offsets_topic_segment_bytes: r.req("offsets.topic.segment.bytes")?,
            offsets_retention_ms: r
                .req::<i64>("offsets.retention.minutes")?
                .saturating_mul(60_000),
            offsets_retention_check_interval_ms: r.req("offsets.retention.check.interval.ms")?,
            offsets_commit_timeout_ms: r.req("offsets.commit.timeout.ms")?,
            group_initial_rebalance_delay_ms: r.req("group.initial.rebalance.delay.ms")?,
            group_min_session_timeout_ms: r.req("group.min.session.timeout.ms")?,
            group_max_session_timeout_ms: r.req("group.max.session.timeout.ms")?,
            group_max_size: positive(&r, "group.max.size")?,
            socket_request_max_bytes: r.req("socket.request.max.bytes")?,
            connections_max_idle_ms: r.req("connections.max.idle.ms")?,
            queued_max_requests: positive(&r, "queued.max.requests")?,
            connection_limits,
            quota_window_num: positive(&r, "quota.window.num")?,
            quota_window_size_seconds: positive(&r, "quota.window.size.seconds")?,
            io_threads,
            metrics_listener: r.string("metrics.listener"),
            controlled_shutdown: r.boolean("controlled.shutdown.enable")?,
            controlled_shutdown_timeout_ms: r.req("controlled.shutdown.timeout.ms")?,
            kubernetes: r.toggle("kubernetes.enabled")?,
            topic_reconciler: r.toggle("kubernetes.topic.reconciler.enable")?,
            kubernetes_namespace: r.string("kubernetes.namespace"),
            properties: props.clone(),
        };
        Ok(config)
    }

    /// The listener followers use to reach leaders.
    pub fn inter_broker_listener(&self) -> Option<&Listener> {
        self.advertised_listeners
            .iter()
            .find(|l| l.name == self.inter_broker_listener_name)
    }

    /// The value a broker property has (explicit or default), as DescribeConfigs reports it.
    pub fn effective_value(&self, key: &str) -> Option<String> {
        Resolver {
            props: &self.properties,
        }
        .raw(key)
    }
}

/// What `resolve_listener_security` finds.
struct ResolvedSecurity {
    clients: BTreeMap<String, ListenerSecurity>,
    controller: ListenerSecurity,
    inter_broker_sasl: Option<InterBrokerSasl>,
}

/// Each client listener's security settings, and the controller listener's. The inter-broker
/// and controller listeners may be PLAINTEXT or SSL (brokers dial them with their own
/// certificate, so SSL needs a truststore to check peers with); the inter-broker one may also
/// be SASL, with the broker's own login from its JAAS config.
fn resolve_listener_security(
    r: &Resolver<'_>,
    listeners: &[Listener],
    controller: &Listener,
    inter_broker: &str,
) -> Result<ResolvedSecurity, ConfigError> {
    const MAP: &str = "listener.security.protocol.map";
    let map = security::parse_protocol_map(&r.raw(MAP).unwrap_or_default())?;
    let protocol_of = |name: &str| {
        map.get(name)
            .copied()
            .or_else(|| SecurityProtocol::parse(name))
            .unwrap_or(SecurityProtocol::Plaintext)
    };
    let raw = |key: &str| r.raw(key);
    let internal = |name: &str, sasl_allowed: bool| -> Result<ListenerSecurity, ConfigError> {
        let protocol = protocol_of(name);
        let refuse =
            |reason: String| Resolver::invalid(MAP, &r.raw(MAP).unwrap_or_default(), reason);
        let plain_or_tls = matches!(
            protocol,
            SecurityProtocol::Plaintext | SecurityProtocol::Ssl
        );
        if !plain_or_tls && !sasl_allowed {
            return Err(refuse(format!(
                "listener {name} carries the metadata quorum, which supports PLAINTEXT and SSL, not {}",
                protocol.name()
            )));
        }
        let security = security::resolve_listener(name, protocol, &raw)?;
        if security
            .tls
            .as_ref()
            .is_some_and(|t| t.truststore.is_none())
        {
            return Err(refuse(format!(
                "listener {name} is SSL and carries broker-to-broker traffic: it needs ssl.truststore.location (or ssl.truststore.certificates) to check other brokers' certificates"
            )));
        }
        Ok(security)
    };
    let inter_broker_security = internal(inter_broker, true)?;
    let inter_broker_sasl =
        security::inter_broker_sasl(inter_broker, &inter_broker_security, &raw)?;
    let controller_security = internal(&controller.name, false)?;
    let clients = listeners
        .iter()
        .map(|l| {
            security::resolve_listener(&l.name, protocol_of(&l.name), &raw)
                .map(|s| (l.name.clone(), s))
        })
        .collect::<Result<_, _>>()?;
    Ok(ResolvedSecurity {
        clients,
        controller: controller_security,
        inter_broker_sasl,
    })
}

/// Whether `authorizer.class.name` names one of Kafka's ACL authorizers.
fn authorizer_enabled(r: &Resolver<'_>) -> Result<bool, ConfigError> {
    match r.string("authorizer.class.name").as_deref() {
        None => Ok(false),
        Some(
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            | "kafka.security.authorizer.AclAuthorizer",
        ) => Ok(true),
        Some(other) => Err(Resolver::invalid(
            "authorizer.class.name",
            other,
            "expected org.apache.kafka.metadata.authorizer.StandardAuthorizer (ACLs in the metadata log) or empty",
        )),
    }
}

fn positive<T>(r: &Resolver<'_>, key: &str) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Default + std::fmt::Display,
    T::Err: std::fmt::Display,
{
    let v: T = r.req(key)?;
    if v <= T::default() {
        return Err(Resolver::invalid(key, &v.to_string(), "must be positive"));
    }
    Ok(v)
}

fn log_defaults(r: &Resolver<'_>, message_max_bytes: u32) -> Result<LogConfig, ConfigError> {
    let mut c = LogConfig {
        segment_bytes: r.req("log.segment.bytes")?,
        segment_index_bytes: r.req("log.index.size.max.bytes")?,
        index_interval_bytes: r.req("log.index.interval.bytes")?,
        retention_bytes: r.req("log.retention.bytes")?,
        delete_retention_ms: r.req("log.cleaner.delete.retention.ms")?,
        min_compaction_lag_ms: r.req("log.cleaner.min.compaction.lag.ms")?,
        min_cleanable_dirty_ratio: r.req("log.cleaner.min.cleanable.ratio")?,
        flush_messages: r.req("log.flush.interval.messages")?,
        max_message_bytes: message_max_bytes,
        preallocate: r.boolean("log.preallocate")?,
        producer_id_expiration_ms: r.req("producer.id.expiration.ms")?,
        ..LogConfig::default()
    };
    c.segment_ms = match r.parse::<i64>("log.roll.ms")? {
        Some(ms) => ms,
        None => r.req::<i64>("log.roll.hours")?.saturating_mul(3_600_000),
    };
    c.retention_ms = if let Some(ms) = r.parse::<i64>("log.retention.ms")? {
        ms
    } else if let Some(min) = r.parse::<i64>("log.retention.minutes")? {
        min.saturating_mul(60_000)
    } else {
        r.req::<i64>("log.retention.hours")?
            .saturating_mul(3_600_000)
    };
    if let Some(ms) = r.parse::<i64>("log.flush.interval.ms")? {
        c.flush_ms = ms;
    }
    // The policy and timestamp type are checked by the topic config they default.
    for (key, topic_key) in [
        ("log.cleanup.policy", "cleanup.policy"),
        ("log.message.timestamp.type", "message.timestamp.type"),
    ] {
        let value = r.raw(key).unwrap_or_default();
        c = c
            .with_overrides([(topic_key, value.as_str())])
            .map_err(|e| Resolver::invalid(key, &value, e.to_string()))?;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let mut p = Properties::default();
        for (k, v) in pairs {
            p.set(*k, *v, Origin::CommandLine);
        }
        BrokerConfig::from_properties(p)
    }

    #[test]
    fn defaults_make_a_single_node_broker() {
        let c = config(&[]).unwrap();
        assert_eq!(c.node_id, 0);
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.controller_listener.port, 9093);
        assert_eq!(c.voters.get(&0).map(String::as_str), Some("127.0.0.1:9093"));
        assert_eq!(c.log_dirs, vec![PathBuf::from("./data")]);
        assert_eq!(c.log_defaults.retention_ms, 168 * 3_600_000);
        assert_eq!(c.log_defaults.max_message_bytes, 1_048_588);
        assert!(c.auto_create_topics);
    }

    #[test]
    fn broker_id_alias_and_retention_precedence() {
        let c = config(&[("broker.id", "7"), ("log.retention.minutes", "5")]).unwrap();
        assert_eq!(c.node_id, 7);
        assert_eq!(c.log_defaults.retention_ms, 300_000);
        let c = config(&[("log.retention.ms", "1234"), ("log.retention.minutes", "5")]).unwrap();
        assert_eq!(c.log_defaults.retention_ms, 1234);
    }

    #[test]
    fn rejects_bad_values_with_the_key_named() {
        let err = config(&[("num.partitions", "zero")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("num.partitions"), "{err}");
        assert!(config(&[("num.partitions", "0")]).is_err());
        assert!(config(&[("controller.quorum.voters", "1@nohost")]).is_err());
        assert!(config(&[("listeners", "PLAINTEXT://127.0.0.1:9092")]).is_err());
        assert!(config(&[("log.cleanup.policy", "shred")]).is_err());
    }

    #[test]
    fn advertised_listeners_default_to_listeners() {
        let c = config(&[
            (
                "listeners",
                "PLAINTEXT://0.0.0.0:19092,CONTROLLER://0.0.0.0:19093",
            ),
            ("advertised.listeners", "PLAINTEXT://broker-0.example:19092"),
        ])
        .unwrap();
        assert_eq!(c.advertised_listeners[0].host, "broker-0.example");
        assert_eq!(c.inter_broker_listener().map(|l| l.port), Some(19092));
    }

    #[test]
    fn parses_voters() {
        let c = config(&[("controller.quorum.voters", "0@a:9093, 1@b:9093,2@c:9093")]).unwrap();
        assert_eq!(c.voters.len(), 3);
        assert_eq!(c.voters[&1], "b:9093");
        assert!(config(&[("controller.quorum.voters", "0@a:9093,0@b:9093")]).is_err());
        assert!(config(&[("controller.quorum.voters", "")]).is_err());
        assert!(config(&[("controller.quorum.voters", "-1@a:9093")]).is_err());
        assert!(config(&[("controller.quorum.voters", "0@:9093")]).is_err());
    }
}

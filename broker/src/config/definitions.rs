//! The table of broker properties Rivulet understands: Kafka's names, defaults and documentation.
//!
//! One table feeds the defaults, `rivulet --help`, and DescribeConfigs for the broker resource, so
//! the three never disagree.

pub use kafka_core::ConfigType;

/// One broker property.
#[derive(Clone, Copy, Debug)]
pub struct Definition {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ConfigType,
    pub doc: &'static str,
    /// Shown in `rivulet --help` (the properties an operator sets most often).
    pub common: bool,
}

const fn def(
    name: &'static str,
    default: &'static str,
    kind: ConfigType,
    common: bool,
    doc: &'static str,
) -> Definition {
    Definition {
        name,
        default,
        kind,
        doc,
        common,
    }
}

use ConfigType::*;

/// Every broker property, Kafka's name first. Values are strings as in a properties file.
pub const BROKER_PROPERTIES: &[Definition] = &[
    def("node.id", "0", Int, true, "The broker id (alias: broker.id). In Kubernetes defaults to the StatefulSet ordinal."),
    def("broker.id", "", Int, false, "Alias of node.id."),
    def("broker.rack", "", String, true, "Rack (zone) of this broker, used for rack-aware placement and fetch-from-closest-replica. In Kubernetes read from the node's topology.kubernetes.io/zone label."),
    def("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", List, true, "Listeners as NAME://host:port. The listener named by controller.listener.names carries the metadata quorum."),
    def("advertised.listeners", "", List, true, "Addresses clients should use, per client listener (default: the listeners)."),
    def("controller.listener.names", "CONTROLLER", List, false, "Listener names used by the metadata quorum."),
    def("inter.broker.listener.name", "PLAINTEXT", String, false, "Listener followers use to fetch from leaders."),
    def("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", List, true, "Security protocol of each listener as NAME:PROTOCOL (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL). A listener named after a protocol uses it; any other unlisted listener is PLAINTEXT."),
    def("ssl.keystore.type", "PEM", String, false, "Format of the broker's key and certificates: PEM (JKS and PKCS12 are not read; convert them). Every ssl.* and sasl.enabled.mechanisms setting may be given for one listener as listener.name.<name>.<setting>."),
    def("ssl.keystore.location", "", String, false, "PEM file holding the broker's private key and certificate chain; re-read when it changes."),
    def("ssl.keystore.certificate.chain", "", Password, false, "The broker's certificate chain as PEM text (instead of ssl.keystore.location)."),
    def("ssl.keystore.key", "", Password, false, "The broker's unencrypted private key as PEM text (with ssl.keystore.certificate.chain)."),
    def("ssl.key.password", "", Password, false, "Not supported: give the private key unencrypted."),
    def("ssl.truststore.type", "PEM", String, false, "Format of the CA certificates client certificates must chain to: PEM."),
    def("ssl.truststore.location", "", String, false, "PEM file of the CA certificates client certificates must chain to; re-read when it changes."),
    def("ssl.truststore.certificates", "", Password, false, "The trusted CA certificates as PEM text (instead of ssl.truststore.location)."),
    def("ssl.client.auth", "none", String, false, "Client certificates on TLS listeners: required, requested or none."),
    def("ssl.principal.mapping.rules", "DEFAULT", String, false, "Rules mapping a client certificate's subject DN to a principal name: RULE:pattern/replacement/[LU],...,DEFAULT."),
    def("ssl.enabled.protocols", "TLSv1.2,TLSv1.3", List, false, "TLS versions accepted."),
    def("authorizer.class.name", "", String, true, "Empty: no authorization (every request allowed, the ACL APIs answer SECURITY_DISABLED). org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer): ACLs stored in the metadata log are enforced on every API."),
    def("super.users", "", String, false, "Principals allowed everything, separated by ';' (User:admin;User:ops)."),
    def("allow.everyone.if.no.acl.found", "false", Boolean, false, "Whether a resource no ACL applies to is open to everyone."),
    def("sasl.enabled.mechanisms", "PLAIN", List, false, "SASL mechanisms offered on SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512. PLAIN users come from listener.name.<name>.plain.sasl.jaas.config (user_<name>=\"<password>\" options); SCRAM users from AlterUserScramCredentials (stored in the metadata log)."),
    def("sasl.mechanism.inter.broker.protocol", "PLAIN", String, false, "How brokers log in to each other on a SASL inter-broker listener: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with the username and password options of listener.name.<listener>.<mechanism>.sasl.jaas.config."),
    def("sasl.scram.bootstrap.credentials.file", "", String, false, "SCRAM users to create when they have no credential yet, one per line as kafka-storage format --add-scram takes them: SCRAM-SHA-512=[name=admin,password=...]. Existing credentials are left as they are."),
    def("sasl.oauthbearer.jwks.endpoint.url", "", String, false, "OAUTHBEARER: the JSON Web Key Set token signatures are checked against, as a file: URL (re-read when the file changes; http URLs are not fetched)."),
    def("sasl.oauthbearer.expected.issuer", "", String, false, "OAUTHBEARER: the iss claim every token must carry (empty: not checked)."),
    def("sasl.oauthbearer.expected.audience", "", List, false, "OAUTHBEARER: a token's aud claim must name one of these (empty: not checked)."),
    def("sasl.oauthbearer.sub.claim.name", "sub", String, false, "OAUTHBEARER: the claim that names the principal."),
    def("sasl.oauthbearer.clock.skew.seconds", "30", Int, false, "OAUTHBEARER: leeway when checking exp and nbf."),
    def("connections.max.reauth.ms", "0", Long, false, "Lifetime of a SASL session (KIP-368): clients re-authenticate on the same connection before it ends, and the connection of one that has not is closed at its next request. 0 disables re-authentication."),
    def("controller.quorum.voters", "0@127.0.0.1:9093", List, true, "The metadata quorum voters as id@host:port,... (Kubernetes default: ordinals 0,1,2 of the StatefulSet)."),
    def("controller.quorum.election.timeout.ms", "1000", Int, false, "Minimum Raft election timeout; the maximum is twice this."),
    def("controller.quorum.heartbeat.interval.ms", "200", Int, false, "Raft leader heartbeat interval."),
    def("controller.quorum.request.timeout.ms", "30000", Int, false, "How long a controller request (topic creation, ISR change...) may take."),
    def("metadata.snapshot.max.new.records", "1000", Long, false, "Build a metadata snapshot after this many new records."),
    def("broker.session.timeout.ms", "9000", Int, true, "A broker whose heartbeats stop for this long is fenced and loses its leaderships."),
    def("broker.heartbeat.interval.ms", "2000", Int, false, "Interval between broker heartbeats to the controller."),
    def("cluster.id", "", String, false, "Fixed cluster id (default: generated once by the quorum)."),
    def("log.dirs", "./data", List, true, "Directories holding partition logs (alias: log.dir)."),
    def("log.dir", "", String, false, "Alias of log.dirs."),
    def("num.partitions", "1", Int, true, "Default partition count of auto-created topics and CreateTopics without a count."),
    def("default.replication.factor", "1", Short, true, "Default replication factor of auto-created topics."),
    def("min.insync.replicas", "1", Int, true, "Minimum ISR size for acks=all produce."),
    def("auto.create.topics.enable", "true", Boolean, true, "Create a topic when a client asks for metadata of, or produces to, an unknown topic."),
    def("delete.topic.enable", "true", Boolean, false, "Allow DeleteTopics."),
    def("unclean.leader.election.enable", "false", Boolean, false, "Allow a replica outside the ISR to become leader (may lose acknowledged data)."),
    def("auto.leader.rebalance.enable", "true", Boolean, false, "Move leadership back to preferred replicas periodically."),
    def("leader.imbalance.check.interval.seconds", "300", Long, false, "How often the controller checks for leader imbalance."),
    def("message.max.bytes", "1048588", Int, true, "Largest record batch the broker accepts (topic config max.message.bytes)."),
    def("log.segment.bytes", "1073741824", Int, false, "Segment size before a new one is rolled."),
    def("log.roll.ms", "", Long, false, "Maximum segment age before rolling (default log.roll.hours)."),
    def("log.roll.hours", "168", Int, false, "Maximum segment age in hours before rolling."),
    def("log.retention.ms", "", Long, false, "Time to keep a segment (overrides minutes/hours); -1 keeps forever."),
    def("log.retention.minutes", "", Int, false, "Time to keep a segment in minutes."),
    def("log.retention.hours", "168", Int, true, "Time to keep a segment in hours."),
    def("log.retention.bytes", "-1", Long, false, "Maximum partition size before old segments are deleted; -1 unlimited."),
    def("log.retention.check.interval.ms", "300000", Long, false, "How often retention, time-based roll and compaction run."),
    def("log.cleanup.policy", "delete", List, false, "Default cleanup policy: delete, compact or both."),
    def("log.cleaner.delete.retention.ms", "86400000", Long, false, "How long tombstones are kept after compaction."),
    def("log.cleaner.min.compaction.lag.ms", "0", Long, false, "Minimum age of a record before it can be compacted."),
    def("log.cleaner.min.cleanable.ratio", "0.5", Double, false, "Dirty ratio that triggers compaction."),
    def("log.index.interval.bytes", "4096", Int, false, "Bytes between offset index entries."),
    def("log.index.size.max.bytes", "10485760", Int, false, "Maximum size of an offset or time index file."),
    def("log.flush.interval.messages", "9223372036854775807", Long, false, "Records between fsyncs of a partition (default: leave it to the OS)."),
    def("log.flush.interval.ms", "", Long, false, "Time between fsyncs of a partition (default: leave it to the OS)."),
    def("log.message.timestamp.type", "CreateTime", String, false, "CreateTime or LogAppendTime."),
    def("log.preallocate", "false", Boolean, false, "Preallocate segment files."),
    def("num.recovery.threads.per.data.dir", "2", Int, false, "Threads opening and recovering logs at start-up."),
    def("replica.lag.time.max.ms", "30000", Long, true, "A follower that has not caught up for this long leaves the ISR."),
    def("replica.fetch.max.bytes", "1048576", Int, false, "Bytes a follower asks per partition."),
    def("replica.fetch.response.max.bytes", "10485760", Int, false, "Bytes a follower asks per fetch."),
    def("replica.fetch.wait.max.ms", "500", Int, false, "Long-poll time of follower fetches."),
    def("replica.fetch.min.bytes", "1", Int, false, "Bytes a follower fetch waits for."),
    def("replica.fetch.backoff.ms", "1000", Int, false, "Back-off after a failed follower fetch."),
    def("replica.high.watermark.checkpoint.interval.ms", "5000", Long, false, "How often high watermarks are checkpointed."),
    def("replica.selector.class", "rack", String, false, "Read-replica selection for consumers with client.rack: \"rack\" (closest replica, KIP-392) or \"leader\"."),
    def("offsets.topic.num.partitions", "50", Int, false, "Partitions of __consumer_offsets."),
    def("offsets.topic.replication.factor", "3", Short, false, "Replication factor of __consumer_offsets (capped at the number of live brokers)."),
    def("offsets.topic.segment.bytes", "104857600", Int, false, "Segment size of __consumer_offsets."),
    def("offsets.retention.minutes", "10080", Int, false, "How long committed offsets of an empty group are kept."),
    def("offsets.retention.check.interval.ms", "600000", Long, false, "How often expired offsets are removed."),
    def("offsets.commit.timeout.ms", "5000", Int, false, "How long an offset commit waits for replication."),
    def("group.initial.rebalance.delay.ms", "3000", Int, true, "Delay before the first rebalance of a new group, letting more members join."),
    def("group.min.session.timeout.ms", "6000", Int, false, "Smallest session timeout a consumer may ask for."),
    def("group.max.session.timeout.ms", "1800000", Int, false, "Largest session timeout a consumer may ask for."),
    def("group.max.size", "2147483647", Int, false, "Maximum members of one group."),
    def("producer.id.expiration.ms", "86400000", Int, false, "Idle time after which a producer id's state is dropped."),
    def("socket.request.max.bytes", "104857600", Int, false, "Largest request frame accepted; larger frames close the connection."),
    def("connections.max.idle.ms", "600000", Long, false, "Idle connections are closed after this long."),
    def("queued.max.requests", "500", Int, false, "Requests a single connection may have unanswered; while that many are, the broker stops reading the connection's socket."),
    def("max.connections", "2147483647", Int, false, "Connections over all client listeners except the inter-broker one (KIP-402); at the limit the listener stops accepting until one closes. Per listener: listener.name.<name>.max.connections."),
    def("max.connections.per.ip", "2147483647", Int, false, "Connections from one IP address; one more is closed at once."),
    def("max.connections.per.ip.overrides", "", String, false, "Per-IP exceptions to max.connections.per.ip as ip:count,..."),
    def("max.connection.creation.rate", "2147483647", Int, false, "New connections per second over all client listeners except the inter-broker one (KIP-612); faster ones wait before they are accepted. Per listener: listener.name.<name>.max.connection.creation.rate."),
    def("quota.window.num", "11", Int, false, "A client quota throttles a client for at most this many windows at a time."),
    def("quota.window.size.seconds", "1", Int, false, "A client quota window: a client may use this long's worth of its quota at once."),
    def("num.io.threads", "0", Int, false, "Runtime worker threads (0: one per core)."),
    def("metrics.listener", "127.0.0.1:9404", String, true, "host:port of the HTTP endpoint for /metrics, /livez and /readyz."),
    def("controlled.shutdown.enable", "true", Boolean, false, "On SIGTERM move leaderships away before stopping."),
    def("controlled.shutdown.timeout.ms", "30000", Long, false, "How long controlled shutdown may take before the broker stops anyway."),
    def("kubernetes.enabled", "auto", String, false, "Use the Kubernetes API for broker id, rack, advertised host and voters: true, false or auto (inside a pod)."),
    def("kubernetes.topic.reconciler.enable", "auto", String, false, "Reconcile KafkaTopic resources when this broker is the active controller: true, false or auto (inside a pod)."),
    def("kubernetes.namespace", "", String, false, "Namespace for KafkaTopic resources (default: the pod's namespace)."),
];

/// Looks a property up by name.
pub fn definition(name: &str) -> Option<&'static Definition> {
    BROKER_PROPERTIES.iter().find(|d| d.name == name)
}

/// Whether `name` means something to Rivulet: a broker property, the per-listener form of one
/// (`listener.name.<name>.max.connections`, `listener.name.<name>.ssl.client.auth`, a listener's
/// JAAS config), or a topic config given as a broker-wide default.
pub fn is_known_property(name: &str) -> bool {
    definition(name).is_some()
        || crate::topic_config::topic_config_def(name).is_some()
        || super::connections::split_listener_key(name).is_some()
        || super::security::is_listener_security_key(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique() {
        let mut seen = HashSet::new();
        for d in BROKER_PROPERTIES {
            assert!(seen.insert(d.name), "duplicate property {}", d.name);
        }
    }

    #[test]
    fn lookup_finds_known_and_rejects_unknown() {
        assert_eq!(definition("num.partitions").map(|d| d.default), Some("1"));
        assert!(definition("no.such.property").is_none());
    }
}

//! ACLs with the authorizer on, in the multi-tenant shape a platform team runs: tenants
//! `team-a` and `team-b` authenticate with SASL/PLAIN, each holds prefixed ACLs on its own
//! topics and groups (created by the super user `admin` with CreateAcls), and each gets
//! TOPIC_AUTHORIZATION_FAILED / GROUP_AUTHORIZATION_FAILED on the other's. Metadata hides
//! topics a principal may not describe; an unauthenticated client sees nothing; DescribeAcls
//! needs DESCRIBE on the cluster; DeleteAcls revokes at once.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_core::acl::{AclOperation, AclPermission, PatternType, ResourceType};
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use support::raw::RawConnection;
use support::{kafka, Cluster, ClusterOptions};

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-pw" user_team-a="team-a-pw" user_team-b="team-b-pw";"#;

fn broker() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        Cluster::start(
            ClusterOptions::new(1)
                .listener("SASL")
                .property(
                    "listener.security.protocol.map",
                    "CLIENT:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL:SASL_PLAINTEXT",
                )
                .property("listener.name.sasl.plain.sasl.jaas.config", JAAS)
                .property(
                    "authorizer.class.name",
                    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                )
                .property("super.users", "User:admin")
                .property("offsets.topic.num.partitions", 1),
        )
    })
}

fn sasl_address() -> String {
    broker().listener_address(0, "SASL").to_string()
}

fn as_user(user: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut config = kafka::config(&sasl_address(), extra);
    config
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", user)
        .set("sasl.password", format!("{user}-pw"));
    config
}

/// A raw connection authenticated as `user`.
fn raw_as(user: &str) -> RawConnection {
    let mut raw = RawConnection::connect(broker().listener_address(0, "SASL"));
    assert_eq!(
        raw.authenticate_plain(user, &format!("{user}-pw")).unwrap(),
        0
    );
    raw
}

fn prefixed(
    principal: &str,
    resource: ResourceType,
    prefix: &str,
    operation: AclOperation,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource.code())
        .with_resource_name(StrBytes::from_string(prefix.to_string()))
        .with_resource_pattern_type(PatternType::Prefixed.code())
        .with_principal(StrBytes::from_string(principal.to_string()))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(operation.code())
        .with_permission_type(AclPermission::Allow.code())
}

/// The tenants' ACLs, created once: ALL on `<team>.` topics, READ on `<team>.` groups.
fn tenants() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let mut creations = Vec::new();
        for team in ["team-a", "team-b"] {
            let principal = format!("User:{team}");
            let prefix = format!("{team}.");
            creations.push(prefixed(
                &principal,
                ResourceType::Topic,
                &prefix,
                AclOperation::All,
            ));
            creations.push(prefixed(
                &principal,
                ResourceType::Group,
                &prefix,
                AclOperation::Read,
            ));
        }
        let response = raw_as("admin")
            .request(&CreateAclsRequest::default().with_creations(creations), 3)
            .unwrap();
        assert!(
            response.results.iter().all(|r| r.error_code == 0),
            "CreateAcls: {:?}",
            response.results
        );
        // Each tenant creates its own topic: CREATE comes from its prefixed ALL.
        for team in ["team-a", "team-b"] {
            create_topic(team, &format!("{team}.orders")).expect("tenant creates its own topic");
        }
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn create_topic(user: &str, name: &str) -> Result<(), RDKafkaErrorCode> {
    let admin: AdminClient<DefaultClientContext> = as_user(user, &[]).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = runtime()
        .block_on(admin.create_topics(
            &[NewTopic::new(name, 1, TopicReplication::Fixed(1))],
            &options,
        ))
        .expect("CreateTopics request");
    results
        .into_iter()
        .next()
        .expect("one result")
        .map(drop)
        .map_err(|(_, code)| code)
}

fn produce(user: &str, topic: &str, value: &str) -> Result<(), KafkaError> {
    let producer: FutureProducer = as_user(user, &[("message.timeout.ms", "10000")])
        .create()
        .unwrap();
    runtime()
        .block_on(producer.send(
            FutureRecord::<(), _>::to(topic).payload(value),
            Duration::from_secs(15),
        ))
        .map(drop)
        .map_err(|(e, _)| e)
}

/// Subscribes as `user` in `group` and reads until `count` records or an error arrives.
fn consume(user: &str, group: &str, topic: &str, count: usize) -> Result<Vec<String>, KafkaError> {
    let consumer: BaseConsumer = as_user(
        user,
        &[
            ("group.id", group),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
        ],
    )
    .create()
    .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut values = Vec::new();
    while values.len() < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    if !values.is_empty() {
        consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)?;
    }
    Ok(values)
}

fn code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    e.rdkafka_error_code()
}

#[test]
fn each_tenant_uses_its_own_topics_and_groups() {
    tenants();
    for team in ["team-a", "team-b"] {
        let topic = format!("{team}.orders");
        for i in 0..5 {
            produce(team, &topic, &format!("{team}-{i}"))
                .unwrap_or_else(|e| panic!("{team} produce: {e}"));
        }
        let values = consume(team, &format!("{team}.readers"), &topic, 5)
            .unwrap_or_else(|e| panic!("{team} consume: {e}"));
        let expected: Vec<String> = (0..5).map(|i| format!("{team}-{i}")).collect();
        assert_eq!(values, expected);
    }
}

#[test]
fn a_tenant_is_refused_the_other_tenants_topics_and_groups() {
    tenants();
    let e =
        produce("team-a", "team-b.orders", "intruder").expect_err("team-a wrote to team-b's topic");
    assert_eq!(
        code(&e),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{e}"
    );

    let e = consume("team-a", "team-a.spy", "team-b.orders", 1)
        .expect_err("team-a read team-b's topic");
    assert_eq!(
        code(&e),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{e}"
    );

    let e = consume("team-a", "team-b.readers", "team-a.orders", 1)
        .expect_err("team-a joined team-b's group");
    assert_eq!(
        code(&e),
        Some(RDKafkaErrorCode::GroupAuthorizationFailed),
        "{e}"
    );

    assert_eq!(
        create_topic("team-a", "team-b.sneaky"),
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
}

#[test]
fn metadata_shows_a_principal_only_the_topics_it_may_describe() {
    tenants();
    let topics = |config: ClientConfig| -> Vec<String> {
        let consumer: BaseConsumer = config.create().unwrap();
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("metadata");
        metadata
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .collect()
    };
    let seen = topics(as_user("team-a", &[]));
    assert!(seen.contains(&"team-a.orders".to_string()), "{seen:?}");
    assert!(!seen.iter().any(|t| t.starts_with("team-b.")), "{seen:?}");
    let admin = topics(as_user("admin", &[]));
    assert!(admin.contains(&"team-b.orders".to_string()), "{admin:?}");
    // The PLAINTEXT listener's clients are User:ANONYMOUS: no ACL names them.
    let anonymous = topics(kafka::config(&broker().bootstrap(), &[]));
    assert!(anonymous.is_empty(), "{anonymous:?}");
    let e = {
        let producer: FutureProducer =
            kafka::config(&broker().bootstrap(), &[("message.timeout.ms", "10000")])
                .create()
                .unwrap();
        runtime()
            .block_on(producer.send(
                FutureRecord::<(), _>::to("team-a.orders").payload("x"),
                Duration::from_secs(15),
            ))
            .map(drop)
            .map_err(|(e, _)| e)
            .expect_err("anonymous wrote to a tenant topic")
    };
    assert_eq!(
        code(&e),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{e}"
    );
}

#[test]
fn acls_are_managed_only_by_principals_allowed_on_the_cluster() {
    tenants();
    let describe = DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(ResourceType::Any.code())
        .with_pattern_type_filter(PatternType::Any.code())
        .with_operation(AclOperation::Any.code())
        .with_permission_type(AclPermission::Any.code());
    let refused = raw_as("team-a").request(&describe, 3).unwrap();
    assert_eq!(
        refused.error_code, 31,
        "CLUSTER_AUTHORIZATION_FAILED expected"
    );
    let listed = raw_as("admin").request(&describe, 3).unwrap();
    assert_eq!(listed.error_code, 0);
    let names: Vec<(i8, String, i8)> = listed
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string(), r.pattern_type))
        .collect();
    assert!(names.contains(&(
        ResourceType::Topic.code(),
        "team-a.".to_string(),
        PatternType::Prefixed.code()
    )));
    assert!(names.contains(&(
        ResourceType::Group.code(),
        "team-b.".to_string(),
        PatternType::Prefixed.code()
    )));
    let create = CreateAclsRequest::default().with_creations(vec![prefixed(
        "User:team-a",
        ResourceType::Topic,
        "team-b.",
        AclOperation::All,
    )]);
    let response = raw_as("team-a").request(&create, 3).unwrap();
    assert_eq!(
        response.results[0].error_code, 31,
        "a tenant granted itself access"
    );

    // SCRAM credentials are the cluster's too: a tenant may neither list nor set them.
    let users = DescribeUserScramCredentialsRequest::default().with_users(None);
    let refused = raw_as("team-a").request(&users, 0).unwrap();
    assert_eq!(refused.error_code, 31, "a tenant listed SCRAM users");
    assert_eq!(raw_as("admin").request(&users, 0).unwrap().error_code, 0);
    let upsert = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_static_str("team-b"))
            .with_mechanism(1)
            .with_iterations(4096)
            .with_salt(Bytes::from_static(b"salt"))
            .with_salted_password(Bytes::from_static(&[7; 32])),
    ]);
    let response = raw_as("team-a").request(&upsert, 0).unwrap();
    assert_eq!(
        response.results[0].error_code, 31,
        "a tenant set another user's SCRAM credential"
    );
}

#[test]
fn deleted_acls_stop_granting_access() {
    tenants();
    create_topic("admin", "revoked.topic").expect("admin creates");
    let grant = CreateAclsRequest::default().with_creations(vec![prefixed(
        "User:team-b",
        ResourceType::Topic,
        "revoked.",
        AclOperation::Write,
    )]);
    assert_eq!(
        raw_as("admin").request(&grant, 3).unwrap().results[0].error_code,
        0
    );
    produce("team-b", "revoked.topic", "allowed").expect("granted write");
    let revoke = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
        .with_resource_type_filter(ResourceType::Topic.code())
        .with_resource_name_filter(Some(StrBytes::from_static_str("revoked.")))
        .with_pattern_type_filter(PatternType::Prefixed.code())
        .with_principal_filter(Some(StrBytes::from_static_str("User:team-b")))
        .with_host_filter(None)
        .with_operation(AclOperation::Any.code())
        .with_permission_type(AclPermission::Any.code())]);
    let deleted = raw_as("admin").request(&revoke, 3).unwrap();
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    let e = produce("team-b", "revoked.topic", "refused").expect_err("revoked write still allowed");
    assert_eq!(
        code(&e),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{e}"
    );
}

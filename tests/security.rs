//! Listener security with librdkafka: SSL, SSL with required client certificates, SASL_SSL and
//! SASL_PLAINTEXT (PLAIN) each round-trip records; wrong passwords, unknown users, mechanisms
//! not enabled, and untrusted, expired or missing client certificates are refused with Kafka's
//! errors and a broker log line that says why; a client certificate's subject names the
//! principal through `ssl.principal.mapping.rules`; a rotated certificate file is served
//! without a restart; no password reaches the broker's log or data dir. SCRAM-SHA-256/512
//! users are created, described and deleted with AlterUserScramCredentials /
//! DescribeUserScramCredentials and authenticate librdkafka clients.
//!
//! Certificates are made by the test (rcgen): a cluster CA, the broker's certificate for its
//! loopback address, client certificates from that CA, one expired, one from a CA the broker
//! does not trust.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, SanType,
};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message;
use support::raw::RawConnection;
use support::{kafka, unique_topic, wait_until, Cluster, ClusterOptions};

const PASSWORD: &str = "alice-pw-7f3c1";
const WRONG_PASSWORD: &str = "guess-9d2e4";

/// A CA that signs certificates.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = dn(&[(DnType::CommonName, name)]);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Authority { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// (certificate PEM, key PEM) for `subject`, valid now unless `expired`.
    fn sign(
        &self,
        subject: DistinguishedName,
        ip: Option<IpAddr>,
        expired: bool,
    ) -> (String, String) {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        if let Some(ip) = ip {
            params.subject_alt_names.push(SanType::IpAddress(ip));
        }
        params.distinguished_name = subject;
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let issuer: &Issuer<'_, KeyPair> = &self.issuer;
        let cert = params.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (kind, value) in parts {
        dn.push(kind.clone(), *value);
    }
    dn
}

/// The broker under test and the client credentials the tests use.
struct Secure {
    cluster: Cluster,
    ca: String,
    second_ca: Authority,
    /// CN=team-a,OU=tenants,O=Rivulet Test: maps to User:team-a.
    client: (String, String),
    expired: (String, String),
    untrusted: (String, String),
    reload_keystore: std::path::PathBuf,
    /// Signs the OAUTH listener's tokens.
    token_issuer: TokenIssuer,
    _dir: tempfile::TempDir,
}

/// An ES256 key that signs JWTs, and the key set (JWKS) that names it.
struct TokenIssuer {
    key: ring::signature::EcdsaKeyPair,
    jwks: String,
}

impl TokenIssuer {
    fn new(kid: &str) -> TokenIssuer {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let pair = KeyPair::generate().unwrap();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &pair.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        let point = pair.public_key_raw();
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid, "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]});
        TokenIssuer {
            key,
            jwks: jwks.to_string(),
        }
    }

    /// A signed token for `sub`, expiring `expires_in` seconds from now (negative: expired).
    fn token(&self, sub: &str, audience: &str, expires_in: i64) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let header = serde_json::json!({"alg": "ES256", "kid": "rivulet-test", "typ": "JWT"});
        let claims = serde_json::json!({
            "sub": sub, "iss": "https://idp.rivulet.test", "aud": audience,
            "iat": now, "exp": now + expires_in,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required";

fn secure() -> &'static Secure {
    static SECURE: OnceLock<Secure> = OnceLock::new();
    SECURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("rivulet-test-ca");
        let second_ca = Authority::new("rivulet-rotated-ca");
        let stranger = Authority::new("somebody-else");
        // Clusters of the fixture live on 127.0.x.y: sign for the whole 127.0.0.0/16 we may get.
        let options = ClusterOptions::new(1)
            .listener("SSL")
            .listener("MTLS")
            .listener("SASL_SSL")
            .listener("SASL_PLAINTEXT")
            .listener("RELOAD")
            .listener("REAUTH")
            .listener("OAUTH");
        let broker_ip = probe_broker_ip();
        let (cert, key) = ca.sign(dn(&[(DnType::CommonName, "broker-0")]), Some(broker_ip), false);
        let keystore = dir.path().join("broker.pem");
        std::fs::write(&keystore, format!("{key}{cert}")).unwrap();
        let truststore = dir.path().join("ca.pem");
        std::fs::write(&truststore, ca.pem()).unwrap();
        let reload_keystore = dir.path().join("reload.pem");
        std::fs::write(&reload_keystore, format!("{key}{cert}")).unwrap();
        let token_issuer = TokenIssuer::new("rivulet-test");
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, &token_issuer.jwks).unwrap();
        let jaas = format!("{PLAIN_JAAS} user_alice=\"{PASSWORD}\" user_bob=\"bob-pw-0a9b8\";");
        let bootstrap_users = dir.path().join("scram-users");
        std::fs::write(
            &bootstrap_users,
            format!("# created at start-up\nSCRAM-SHA-512=[name=ops,password={BOOTSTRAP_PASSWORD},iterations=8192]\n"),
        )
        .unwrap();
        let options = options
            .property(
                "listener.security.protocol.map",
                "CLIENT:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,RELOAD:SSL,REAUTH:SASL_PLAINTEXT,OAUTH:SASL_PLAINTEXT",
            )
            .property("ssl.keystore.location", keystore.display())
            .property("ssl.truststore.location", truststore.display())
            .property("listener.name.mtls.ssl.client.auth", "required")
            .property(
                "listener.name.mtls.ssl.principal.mapping.rules",
                "RULE:^CN=([^,]+),OU=tenants,.*$/$1/L,DEFAULT",
            )
            .property("listener.name.sasl_ssl.plain.sasl.jaas.config", &jaas)
            .property(
                "listener.name.sasl_ssl.sasl.enabled.mechanisms",
                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            )
            .property("listener.name.sasl_plaintext.plain.sasl.jaas.config", &jaas)
            .property("listener.name.reauth.plain.sasl.jaas.config", &jaas)
            .property("listener.name.oauth.sasl.enabled.mechanisms", "OAUTHBEARER")
            .property(
                "listener.name.oauth.sasl.oauthbearer.jwks.endpoint.url",
                format!("file://{}", jwks.display()),
            )
            .property(
                "sasl.oauthbearer.expected.issuer",
                "https://idp.rivulet.test",
            )
            .property("sasl.oauthbearer.expected.audience", "rivulet")
            .property(
                "listener.name.reauth.connections.max.reauth.ms",
                REAUTH_MS.to_string(),
            )
            .property("listener.name.reload.ssl.keystore.location", reload_keystore.display())
            .property("sasl.scram.bootstrap.credentials.file", bootstrap_users.display())
            .env(
                "RUST_LOG",
                "info,openraft=error,broker::server::connection=debug",
            );
        let cluster = Cluster::start(options);
        assert_eq!(
            cluster.client_address(0).ip(),
            broker_ip,
            "the broker certificate was made for another address"
        );
        let tenant = dn(&[
            (DnType::OrganizationName, "Rivulet Test"),
            (DnType::OrganizationalUnitName, "tenants"),
            (DnType::CommonName, "Team-A"),
        ]);
        Secure {
            cluster,
            client: ca.sign(tenant.clone(), None, false),
            expired: ca.sign(tenant.clone(), None, true),
            untrusted: stranger.sign(tenant, None, false),
            ca: ca.pem(),
            second_ca,
            reload_keystore,
            token_issuer,
            _dir: dir,
        }
    })
}

/// The loopback address the next fixture cluster's first broker gets: the fixture hands out
/// blocks in order, and this test process starts exactly one cluster.
fn probe_broker_ip() -> IpAddr {
    "127.0.1.10".parse().unwrap()
}

/// Errors librdkafka reported through the client context.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<(RDKafkaErrorCode, String)>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
        self.0.lock().unwrap().push((code, reason.to_string()));
    }
}

impl ConsumerContext for Errors {}

/// A client context that hands librdkafka one OAUTHBEARER token.
#[derive(Clone)]
struct Bearer {
    token: String,
    errors: Errors,
}

impl ClientContext for Bearer {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        ClientContext::error(&self.errors, error, reason);
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        Ok(rdkafka::client::OAuthToken {
            token: self.token.clone(),
            principal_name: "token-user".to_string(),
            lifetime_ms: now_ms + 600_000,
        })
    }
}

impl ConsumerContext for Bearer {}

impl Errors {
    fn any(&self, code: RDKafkaErrorCode, text: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|(c, reason)| *c == code && reason.contains(text))
    }

    fn all(&self) -> String {
        format!("{:?}", self.0.lock().unwrap())
    }
}

/// Client settings for `listener` of the test broker.
fn client(listener: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let s = secure();
    let address = s.cluster.listener_address(0, listener).to_string();
    let mut config = kafka::config(&address, extra);
    config.set("socket.timeout.ms", "10000");
    config
}

fn tls(extra: &mut Vec<(&'static str, String)>, ca: &str) {
    extra.push(("ssl.ca.pem", ca.to_string()));
}

fn with_strings<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn settings(
    protocol: &str,
    listener_ca: Option<&str>,
    user: Option<(&str, &str)>,
) -> Vec<(&'static str, String)> {
    let mut extra = vec![("security.protocol", protocol.to_string())];
    if let Some(ca) = listener_ca {
        tls(&mut extra, ca);
    }
    if let Some((name, password)) = user {
        extra.push(("sasl.mechanism", "PLAIN".to_string()));
        extra.push(("sasl.username", name.to_string()));
        extra.push(("sasl.password", password.to_string()));
    }
    extra
}

fn with_certificate(
    mut extra: Vec<(&'static str, String)>,
    cert: &(String, String),
) -> Vec<(&'static str, String)> {
    extra.push(("ssl.certificate.pem", cert.0.clone()));
    extra.push(("ssl.key.pem", cert.1.clone()));
    extra
}

/// Whether a client with `extra` on `listener` gets the cluster's metadata; its errors.
fn connects(listener: &str, extra: &[(&'static str, String)]) -> (bool, Errors) {
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> = client(listener, &with_strings(extra))
        .create_with_context(errors.clone())
        .expect("client");
    let ok = consumer
        .fetch_metadata(None, Duration::from_secs(8))
        .is_ok_and(|m| !m.brokers().is_empty());
    if !ok {
        // Error events reach the context when the client is polled.
        for _ in 0..10 {
            let _ = consumer.poll(Duration::from_millis(100));
        }
    }
    (ok, errors)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Produces `count` records through `listener` and reads them back through it.
fn round_trip(listener: &str, extra: &[(&'static str, String)], count: usize) {
    let s = secure();
    let topic = unique_topic(&format!("secure-{}", listener.to_ascii_lowercase()));
    runtime().block_on(async {
        kafka::create_topic(&s.cluster.bootstrap(), &topic, 1, 1, &[]).await;
        let producer: rdkafka::producer::FutureProducer = client(listener, &with_strings(extra))
            .create()
            .expect("producer");
        for i in 0..count {
            let value = format!("{listener}-{i}");
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic).payload(&value),
                    Duration::from_secs(20),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce over {listener}: {e}"));
        }
    });
    let mut consumer_settings = with_strings(extra);
    let group = format!("reader-{topic}");
    consumer_settings.push(("group.id", &group));
    consumer_settings.push(("enable.auto.commit", "false"));
    let consumer: BaseConsumer = client(listener, &consumer_settings)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while values.len() < count && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            values.push(String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap());
        }
    }
    let expected: Vec<String> = (0..count).map(|i| format!("{listener}-{i}")).collect();
    assert_eq!(values, expected, "records read back over {listener}");
}

fn broker_log_has(text: &str) -> bool {
    let s = secure();
    wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(s.cluster.log_path(0)).is_ok_and(|log| log.contains(text))
    })
}

#[test]
fn every_security_protocol_round_trips_records() {
    let s = secure();
    round_trip("SSL", &settings("SSL", Some(&s.ca), None), 20);
    round_trip(
        "MTLS",
        &with_certificate(settings("SSL", Some(&s.ca), None), &s.client),
        20,
    );
    round_trip(
        "SASL_SSL",
        &settings("SASL_SSL", Some(&s.ca), Some(("alice", PASSWORD))),
        20,
    );
    round_trip(
        "SASL_PLAINTEXT",
        &settings("SASL_PLAINTEXT", None, Some(("alice", PASSWORD))),
        20,
    );
}

#[test]
fn wrong_passwords_unknown_users_and_disabled_mechanisms_are_refused() {
    let s = secure();
    for (listener, protocol, ca) in [
        ("SASL_SSL", "SASL_SSL", Some(s.ca.as_str())),
        ("SASL_PLAINTEXT", "SASL_PLAINTEXT", None),
    ] {
        let (ok, errors) = connects(
            listener,
            &settings(protocol, ca, Some(("alice", WRONG_PASSWORD))),
        );
        assert!(!ok, "{listener}: a wrong password was accepted");
        assert!(
            wait_until(Duration::from_secs(5), || errors.any(
                RDKafkaErrorCode::Authentication,
                "Invalid username or password"
            )),
            "{listener}: expected SASL_AUTHENTICATION_FAILED, got {}",
            errors.all()
        );
    }
    assert!(broker_log_has("wrong password for user \\\"alice\\\""));

    let (ok, errors) = connects(
        "SASL_PLAINTEXT",
        &settings("SASL_PLAINTEXT", None, Some(("mallory", PASSWORD))),
    );
    assert!(!ok, "an unknown user was accepted");
    assert!(wait_until(Duration::from_secs(5), || errors.any(
        RDKafkaErrorCode::Authentication,
        "Invalid username or password"
    )));
    assert!(broker_log_has("unknown user \\\"mallory\\\""));

    let mut scram = settings("SASL_PLAINTEXT", None, Some(("alice", PASSWORD)));
    scram.retain(|(k, _)| *k != "sasl.mechanism");
    scram.push(("sasl.mechanism", "SCRAM-SHA-512".to_string()));
    let (ok, errors) = connects("SASL_PLAINTEXT", &scram);
    assert!(!ok, "a mechanism that is not enabled was accepted");
    assert!(
        wait_until(Duration::from_secs(5), || errors.all().contains("PLAIN")),
        "expected UNSUPPORTED_SASL_MECHANISM listing PLAIN, got {}",
        errors.all()
    );
    assert!(broker_log_has(
        "SASL mechanism \\\"SCRAM-SHA-512\\\" is not enabled"
    ));

    // A PLAINTEXT client on a SASL listener gets no further than ApiVersions.
    let (ok, _) = connects("SASL_PLAINTEXT", &settings("PLAINTEXT", None, None));
    assert!(
        !ok,
        "an unauthenticated client was served on a SASL listener"
    );
    assert!(broker_log_has(
        "during SASL authentication (ILLEGAL_SASL_STATE)"
    ));
}

#[test]
fn missing_untrusted_and_expired_client_certificates_are_refused() {
    let s = secure();
    let base = settings("SSL", Some(&s.ca), None);
    let cases = [
        (
            "no certificate",
            base.clone(),
            "TLS handshake failed: peer sent no certificates",
        ),
        // OpenSSL (like Java's key managers) withholds a certificate whose issuer is not among
        // the CAs the broker names in its certificate request, so the broker sees none.
        (
            "untrusted certificate",
            with_certificate(base.clone(), &s.untrusted),
            "TLS handshake failed: peer sent no certificates",
        ),
        (
            "expired certificate",
            with_certificate(base.clone(), &s.expired),
            "certificate expired",
        ),
    ];
    for (what, extra, reason) in cases {
        let (ok, errors) = connects("MTLS", &extra);
        assert!(!ok, "MTLS listener accepted a client with {what}");
        assert!(
            broker_log_has(reason),
            "no broker log line with {reason:?} for {what}; client saw {}",
            errors.all()
        );
    }
    // The client side checks the broker too: a client that trusts another CA refuses it.
    let (ok, errors) = connects("SSL", &settings("SSL", Some(&s.second_ca.pem()), None));
    assert!(!ok, "a client connected to a broker its CA did not sign");
    assert!(
        wait_until(Duration::from_secs(5), || errors
            .any(RDKafkaErrorCode::SSL, "certificate verify failed")),
        "expected an SSL verification error, got {}",
        errors.all()
    );
}

#[test]
fn principals_come_from_the_certificate_subject_and_the_sasl_user() {
    let s = secure();
    let (ok, errors) = connects(
        "MTLS",
        &with_certificate(settings("SSL", Some(&s.ca), None), &s.client),
    );
    assert!(ok, "mTLS client refused: {}", errors.all());
    // RULE:^CN=([^,]+),OU=tenants,.*$/$1/L over CN=Team-A,OU=tenants,O=Rivulet Test.
    assert!(broker_log_has("principal=User:team-a"));
    let (ok, errors) = connects("SSL", &settings("SSL", Some(&s.ca), None));
    assert!(ok, "TLS client refused: {}", errors.all());
    assert!(broker_log_has("principal=User:ANONYMOUS"));
    let (ok, errors) = connects(
        "SASL_SSL",
        &settings("SASL_SSL", Some(&s.ca), Some(("bob", "bob-pw-0a9b8"))),
    );
    assert!(ok, "SASL client refused: {}", errors.all());
    assert!(broker_log_has("principal=User:bob"));
}

const SCRAM_PASSWORD: &str = "carol-pw-5e1d7";
/// The bootstrap SCRAM user `ops`'s password (from `sasl.scram.bootstrap.credentials.file`).
const BOOTSTRAP_PASSWORD: &str = "ops-pw-8c4a2";

/// The REAUTH listener's `connections.max.reauth.ms`.
const REAUTH_MS: u64 = 2000;

fn bearer(token: String) -> (ClientConfig, Bearer) {
    let extra = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "OAUTHBEARER"),
    ];
    let context = Bearer {
        token,
        errors: Errors::default(),
    };
    (client("OAUTH", &extra), context)
}

#[test]
fn oauthbearer_tokens_are_validated_against_the_key_set() {
    let s = secure();
    let issuer = &s.token_issuer;
    let topic = unique_topic("secure-oauth");
    runtime().block_on(async {
        kafka::create_topic(&s.cluster.bootstrap(), &topic, 1, 1, &[]).await;
        let (config, context) = bearer(issuer.token("team-a", "rivulet", 600));
        let producer: rdkafka::producer::FutureProducer<Bearer> =
            config.create_with_context(context).expect("producer");
        for i in 0..10 {
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic).payload(&format!("o-{i}")),
                    Duration::from_secs(20),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce with a token: {e}"));
        }
    });
    let (mut config, context) = bearer(issuer.token("team-a", "rivulet", 600));
    config.set("group.id", format!("reader-{topic}"));
    let consumer: BaseConsumer<Bearer> = config.create_with_context(context).expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while values.len() < 10 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            values.push(String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap());
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("o-{i}")).collect();
    assert_eq!(values, expected, "records read back with a token");
    assert!(broker_log_has("principal=User:team-a"));

    let stranger = TokenIssuer::new("rivulet-test");
    for (token, reason) in [
        (issuer.token("team-a", "rivulet", -600), "the token expired"),
        (issuer.token("team-a", "elsewhere", 600), "names none of"),
        (
            stranger.token("team-a", "rivulet", 600),
            "signature does not verify",
        ),
    ] {
        let (config, context) = bearer(token);
        let errors = context.errors.clone();
        let consumer: BaseConsumer<Bearer> = config.create_with_context(context).expect("client");
        let ok = consumer
            .fetch_metadata(None, Duration::from_secs(8))
            .is_ok_and(|m| !m.brokers().is_empty());
        assert!(!ok, "a bad token was accepted ({reason})");
        for _ in 0..10 {
            let _ = consumer.poll(Duration::from_millis(100));
        }
        assert!(
            errors.any(RDKafkaErrorCode::Authentication, "OAUTHBEARER"),
            "expected an authentication error, got {}",
            errors.all()
        );
        assert!(broker_log_has(reason), "no broker log line with {reason:?}");
    }
}

#[test]
fn sessions_end_unless_the_client_re_authenticates() {
    use kafka_protocol::messages::MetadataRequest;
    let s = secure();
    let address = s.cluster.listener_address(0, "REAUTH");
    let metadata = || MetadataRequest::default().with_topics(Some(vec![]));

    // librdkafka re-authenticates before the lifetime ends: one producer keeps producing over
    // several lifetimes.
    let topic = unique_topic("secure-reauth");
    let alice = settings("SASL_PLAINTEXT", None, Some(("alice", PASSWORD)));
    runtime().block_on(async {
        kafka::create_topic(&s.cluster.bootstrap(), &topic, 1, 1, &[]).await;
        let producer: rdkafka::producer::FutureProducer = client("REAUTH", &with_strings(&alice))
            .create()
            .expect("producer");
        for i in 0..25 {
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic).payload(&format!("r-{i}")),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce {i} across re-authentications: {e}"));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    assert!(broker_log_has("re-authenticated"));

    // A client that does not re-authenticate is closed at its first request after the lifetime.
    let mut raw = RawConnection::connect(address);
    assert_eq!(
        raw.authenticate_plain_session("alice", PASSWORD).unwrap(),
        (0, REAUTH_MS as i64)
    );
    assert!(raw.request(&metadata(), 12).is_ok());
    std::thread::sleep(Duration::from_millis(REAUTH_MS + 300));
    assert!(
        raw.request(&metadata(), 12).is_err(),
        "a request was served after the session expired"
    );
    assert!(broker_log_has("after the SASL session expired"));

    // Re-authenticating as the same user renews the session; as another user is refused.
    let mut raw = RawConnection::connect(address);
    assert_eq!(raw.authenticate_plain("alice", PASSWORD).unwrap(), 0);
    std::thread::sleep(Duration::from_millis(REAUTH_MS * 2 / 3));
    assert_eq!(raw.authenticate_plain("alice", PASSWORD).unwrap(), 0);
    std::thread::sleep(Duration::from_millis(REAUTH_MS * 2 / 3));
    assert!(
        raw.request(&metadata(), 12).is_ok(),
        "a renewed session was closed"
    );
    assert_eq!(raw.authenticate_plain("bob", "bob-pw-0a9b8").unwrap(), 58);
    assert!(raw.is_closed_within(Duration::from_secs(5)));
    assert!(broker_log_has(
        "Cannot change principals during re-authentication from User:alice: User:bob"
    ));
}

/// An AlterUserScramCredentials upsertion as a client makes it: the client salts the password.
fn upsertion(
    user: &str,
    mechanism: i8,
    password: &str,
    iterations: i32,
) -> ScramCredentialUpsertion {
    let salt = b"carol-salt-0123".to_vec();
    let (algorithm, len) = match mechanism {
        2 => (ring::pbkdf2::PBKDF2_HMAC_SHA512, 64),
        _ => (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32),
    };
    let mut salted = vec![0u8; len];
    let rounds = std::num::NonZeroU32::new(iterations.max(1) as u32).unwrap();
    ring::pbkdf2::derive(algorithm, rounds, &salt, password.as_bytes(), &mut salted);
    ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(user.to_string()))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(salt.into())
        .with_salted_password(salted.into())
}

fn deletion(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(StrBytes::from_string(user.to_string()))
        .with_mechanism(mechanism)
}

/// An admin connection on the SASL_PLAINTEXT listener, authenticated as alice.
fn admin() -> RawConnection {
    let s = secure();
    let mut raw = RawConnection::connect(s.cluster.listener_address(0, "SASL_PLAINTEXT"));
    assert_eq!(raw.authenticate_plain("alice", PASSWORD).unwrap(), 0);
    raw
}

fn alter(
    raw: &mut RawConnection,
    upsertions: Vec<ScramCredentialUpsertion>,
    deletions: Vec<ScramCredentialDeletion>,
) -> Vec<(String, i16)> {
    let request = AlterUserScramCredentialsRequest::default()
        .with_upsertions(upsertions)
        .with_deletions(deletions);
    raw.request(&request, 0)
        .unwrap()
        .results
        .into_iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect()
}

fn scram(mechanism: &str, user: &str, password: &str) -> Vec<(&'static str, String)> {
    let mut extra = settings("SASL_SSL", Some(&secure().ca), Some((user, password)));
    extra.retain(|(k, _)| *k != "sasl.mechanism");
    extra.push(("sasl.mechanism", mechanism.to_string()));
    extra
}

#[test]
fn scram_users_are_managed_with_the_admin_apis_and_authenticate() {
    let mut raw = admin();
    let none: Vec<(String, i16)> = Vec::new();
    // Not yet a user: refused at the first SCRAM message.
    let (ok, _) = connects("SASL_SSL", &scram("SCRAM-SHA-256", "carol", SCRAM_PASSWORD));
    assert!(!ok, "a user without credentials was accepted");
    assert!(broker_log_has(
        "unknown user \\\"carol\\\" (no SCRAM-SHA-256 credential)"
    ));

    assert_eq!(
        alter(
            &mut raw,
            vec![
                upsertion("carol", 1, SCRAM_PASSWORD, 4096),
                upsertion("carol", 2, SCRAM_PASSWORD, 8192),
            ],
            vec![],
        ),
        vec![("carol".to_string(), 0)]
    );
    round_trip(
        "SASL_SSL",
        &scram("SCRAM-SHA-256", "carol", SCRAM_PASSWORD),
        10,
    );
    round_trip(
        "SASL_SSL",
        &scram("SCRAM-SHA-512", "carol", SCRAM_PASSWORD),
        10,
    );
    assert!(broker_log_has("principal=User:carol"));

    let (ok, errors) = connects("SASL_SSL", &scram("SCRAM-SHA-512", "carol", WRONG_PASSWORD));
    assert!(!ok, "a wrong SCRAM password was accepted");
    assert!(
        wait_until(Duration::from_secs(5), || errors.any(
            RDKafkaErrorCode::Authentication,
            "invalid credentials with SASL mechanism SCRAM-SHA-512"
        )),
        "expected SASL_AUTHENTICATION_FAILED, got {}",
        errors.all()
    );
    assert!(broker_log_has("wrong password for user \\\"carol\\\""));

    // Describe: everyone, then by name (an unknown user is RESOURCE_NOT_FOUND).
    let all = raw
        .request(
            &DescribeUserScramCredentialsRequest::default().with_users(None),
            0,
        )
        .unwrap();
    let carol = all
        .results
        .iter()
        .find(|r| r.user.as_str() == "carol")
        .unwrap();
    let infos: Vec<(i8, i32)> = carol
        .credential_infos
        .iter()
        .map(|c| (c.mechanism, c.iterations))
        .collect();
    assert_eq!(infos, vec![(1, 4096), (2, 8192)]);
    let named = raw
        .request(
            &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                UserName::default().with_name(StrBytes::from_static_str("carol")),
                UserName::default().with_name(StrBytes::from_static_str("nobody")),
            ])),
            0,
        )
        .unwrap();
    let codes: Vec<(String, i16)> = named
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![("carol".to_string(), 0), ("nobody".to_string(), 91)]
    );

    // Kafka's refusals; a user with any refused change keeps its credentials unchanged.
    assert_eq!(
        alter(&mut raw, vec![upsertion("dave", 1, "x", 100)], vec![]),
        vec![("dave".to_string(), 93)]
    );
    assert_eq!(
        alter(&mut raw, vec![upsertion("dave", 7, "x", 4096)], vec![]),
        vec![("dave".to_string(), 33)]
    );
    assert_eq!(
        alter(
            &mut raw,
            vec![upsertion("carol", 1, "other", 4096)],
            vec![deletion("carol", 1)]
        ),
        vec![("carol".to_string(), 92)]
    );
    assert_eq!(
        alter(&mut raw, vec![], vec![deletion("dave", 1)]),
        vec![("dave".to_string(), 91)]
    );
    round_trip(
        "SASL_SSL",
        &scram("SCRAM-SHA-256", "carol", SCRAM_PASSWORD),
        5,
    );

    // Deleting one mechanism's credential refuses that mechanism at once, not the other.
    assert_eq!(
        alter(&mut raw, vec![], vec![deletion("carol", 2)]),
        vec![("carol".to_string(), 0)]
    );
    let (ok, _) = connects("SASL_SSL", &scram("SCRAM-SHA-512", "carol", SCRAM_PASSWORD));
    assert!(!ok, "a deleted SCRAM credential was accepted");
    let (ok, errors) = connects("SASL_SSL", &scram("SCRAM-SHA-256", "carol", SCRAM_PASSWORD));
    assert!(ok, "the remaining credential was refused: {}", errors.all());
    assert_eq!(
        alter(&mut raw, vec![], vec![deletion("carol", 1)]),
        vec![("carol".to_string(), 0)]
    );
    assert_eq!(alter(&mut raw, vec![], vec![]), none);
    let all = raw
        .request(
            &DescribeUserScramCredentialsRequest::default().with_users(None),
            0,
        )
        .unwrap();
    assert!(all.results.iter().all(|r| r.user.as_str() != "carol"));

    // Neither the password nor the salted password is kept anywhere.
    let s = secure();
    let log = std::fs::read(s.cluster.log_path(0)).unwrap();
    let salted = upsertion("carol", 1, SCRAM_PASSWORD, 4096).salted_password;
    for secret in [SCRAM_PASSWORD.as_bytes(), &salted[..]] {
        assert!(
            !contains(&log, secret),
            "the broker log holds a SCRAM secret"
        );
        let found = files_containing(&s.cluster.data_dir(0), secret);
        assert!(
            found.is_empty(),
            "the data dir holds a SCRAM secret in {found:?}"
        );
    }
}

#[test]
fn bootstrap_scram_users_from_a_file_can_log_in() {
    let s = secure();
    let ok = wait_until(Duration::from_secs(20), || {
        connects(
            "SASL_SSL",
            &scram("SCRAM-SHA-512", "ops", BOOTSTRAP_PASSWORD),
        )
        .0
    });
    assert!(ok, "the bootstrap user authenticates with SCRAM-SHA-512");
    let (ok, _) = connects("SASL_SSL", &scram("SCRAM-SHA-512", "ops", WRONG_PASSWORD));
    assert!(!ok, "with its own password only");
    let (ok, _) = connects(
        "SASL_SSL",
        &scram("SCRAM-SHA-256", "ops", BOOTSTRAP_PASSWORD),
    );
    assert!(!ok, "and only with the mechanism the file names");
    let log = std::fs::read(s.cluster.log_path(0)).unwrap();
    assert!(contains(&log, b"bootstrap SCRAM credential created"));
    assert!(
        !contains(&log, BOOTSTRAP_PASSWORD.as_bytes()),
        "the log holds the password"
    );
    let found = files_containing(&s.cluster.data_dir(0), BOOTSTRAP_PASSWORD.as_bytes());
    assert!(
        found.is_empty(),
        "the data dir holds the password in {found:?}"
    );
}

#[test]
fn no_password_reaches_the_broker_log_or_data_dir() {
    let s = secure();
    let (ok, _) = connects(
        "SASL_PLAINTEXT",
        &settings("SASL_PLAINTEXT", None, Some(("alice", PASSWORD))),
    );
    assert!(ok);
    let (ok, _) = connects(
        "SASL_PLAINTEXT",
        &settings("SASL_PLAINTEXT", None, Some(("alice", WRONG_PASSWORD))),
    );
    assert!(!ok);
    assert!(broker_log_has("wrong password for user"));
    let log = std::fs::read(s.cluster.log_path(0)).unwrap();
    for secret in [PASSWORD, WRONG_PASSWORD] {
        assert!(
            !contains(&log, secret.as_bytes()),
            "the broker log holds a password"
        );
        let found = files_containing(&s.cluster.data_dir(0), secret.as_bytes());
        assert!(
            found.is_empty(),
            "the data dir holds a password in {found:?}"
        );
    }
}

#[test]
fn a_rotated_certificate_file_is_served_without_a_restart() {
    let s = secure();
    let old_ca = settings("SSL", Some(&s.ca), None);
    let new_ca = settings("SSL", Some(&s.second_ca.pem()), None);
    let (ok, errors) = connects("RELOAD", &old_ca);
    assert!(
        ok,
        "RELOAD listener refused its first client: {}",
        errors.all()
    );

    // Replace the file the way a Secret update does: write a new one, rename it over.
    let ip = s.cluster.client_address(0).ip();
    let (cert, key) = s.second_ca.sign(
        dn(&[(DnType::CommonName, "broker-0-rotated")]),
        Some(ip),
        false,
    );
    let staged = s.reload_keystore.with_extension("new");
    std::fs::write(&staged, format!("{key}{cert}")).unwrap();
    std::fs::rename(&staged, &s.reload_keystore).unwrap();

    assert!(
        wait_until(Duration::from_secs(20), || connects("RELOAD", &new_ca).0),
        "the rotated certificate was not served"
    );
    assert!(broker_log_has("TLS configuration reloaded"));
    let (ok, _) = connects("RELOAD", &old_ca);
    assert!(!ok, "the old certificate is still served");
}

#[test]
fn a_v0_handshake_takes_the_plain_token_as_a_bare_frame() {
    use kafka_protocol::messages::{MetadataRequest, SaslHandshakeRequest};
    let s = secure();
    let address = s.cluster.listener_address(0, "SASL_PLAINTEXT");
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let token = |password: &str| {
        let token = format!("\0alice\0{password}");
        let mut frame = (token.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(token.as_bytes());
        frame
    };

    let mut raw = RawConnection::connect(address);
    let response = raw.request(&handshake, 0).unwrap();
    assert_eq!(response.error_code, 0);
    assert!(response.mechanisms.iter().any(|m| m.as_str() == "PLAIN"));
    raw.send_raw(&token(PASSWORD)).unwrap();
    assert!(
        raw.read_frame().unwrap().is_empty(),
        "PLAIN's answer is an empty token"
    );
    let metadata = raw.request(&MetadataRequest::default(), 12).unwrap();
    assert_eq!(metadata.brokers.len(), 1);

    let mut raw = RawConnection::connect(address);
    assert_eq!(raw.request(&handshake, 0).unwrap().error_code, 0);
    raw.send_raw(&token(WRONG_PASSWORD)).unwrap();
    assert!(
        raw.is_closed_within(Duration::from_secs(5)),
        "a wrong v0 token must close the connection"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if std::fs::read(&path).is_ok_and(|bytes| contains(&bytes, needle)) {
                found.push(path);
            }
        }
    }
    found
}

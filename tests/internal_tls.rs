//! The internal ports with mutual TLS required: a 3-broker cluster whose REPLICATION
//! (inter-broker) and CONTROLLER (Raft) listeners are SSL with `ssl.client.auth=required`,
//! every broker holding a certificate from the cluster CA. Followers fetch and the quorum talks
//! over TLS; a client without the cluster certificate — plain TCP, TLS with no certificate, or a
//! certificate from another CA — is refused on both ports; the cluster replicates, loses its
//! partition leader to `kill -9` and fails over without losing an acknowledged record, and the
//! killed broker catches up again over TLS when it comes back.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod support;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::raw::RawConnection;
use support::{kafka, unique_topic, wait_until, Cluster, ClusterOptions};

const KEYSTORE: &str = "listener.name.replication.ssl.keystore.location";
const TRUSTSTORE: &str = "listener.name.replication.ssl.truststore.location";

/// A CA and a certificate it signs for `subject` naming `ips`: (CA PEM, chain PEM, key PEM).
fn issue(ca_name: &str, subject: &str, ips: &[String]) -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    for ip in ips {
        leaf.subject_alt_names
            .push(SanType::IpAddress(ip.parse::<IpAddr>().unwrap()));
    }
    leaf.distinguished_name.push(DnType::CommonName, subject);
    let key = KeyPair::generate().unwrap();
    let issuer: &Issuer<'_, KeyPair> = &ca;
    let cert = leaf.signed_by(&key, issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The cluster's certificates: one CA, one broker certificate naming every broker address.
fn cluster_certificates(ips: &[String], dir: &Path) -> Vec<(String, String)> {
    let (ca, cert, key) = issue("rivulet-cluster-ca", "rivulet-broker", ips);
    let keystore = dir.join("broker.pem");
    std::fs::write(&keystore, format!("{key}{cert}")).unwrap();
    let truststore = dir.join("cluster-ca.pem");
    std::fs::write(&truststore, ca).unwrap();
    let mut properties = vec![(
        "listener.security.protocol.map".to_string(),
        "CLIENT:PLAINTEXT,REPLICATION:SSL,CONTROLLER:SSL".to_string(),
    )];
    for listener in ["replication", "controller"] {
        let key = |setting: &str| format!("listener.name.{listener}.{setting}");
        properties.push((key("ssl.keystore.location"), keystore.display().to_string()));
        properties.push((
            key("ssl.truststore.location"),
            truststore.display().to_string(),
        ));
        properties.push((key("ssl.client.auth"), "required".to_string()));
    }
    properties
}

const BROKER_PASSWORD: &str = "broker-login-3b9f1";

/// [`cluster_certificates`], with the inter-broker listener also asking for a SASL login:
/// SCRAM-SHA-512 as user `broker`, whose credential the brokers create from the bootstrap file.
fn sasl_replication(ips: &[String], dir: &Path) -> Vec<(String, String)> {
    let mut properties: Vec<(String, String)> = cluster_certificates(ips, dir)
        .into_iter()
        .filter(|(k, _)| k != "listener.security.protocol.map")
        .collect();
    let users = dir.join("scram-users");
    std::fs::write(
        &users,
        format!("SCRAM-SHA-512=[name=broker,password={BROKER_PASSWORD}]\n"),
    )
    .unwrap();
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"{BROKER_PASSWORD}\";"
    );
    for (k, v) in [
        (
            "listener.security.protocol.map",
            "CLIENT:PLAINTEXT,REPLICATION:SASL_SSL,CONTROLLER:SSL".to_string(),
        ),
        (
            "listener.name.replication.sasl.enabled.mechanisms",
            "SCRAM-SHA-512".to_string(),
        ),
        (
            "sasl.mechanism.inter.broker.protocol",
            "SCRAM-SHA-512".to_string(),
        ),
        (
            "listener.name.replication.scram-sha-512.sasl.jaas.config",
            jaas,
        ),
        (
            "sasl.scram.bootstrap.credentials.file",
            users.display().to_string(),
        ),
    ] {
        properties.push((k.to_string(), v));
    }
    properties
}

/// A TLS client for `addr` trusting `ca`, presenting `identity` (chain and key PEM) if given:
/// whether the server keeps the connection after the handshake (no alert within a second).
fn tls_session_survives(addr: SocketAddr, ca: &str, identity: Option<(&str, &str)>) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => {
            let chain = CertificateDer::pem_slice_iter(chain.as_bytes())
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::IpAddress(addr.ip().into());
    let mut session = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut socket = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut stream = rustls::Stream::new(&mut session, &mut socket);
    // The first read completes the handshake. With TLS 1.3 the client's certificate is
    // checked after the client's side is done, so a refusal shows as an alert (or a close)
    // here; an accepted client is left waiting for a request.
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn keystore_parts(cluster: &Cluster) -> (String, String, String) {
    let pem = std::fs::read_to_string(cluster.tls_property(KEYSTORE).unwrap()).unwrap();
    let ca = std::fs::read_to_string(cluster.tls_property(TRUSTSTORE).unwrap()).unwrap();
    let key_start = pem.find("-----BEGIN PRIVATE KEY-----").unwrap();
    let key_end =
        pem.find("-----END PRIVATE KEY-----").unwrap() + "-----END PRIVATE KEY-----\n".len();
    let key = pem[key_start..key_end].to_string();
    let chain = pem[key_end..].to_string();
    (ca, chain, key)
}

fn refused_everywhere_but_with_the_cluster_certificate(cluster: &Cluster, i: usize) {
    let (ca, chain, key) = keystore_parts(cluster);
    let ip = cluster.replication_address(i).ip().to_string();
    let (_, foreign_chain, foreign_key) = issue("somebody-else", "intruder", &[ip]);
    for (port, addr) in [
        ("replication", cluster.replication_address(i)),
        ("controller", cluster.controller_address(i)),
    ] {
        assert!(
            tls_session_survives(addr, &ca, Some((&chain, &key))),
            "the cluster certificate is accepted on the {port} port"
        );
        assert!(
            !tls_session_survives(addr, &ca, None),
            "a TLS client without a certificate is refused on the {port} port"
        );
        assert!(
            !tls_session_survives(addr, &ca, Some((&foreign_chain, &foreign_key))),
            "a certificate from another CA is refused on the {port} port"
        );
        let mut plain = RawConnection::connect(addr);
        let request = plain.frame(&kafka_protocol::messages::ApiVersionsRequest::default(), 3);
        let _ = plain.send_raw(&request);
        assert!(
            plain.is_closed_within(Duration::from_secs(10)),
            "a plaintext client is closed on the {port} port"
        );
    }
    // A Kafka client without the certificate learns nothing from the replication listener.
    let consumer: BaseConsumer = kafka::config(
        &cluster.replication_address(i).to_string(),
        &[("security.protocol", "SSL"), ("ssl.ca.pem", &ca)],
    )
    .create()
    .expect("consumer");
    assert!(
        consumer
            .fetch_metadata(None, Duration::from_secs(3))
            .is_err(),
        "librdkafka without a client certificate gets no metadata from the replication listener"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A one-partition topic with three replicas (min.insync.replicas 2), once all three are in
/// its ISR (`why` says what that proves).
fn replicated_topic(
    runtime: &tokio::runtime::Runtime,
    bootstrap: &str,
    prefix: &str,
    why: &str,
) -> String {
    let topic = unique_topic(prefix);
    runtime.block_on(kafka::create_topic(
        bootstrap,
        &topic,
        1,
        3,
        &[("min.insync.replicas", "2")],
    ));
    assert!(
        wait_until(Duration::from_secs(30), || kafka::isr_sizes(
            bootstrap, &topic
        ) == vec![3]),
        "{why}"
    );
    topic
}

#[test]
fn internal_ports_require_the_cluster_certificate_and_the_cluster_still_fails_over() {
    let mut cluster = Cluster::start(ClusterOptions::new(3).internal_tls(cluster_certificates));
    for i in 0..3 {
        refused_everywhere_but_with_the_cluster_certificate(&cluster, i);
    }

    let bootstrap = cluster.bootstrap();
    let runtime = runtime();
    let topic = replicated_topic(
        &runtime,
        &bootstrap,
        "internal-tls",
        "followers join the ISR by fetching over TLS",
    );
    let producer = kafka::producer(
        &bootstrap,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "60000"),
        ],
    );
    let produce = |from: usize, to: usize| {
        runtime.block_on(async {
            let sends = (from..to).map(|n| {
                let key = format!("k{n}");
                let producer = &producer;
                let topic = &topic;
                async move {
                    producer
                        .send(
                            FutureRecord::to(topic).key(&key).payload(&key),
                            Duration::from_secs(60),
                        )
                        .await
                        .expect("acknowledged")
                }
            });
            futures::future::join_all(sends).await;
        })
    };
    produce(0, 2000);

    let leader = kafka::leaders(&bootstrap, &topic)[&0] as usize;
    cluster.kill(leader);
    let survivors: Vec<String> = (0..3)
        .filter(|i| *i != leader)
        .map(|i| cluster.client_address(i).to_string())
        .collect();
    let survivors = survivors.join(",");
    assert!(
        wait_until(Duration::from_secs(30), || {
            kafka::leaders(&survivors, &topic)
                .get(&0)
                .is_some_and(|l| *l >= 0 && *l as usize != leader)
        }),
        "a new leader is elected over the TLS quorum"
    );
    produce(2000, 4000);
    let records = kafka::read_all(&survivors, &topic, 1, 4000, Duration::from_secs(60));
    let mut keys: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.key.clone().unwrap()).unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        4000,
        "every acknowledged record survives the failover"
    );

    cluster.restart(leader);
    cluster.wait_ready(leader, Duration::from_secs(60));
    assert!(
        wait_until(Duration::from_secs(60), || kafka::isr_sizes(
            &survivors, &topic
        ) == vec![3]),
        "the restarted broker catches up over TLS"
    );
    let log = std::fs::read_to_string(cluster.log_path(leader)).unwrap();
    assert!(
        log.contains("TLS configured"),
        "the restarted broker set up TLS"
    );
}

#[test]
fn replication_can_also_require_a_sasl_login() {
    let cluster = Cluster::start(ClusterOptions::new(3).internal_tls(sasl_replication));
    let bootstrap = cluster.bootstrap();
    let runtime = runtime();
    let topic = replicated_topic(
        &runtime,
        &bootstrap,
        "internal-sasl",
        "followers log in with SCRAM-SHA-512 over TLS and join the ISR",
    );
    let producer = kafka::producer(&bootstrap, &[("acks", "all")]);
    runtime.block_on(async {
        for n in 0..100 {
            let key = format!("k{n}");
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&key),
                    Duration::from_secs(30),
                )
                .await
                .expect("acknowledged by the in-sync replicas");
        }
    });

    // The cluster certificate alone no longer gets a Kafka client in; with the login it does.
    let (ca, chain, key) = keystore_parts(&cluster);
    let replication = cluster.replication_address(0).to_string();
    let certificate_only: BaseConsumer = kafka::config(
        &replication,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.pem", &ca),
            ("ssl.certificate.pem", &chain),
            ("ssl.key.pem", &key),
        ],
    )
    .create()
    .expect("consumer");
    assert!(
        certificate_only
            .fetch_metadata(None, Duration::from_secs(3))
            .is_err(),
        "a client with the certificate but no SASL login is refused"
    );
    let logged_in: BaseConsumer = kafka::config(
        &replication,
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "broker"),
            ("sasl.password", BROKER_PASSWORD),
            ("ssl.ca.pem", &ca),
            ("ssl.certificate.pem", &chain),
            ("ssl.key.pem", &key),
        ],
    )
    .create()
    .expect("consumer");
    assert!(
        logged_in
            .fetch_metadata(None, Duration::from_secs(10))
            .is_ok(),
        "the certificate and the broker's login together are accepted"
    );
    let log = std::fs::read(cluster.log_path(1)).unwrap();
    assert!(
        !log.windows(BROKER_PASSWORD.len())
            .any(|w| w == BROKER_PASSWORD.as_bytes()),
        "the broker's password reached its log"
    );
}

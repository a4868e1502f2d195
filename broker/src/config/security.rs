//! Listener security settings from Kafka's properties: `listener.security.protocol.map`, the
//! `ssl.*` settings and `sasl.enabled.mechanisms`, each readable for one listener as
//! `listener.name.<name>.<property>` (that form wins), and the per-mechanism JAAS configs
//! `listener.name.<name>.<mechanism>.sasl.jaas.config`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kafka_core::scram::ScramMechanism;

use super::ConfigError;

/// Kafka's security protocols, one per listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(text: &str) -> Option<SecurityProtocol> {
        match text.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `ssl.client.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// SASL mechanisms Rivulet serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl SaslMechanism {
    pub fn parse(text: &str) -> Option<SaslMechanism> {
        match text.trim() {
            "PLAIN" => Some(SaslMechanism::Plain),
            "OAUTHBEARER" => Some(SaslMechanism::OAuthBearer),
            other => ScramMechanism::from_name(other).map(SaslMechanism::Scram),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(scram) => scram.name(),
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// How a broker logs in to the other brokers' SASL inter-broker listener
/// (`sasl.mechanism.inter.broker.protocol` and the `username` / `password` options of that
/// mechanism's JAAS config on the listener, as in Kafka).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterBrokerSasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

/// The inter-broker login of listener `listener`, when it is a SASL listener.
pub fn inter_broker_sasl(
    listener: &str,
    security: &ListenerSecurity,
    raw: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<InterBrokerSasl>, ConfigError> {
    const MECHANISM: &str = "sasl.mechanism.inter.broker.protocol";
    let Some(sasl) = &security.sasl else {
        return Ok(None);
    };
    let text = raw(MECHANISM).unwrap_or_else(|| "PLAIN".to_string());
    let mechanism = match SaslMechanism::parse(&text) {
        Some(m @ (SaslMechanism::Plain | SaslMechanism::Scram(_))) => m,
        _ => {
            return Err(invalid(
                MECHANISM,
                &text,
                "brokers log in to each other with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            ))
        }
    };
    if !sasl.mechanisms.contains(&mechanism) {
        return Err(invalid(
            MECHANISM,
            &text,
            format!(
                "{} is not enabled on the inter-broker listener {listener}",
                mechanism.name()
            ),
        ));
    }
    let key = format!(
        "listener.name.{}.{}.sasl.jaas.config",
        listener.to_ascii_lowercase(),
        mechanism.name().to_ascii_lowercase()
    );
    let jaas = raw(&key).ok_or_else(|| {
        invalid(
            &key,
            "",
            "the broker's own username=\"...\" password=\"...\" for the inter-broker listener",
        )
    })?;
    let options =
        crate::security::jaas::parse(&jaas).map_err(|reason| invalid(&key, "[hidden]", reason))?;
    match (options.get("username"), options.get("password")) {
        (Some(username), Some(password)) => Ok(Some(InterBrokerSasl {
            mechanism,
            username: username.clone(),
            password: Secret::new(password.clone()),
        })),
        _ => Err(invalid(
            &key,
            "[hidden]",
            "needs username and password options: the broker's own login",
        )),
    }
}

/// A value that must never be printed (passwords, keys): its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

/// Where PEM text comes from: a file (re-read when it changes) or the property value itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(Secret),
}

/// The broker's certificate chain and private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keystore {
    /// `ssl.keystore.location` of a PEM file holding the private key and the certificate chain.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key`.
    Inline { chain: Secret, key: Secret },
}

/// TLS settings of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub keystore: Keystore,
    /// CA certificates client certificates must chain to.
    pub truststore: Option<Pem>,
    pub client_auth: ClientAuth,
    /// `ssl.principal.mapping.rules`, parsed when the listener starts.
    pub principal_mapping_rules: String,
    /// `ssl.enabled.protocols`: TLSv1.2 and/or TLSv1.3.
    pub protocols: Vec<String>,
}

/// SASL settings of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslSettings {
    pub mechanisms: Vec<SaslMechanism>,
    /// `connections.max.reauth.ms`: how long an authentication lasts (`None`: for ever).
    pub session_lifetime: Option<Duration>,
    /// PLAIN users and passwords: the `user_<name>="<password>"` options of the PLAIN JAAS config.
    pub plain_users: BTreeMap<String, Secret>,
    /// How OAUTHBEARER tokens are validated, when that mechanism is enabled.
    pub oauth: Option<OAuthSettings>,
}

/// JWT validation for OAUTHBEARER (Kafka's `OAuthBearerValidatorCallbackHandler`, KIP-768).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthSettings {
    /// `sasl.oauthbearer.jwks.endpoint.url` as a `file:` URL: the JSON Web Key Set the tokens'
    /// signatures are checked against (re-read when the file changes).
    pub jwks_file: PathBuf,
    /// `sasl.oauthbearer.expected.issuer`: the `iss` every token must carry, if set.
    pub issuer: Option<String>,
    /// `sasl.oauthbearer.expected.audience`: a token's `aud` must name one of these, if any.
    pub audience: Vec<String>,
    /// `sasl.oauthbearer.sub.claim.name`: the claim that names the principal.
    pub sub_claim: String,
    /// `sasl.oauthbearer.clock.skew.seconds`: leeway for `exp` and `nbf`.
    pub clock_skew: Duration,
}

/// Everything that decides who may use one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSecurity {
    pub protocol: SecurityProtocol,
    pub tls: Option<TlsSettings>,
    pub sasl: Option<SaslSettings>,
}

impl ListenerSecurity {
    pub fn plaintext() -> ListenerSecurity {
        ListenerSecurity {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }
}

/// The properties a listener can override with `listener.name.<name>.` in front.
pub const PER_LISTENER_SECURITY_PROPERTIES: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
    "ssl.enabled.protocols",
    "sasl.enabled.mechanisms",
    "connections.max.reauth.ms",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.clock.skew.seconds",
];

/// Whether `key` is `listener.name.<name>.<security property>` or a JAAS config of one listener.
pub fn is_listener_security_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("listener.name.") else {
        return false;
    };
    let Some((_, property)) = rest.split_once('.') else {
        return false;
    };
    PER_LISTENER_SECURITY_PROPERTIES.contains(&property)
        || property
            .strip_suffix(".sasl.jaas.config")
            .is_some_and(|m| SaslMechanism::parse(&m.to_ascii_uppercase()).is_some())
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`).
pub fn parse_protocol_map(text: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| invalid(KEY, entry, "expected LISTENER_NAME:SECURITY_PROTOCOL"))?;
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            invalid(
                KEY,
                entry,
                "the protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            )
        })?;
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// Reads one listener's security settings; `raw` looks a property up (explicit value, else the
/// table default).
pub fn resolve_listener(
    listener: &str,
    protocol: SecurityProtocol,
    raw: &dyn Fn(&str) -> Option<String>,
) -> Result<ListenerSecurity, ConfigError> {
    let lookup = Lookup { listener, raw };
    let tls = if protocol.uses_tls() {
        Some(tls_settings(&lookup)?)
    } else {
        None
    };
    let sasl = if protocol.uses_sasl() {
        Some(sasl_settings(&lookup)?)
    } else {
        None
    };
    Ok(ListenerSecurity {
        protocol,
        tls,
        sasl,
    })
}

/// Property lookup for one listener: `listener.name.<name>.<key>` first, then `<key>`.
struct Lookup<'a> {
    listener: &'a str,
    raw: &'a dyn Fn(&str) -> Option<String>,
}

impl Lookup<'_> {
    /// The value and the key it was found under.
    fn get(&self, key: &str) -> Option<(String, String)> {
        let lower = self.listener.to_ascii_lowercase();
        [
            format!("listener.name.{lower}.{key}"),
            format!("listener.name.{}.{key}", self.listener),
            key.to_string(),
        ]
        .into_iter()
        .find_map(|k| {
            (self.raw)(&k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(|v| (v, k))
        })
    }

    fn listener_only(&self, key: &str) -> Option<(String, String)> {
        let lower = self.listener.to_ascii_lowercase();
        [
            format!("listener.name.{lower}.{key}"),
            format!("listener.name.{}.{key}", self.listener),
        ]
        .into_iter()
        .find_map(|k| {
            (self.raw)(&k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (v, k))
        })
    }
}

fn tls_settings(lookup: &Lookup<'_>) -> Result<TlsSettings, ConfigError> {
    for key in ["ssl.keystore.type", "ssl.truststore.type"] {
        if let Some((value, found)) = lookup.get(key) {
            if !value.eq_ignore_ascii_case("PEM") {
                return Err(invalid(
                    &found,
                    &value,
                    "only PEM stores are supported (convert JKS/PKCS12 with keytool or openssl)",
                ));
            }
        }
    }
    if let Some((_, found)) = lookup.get("ssl.key.password") {
        return Err(invalid(
            &found,
            "[hidden]",
            "encrypted private keys are not supported; give the key unencrypted (PKCS#8 or PKCS#1 PEM)",
        ));
    }
    let keystore = match (
        lookup.get("ssl.keystore.location"),
        lookup.get("ssl.keystore.certificate.chain"),
        lookup.get("ssl.keystore.key"),
    ) {
        (Some((path, _)), None, None) => Keystore::File(PathBuf::from(path)),
        (None, Some((chain, _)), Some((key, _))) => Keystore::Inline {
            chain: Secret::new(chain),
            key: Secret::new(key),
        },
        _ => {
            return Err(invalid(
                &format!("listener.name.{}.ssl.keystore.location", lookup.listener.to_ascii_lowercase()),
                "",
                format!(
                    "listener {} uses TLS: set ssl.keystore.location (a PEM file with the key and the certificate chain), or both ssl.keystore.certificate.chain and ssl.keystore.key",
                    lookup.listener
                ),
            ))
        }
    };
    let truststore = match (
        lookup.get("ssl.truststore.location"),
        lookup.get("ssl.truststore.certificates"),
    ) {
        (Some((path, _)), None) => Some(Pem::File(PathBuf::from(path))),
        (None, Some((pem, _))) => Some(Pem::Inline(Secret::new(pem))),
        (None, None) => None,
        (Some(_), Some((_, found))) => {
            return Err(invalid(
                &found,
                "[hidden]",
                "set ssl.truststore.location or ssl.truststore.certificates, not both",
            ))
        }
    };
    let client_auth = match lookup.get("ssl.client.auth") {
        None => ClientAuth::None,
        Some((value, found)) => match value.to_ascii_lowercase().as_str() {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            _ => {
                return Err(invalid(
                    &found,
                    &value,
                    "expected required, requested or none",
                ))
            }
        },
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(invalid(
            "ssl.truststore.location",
            "",
            format!(
                "listener {} asks for client certificates (ssl.client.auth): a truststore is required to verify them",
                lookup.listener
            ),
        ));
    }
    let principal_mapping_rules = lookup
        .get("ssl.principal.mapping.rules")
        .map_or_else(|| "DEFAULT".to_string(), |(v, _)| v);
    let protocols: Vec<String> = lookup
        .get("ssl.enabled.protocols")
        .map_or_else(|| "TLSv1.2,TLSv1.3".to_string(), |(v, _)| v)
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(bad) = protocols
        .iter()
        .find(|p| !matches!(p.as_str(), "TLSv1.2" | "TLSv1.3"))
    {
        return Err(invalid(
            "ssl.enabled.protocols",
            bad,
            "only TLSv1.2 and TLSv1.3 are supported",
        ));
    }
    Ok(TlsSettings {
        keystore,
        truststore,
        client_auth,
        principal_mapping_rules,
        protocols,
    })
}

fn sasl_settings(lookup: &Lookup<'_>) -> Result<SaslSettings, ConfigError> {
    let (text, found) = lookup
        .get("sasl.enabled.mechanisms")
        .unwrap_or_else(|| ("PLAIN".to_string(), "sasl.enabled.mechanisms".to_string()));
    let mut mechanisms = Vec::new();
    for name in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let mechanism = SaslMechanism::parse(name).ok_or_else(|| {
            invalid(
                &found,
                name,
                "supported mechanisms: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER",
            )
        })?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        return Err(invalid(&found, &text, "at least one mechanism is required"));
    }
    let mut plain_users = BTreeMap::new();
    if mechanisms.contains(&SaslMechanism::Plain) {
        let Some((jaas, key)) = lookup.listener_only("plain.sasl.jaas.config") else {
            return Err(invalid(
                &format!("listener.name.{}.plain.sasl.jaas.config", lookup.listener.to_ascii_lowercase()),
                "",
                "PLAIN needs a JAAS config naming its users: org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>=\"<password>\";",
            ));
        };
        let options = crate::security::jaas::parse(&jaas)
            .map_err(|reason| invalid(&key, "[hidden]", reason))?;
        for (option, value) in options {
            if let Some(user) = option.strip_prefix("user_") {
                plain_users.insert(user.to_string(), Secret::new(value));
            }
        }
    }
    let session_lifetime = match lookup.get("connections.max.reauth.ms") {
        None => None,
        Some((text, key)) => match text.parse::<u64>() {
            Ok(0) => None,
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => return Err(invalid(&key, &text, "expected milliseconds")),
        },
    };
    let oauth = if mechanisms.contains(&SaslMechanism::OAuthBearer) {
        Some(oauth_settings(lookup)?)
    } else {
        None
    };
    Ok(SaslSettings {
        mechanisms,
        session_lifetime,
        plain_users,
        oauth,
    })
}

fn oauth_settings(lookup: &Lookup<'_>) -> Result<OAuthSettings, ConfigError> {
    const JWKS: &str = "sasl.oauthbearer.jwks.endpoint.url";
    let Some((url, key)) = lookup.get(JWKS) else {
        return Err(invalid(
            JWKS,
            "",
            "OAUTHBEARER needs the JSON Web Key Set its tokens are signed with, as a file: URL",
        ));
    };
    let jwks_file = match url.strip_prefix("file://").or_else(|| url.strip_prefix("file:")) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            return Err(invalid(
                &key,
                &url,
                "only file: URLs are read (fetching keys over HTTP is not supported; mount the key set as a file)",
            ))
        }
    };
    let clock_skew = match lookup.get("sasl.oauthbearer.clock.skew.seconds") {
        None => Duration::from_secs(30),
        Some((text, key)) => Duration::from_secs(
            text.parse()
                .map_err(|_| invalid(&key, &text, "expected seconds"))?,
        ),
    };
    Ok(OAuthSettings {
        jwks_file,
        issuer: lookup
            .get("sasl.oauthbearer.expected.issuer")
            .map(|(v, _)| v),
        audience: lookup
            .get("sasl.oauthbearer.expected.audience")
            .map(|(v, _)| {
                v.split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        sub_claim: lookup
            .get("sasl.oauthbearer.sub.claim.name")
            .map_or_else(|| "sub".to_string(), |(v, _)| v),
        clock_skew,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        listener: &str,
        protocol: SecurityProtocol,
        props: &[(&str, &str)],
    ) -> Result<ListenerSecurity, ConfigError> {
        let props: BTreeMap<String, String> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve_listener(listener, protocol, &|k| props.get(k).cloned())
    }

    #[test]
    fn protocol_map_parses_and_rejects_unknown_protocols() {
        let map = parse_protocol_map("client:SSL, INTERNAL:sasl_ssl,CONTROLLER:PLAINTEXT").unwrap();
        assert_eq!(map["CLIENT"], SecurityProtocol::Ssl);
        assert_eq!(map["INTERNAL"], SecurityProtocol::SaslSsl);
        assert_eq!(map["CONTROLLER"], SecurityProtocol::Plaintext);
        assert!(parse_protocol_map("CLIENT:TLS").is_err());
        assert!(parse_protocol_map("CLIENT").is_err());
    }

    #[test]
    fn per_listener_settings_win_over_broker_wide_ones() {
        let s = settings(
            "SECURE",
            SecurityProtocol::Ssl,
            &[
                ("ssl.keystore.location", "/broad.pem"),
                ("listener.name.secure.ssl.keystore.location", "/narrow.pem"),
                ("ssl.truststore.location", "/ca.pem"),
                ("listener.name.secure.ssl.client.auth", "required"),
            ],
        )
        .unwrap();
        let tls = s.tls.unwrap();
        assert_eq!(tls.keystore, Keystore::File(PathBuf::from("/narrow.pem")));
        assert_eq!(tls.truststore, Some(Pem::File(PathBuf::from("/ca.pem"))));
        assert_eq!(tls.client_auth, ClientAuth::Required);
        assert_eq!(tls.principal_mapping_rules, "DEFAULT");
        assert!(s.sasl.is_none());
    }

    #[test]
    fn tls_needs_a_keystore_and_client_auth_needs_a_truststore() {
        assert!(settings("SSL", SecurityProtocol::Ssl, &[]).is_err());
        assert!(settings(
            "SSL",
            SecurityProtocol::Ssl,
            &[
                ("ssl.keystore.location", "/k.pem"),
                ("ssl.client.auth", "required")
            ]
        )
        .is_err());
        assert!(settings(
            "SSL",
            SecurityProtocol::Ssl,
            &[
                ("ssl.keystore.location", "/k.jks"),
                ("ssl.keystore.type", "JKS")
            ]
        )
        .is_err());
    }

    #[test]
    fn plain_users_come_from_the_listener_jaas_config_and_stay_hidden() {
        let s = settings(
            "SASL_SSL",
            SecurityProtocol::SaslPlaintext,
            &[(
                "listener.name.sasl_ssl.plain.sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#,
            )],
        )
        .unwrap();
        let sasl = s.sasl.unwrap();
        assert_eq!(sasl.mechanisms, vec![SaslMechanism::Plain]);
        assert_eq!(sasl.plain_users["alice"].expose(), "alice-secret");
        assert_eq!(sasl.plain_users.len(), 2);
        assert!(!format!("{sasl:?}").contains("secret"));
        assert!(settings("X", SecurityProtocol::SaslPlaintext, &[]).is_err());
    }

    #[test]
    fn scram_mechanisms_need_no_jaas_users() {
        let s = settings(
            "SASL_SSL",
            SecurityProtocol::SaslPlaintext,
            &[(
                "listener.name.sasl_ssl.sasl.enabled.mechanisms",
                "SCRAM-SHA-512,SCRAM-SHA-256",
            )],
        )
        .unwrap();
        let sasl = s.sasl.unwrap();
        assert_eq!(
            sasl.mechanisms,
            vec![
                SaslMechanism::Scram(ScramMechanism::Sha512),
                SaslMechanism::Scram(ScramMechanism::Sha256)
            ]
        );
        assert_eq!(sasl.session_lifetime, None);
        assert!(settings(
            "SASL_SSL",
            SecurityProtocol::SaslPlaintext,
            &[("sasl.enabled.mechanisms", "SCRAM-SHA-1")],
        )
        .is_err());
    }

    #[test]
    fn oauthbearer_needs_a_key_set_file() {
        let oauth = |props: &[(&str, &str)]| {
            let mut props = props.to_vec();
            props.push(("sasl.enabled.mechanisms", "OAUTHBEARER"));
            settings("SASL_SSL", SecurityProtocol::SaslPlaintext, &props)
                .map(|s| s.sasl.unwrap().oauth.unwrap())
        };
        assert!(oauth(&[]).is_err());
        assert!(oauth(&[(
            "sasl.oauthbearer.jwks.endpoint.url",
            "https://idp.example/jwks"
        )])
        .is_err());
        let o = oauth(&[
            (
                "sasl.oauthbearer.jwks.endpoint.url",
                "file:///etc/rivulet/jwks.json",
            ),
            ("sasl.oauthbearer.expected.audience", "kafka, rivulet"),
            (
                "listener.name.sasl_ssl.sasl.oauthbearer.expected.issuer",
                "https://idp",
            ),
        ])
        .unwrap();
        assert_eq!(o.jwks_file, PathBuf::from("/etc/rivulet/jwks.json"));
        assert_eq!(o.audience, vec!["kafka", "rivulet"]);
        assert_eq!(o.issuer.as_deref(), Some("https://idp"));
        assert_eq!(o.sub_claim, "sub");
        assert_eq!(o.clock_skew, Duration::from_secs(30));
    }

    #[test]
    fn session_lifetime_is_connections_max_reauth_ms() {
        let lifetime = |props: &[(&str, &str)]| {
            let mut props = props.to_vec();
            props.push(("sasl.enabled.mechanisms", "SCRAM-SHA-256"));
            settings("SASL_SSL", SecurityProtocol::SaslPlaintext, &props)
                .map(|s| s.sasl.unwrap().session_lifetime)
        };
        assert_eq!(lifetime(&[]).unwrap(), None);
        assert_eq!(
            lifetime(&[("connections.max.reauth.ms", "0")]).unwrap(),
            None
        );
        assert_eq!(
            lifetime(&[
                ("connections.max.reauth.ms", "3600000"),
                ("listener.name.sasl_ssl.connections.max.reauth.ms", "2000")
            ])
            .unwrap(),
            Some(Duration::from_secs(2))
        );
        assert!(lifetime(&[("connections.max.reauth.ms", "soon")]).is_err());
    }

    #[test]
    fn listener_security_keys_are_recognised() {
        assert!(is_listener_security_key(
            "listener.name.secure.ssl.client.auth"
        ));
        assert!(is_listener_security_key(
            "listener.name.sasl_ssl.plain.sasl.jaas.config"
        ));
        assert!(!is_listener_security_key("listener.name.x.no.such"));
        assert!(!is_listener_security_key("ssl.client.auth"));
    }
}

//! SASL on a listener, independent of the wire: which mechanisms are enabled and one
//! exchange's steps. PLAIN (RFC 4616) checks the password against the listener's JAAS users;
//! SCRAM-SHA-256/512 (`scram`) against the credentials in the metadata image; OAUTHBEARER
//! (`oauthbearer`) validates a signed JWT against the listener's key set.
//! Failures carry the text a client is shown (Kafka's: it never says which part was wrong) and
//! the reason for the broker's log (which never holds a password).

use std::sync::Arc;

use crate::config::security::{SaslMechanism, SaslSettings};

use super::oauthbearer::{JwtValidator, OAuthExchange};
use super::principal::KafkaPrincipal;
use super::scram::{CredentialStore, ScramExchange};

/// A refused authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct AuthFailure {
    /// What the client is told.
    pub message: String,
    /// What the broker logs.
    pub reason: String,
}

impl AuthFailure {
    fn bad_credentials(reason: impl Into<String>) -> AuthFailure {
        AuthFailure {
            message: "Authentication failed: Invalid username or password".to_string(),
            reason: reason.into(),
        }
    }
}

/// Where an exchange is after a client message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge; the client answers it.
    Continue { message: Vec<u8> },
    /// Authenticated: send this final message (possibly empty).
    Done {
        principal: KafkaPrincipal,
        message: Vec<u8>,
    },
}

/// The SASL side of a listener.
#[derive(Debug, Clone)]
pub struct SaslServer {
    settings: Arc<SaslSettings>,
    credentials: Arc<dyn CredentialStore>,
    oauth: Option<Arc<JwtValidator>>,
}

impl SaslServer {
    /// `credentials` answers SCRAM lookups. `Err`: the OAUTHBEARER key set cannot be read.
    pub fn new(
        settings: SaslSettings,
        credentials: Arc<dyn CredentialStore>,
    ) -> Result<SaslServer, String> {
        let oauth = match &settings.oauth {
            Some(oauth) => Some(Arc::new(JwtValidator::load(oauth.clone())?)),
            None => None,
        };
        Ok(SaslServer {
            settings: Arc::new(settings),
            credentials,
            oauth,
        })
    }

    /// How long an authentication lasts (`connections.max.reauth.ms`), if not for ever.
    pub fn session_lifetime(&self) -> Option<std::time::Duration> {
        self.settings.session_lifetime
    }

    /// The enabled mechanisms' names, as SaslHandshake lists them.
    pub fn mechanism_names(&self) -> Vec<&'static str> {
        self.settings.mechanisms.iter().map(|m| m.name()).collect()
    }

    /// Starts an exchange for the mechanism a client asked for in SaslHandshake.
    pub fn start(&self, mechanism: &str) -> Option<Exchange> {
        let mechanism = SaslMechanism::parse(mechanism)?;
        if !self.settings.mechanisms.contains(&mechanism) {
            return None;
        }
        let state = match mechanism {
            SaslMechanism::Plain => State::Plain(self.settings.clone()),
            SaslMechanism::Scram(scram) => {
                State::Scram(ScramExchange::new(scram, self.credentials.clone()))
            }
            SaslMechanism::OAuthBearer => State::OAuth(OAuthExchange::new(self.oauth.clone()?)),
        };
        Some(Exchange { mechanism, state })
    }
}

/// One authentication in progress.
#[derive(Debug)]
pub struct Exchange {
    mechanism: SaslMechanism,
    state: State,
}

#[derive(Debug)]
enum State {
    Plain(Arc<SaslSettings>),
    Scram(ScramExchange),
    OAuth(OAuthExchange),
}

impl Exchange {
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// Takes the client's next message.
    pub fn step(&mut self, message: &[u8]) -> Result<Step, AuthFailure> {
        match &mut self.state {
            State::Plain(settings) => plain(settings, message),
            State::Scram(scram) => scram.step(message),
            State::OAuth(oauth) => oauth.step(message, std::time::SystemTime::now()),
        }
    }
}

/// `[authzid] NUL authcid NUL passwd`.
fn plain(settings: &SaslSettings, message: &[u8]) -> Result<Step, AuthFailure> {
    let text = std::str::from_utf8(message)
        .map_err(|_| AuthFailure::bad_credentials("PLAIN message is not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthFailure {
            message: "Invalid SASL/PLAIN response: expected 3 tokens".to_string(),
            reason: "malformed PLAIN message".to_string(),
        });
    };
    if user.is_empty() {
        return Err(AuthFailure::bad_credentials(
            "PLAIN message without a username",
        ));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(AuthFailure {
                message: "Authentication failed: Client requested an authorization id that is different from username".to_string(),
                reason: format!("user {user:?} asked to act as {authzid:?}"),
            });
    }
    let known = settings.plain_users.get(user);
    let matches =
        known.is_some_and(|expected| same_bytes(expected.expose().as_bytes(), password.as_bytes()));
    if !matches {
        let reason = if known.is_some() {
            format!("wrong password for user {user:?}")
        } else {
            format!("unknown user {user:?}")
        };
        return Err(AuthFailure::bad_credentials(reason));
    }
    Ok(Step::Done {
        principal: KafkaPrincipal::user(user),
        message: Vec::new(),
    })
}

/// Compares without stopping at the first difference, so timing tells nothing of the secret.
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kafka_core::scram::ScramMechanism;

    use super::*;
    use crate::config::security::Secret;
    use crate::security::scram;

    fn server() -> SaslServer {
        let mut users = BTreeMap::new();
        users.insert("alice".to_string(), Secret::new("alice-secret"));
        SaslServer::new(
            SaslSettings {
                mechanisms: vec![SaslMechanism::Plain],
                session_lifetime: None,
                plain_users: users,
                oauth: None,
            },
            scram::tests::users(ScramMechanism::Sha256),
        )
        .unwrap()
    }

    #[test]
    fn plain_accepts_the_right_password_only() {
        let mut exchange = server().start("PLAIN").unwrap();
        assert_eq!(
            exchange.step(b"\0alice\0alice-secret"),
            Ok(Step::Done {
                principal: KafkaPrincipal::user("alice"),
                message: Vec::new()
            })
        );
        let wrong = server()
            .start("PLAIN")
            .unwrap()
            .step(b"\0alice\0guess")
            .unwrap_err();
        assert_eq!(
            wrong.message,
            "Authentication failed: Invalid username or password"
        );
        assert!(!wrong.reason.contains("guess"));
        let unknown = server()
            .start("PLAIN")
            .unwrap()
            .step(b"\0mallory\0alice-secret");
        assert!(unknown.is_err());
        let prefix = server()
            .start("PLAIN")
            .unwrap()
            .step(b"\0alice\0alice-secre");
        assert!(prefix.is_err());
    }

    #[test]
    fn plain_refuses_malformed_messages_and_foreign_authorization_ids() {
        let s = server();
        assert!(s.start("PLAIN").unwrap().step(b"alice-secret").is_err());
        assert!(s.start("PLAIN").unwrap().step(b"\0\0pw").is_err());
        assert!(s
            .start("PLAIN")
            .unwrap()
            .step(b"bob\0alice\0alice-secret")
            .is_err());
        assert!(s
            .start("PLAIN")
            .unwrap()
            .step(b"alice\0alice\0alice-secret")
            .is_ok());
        assert!(s.start("PLAIN").unwrap().step(&[0, 0xff, 0, 0x61]).is_err());
    }

    #[test]
    fn only_enabled_mechanisms_start() {
        assert!(server().start("SCRAM-SHA-256").is_none());
        assert!(server().start("GSSAPI").is_none());
        assert_eq!(server().mechanism_names(), vec!["PLAIN"]);
    }
}

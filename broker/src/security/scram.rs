//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) on the broker side, as Kafka's
//! `ScramSaslServer`: the credential kept for a user (derived from the salted password a client
//! sends in AlterUserScramCredentials), where credentials are looked up (the metadata image),
//! and the two-round exchange — client-first / server-first, client-final / server-final —
//! that proves the client knows the password without it crossing the wire.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use kafka_core::scram::{ScramCredential, ScramMechanism};
use raft_controller::Quorum;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};

use super::principal::KafkaPrincipal;
use super::sasl::{same_bytes, AuthFailure, Step};

/// Where the broker finds users' SCRAM credentials.
pub trait CredentialStore: Send + Sync + fmt::Debug {
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
}

/// Credentials live in the metadata image (AlterUserScramCredentials writes them).
impl CredentialStore for Quorum {
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.image().scram.get(user)?.get(&mechanism).cloned()
    }
}

fn hmac_algorithm(mechanism: ScramMechanism) -> hmac::Algorithm {
    match mechanism {
        ScramMechanism::Sha256 => hmac::HMAC_SHA256,
        ScramMechanism::Sha512 => hmac::HMAC_SHA512,
    }
}

pub(crate) fn digest_algorithm(mechanism: ScramMechanism) -> &'static digest::Algorithm {
    match mechanism {
        ScramMechanism::Sha256 => &digest::SHA256,
        ScramMechanism::Sha512 => &digest::SHA512,
    }
}

pub(crate) fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac_algorithm(mechanism), key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// `Hi(password, salt, iterations)` of RFC 5802: PBKDF2 with the mechanism's HMAC (what a
/// client computes before AlterUserScramCredentials; the broker does it for bootstrap users).
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: i32,
) -> Result<Vec<u8>, String> {
    let rounds = u32::try_from(iterations)
        .ok()
        .and_then(std::num::NonZeroU32::new)
        .ok_or_else(|| format!("{iterations} iterations"))?;
    let (algorithm, len) = match mechanism {
        ScramMechanism::Sha256 => (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32),
        ScramMechanism::Sha512 => (ring::pbkdf2::PBKDF2_HMAC_SHA512, 64),
    };
    let mut out = vec![0u8; len];
    ring::pbkdf2::derive(algorithm, rounds, salt, password, &mut out);
    Ok(out)
}

/// The credential for a salted password (`Hi(password, salt, iterations)`, which the client
/// computes): `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`, `ServerKey =
/// HMAC(SaltedPassword, "Server Key")`.
pub fn credential(
    mechanism: ScramMechanism,
    salted_password: &[u8],
    salt: &[u8],
    iterations: i32,
) -> ScramCredential {
    let client_key = hmac(mechanism, salted_password, b"Client Key");
    ScramCredential {
        salt: salt.to_vec(),
        iterations,
        stored_key: digest::digest(digest_algorithm(mechanism), &client_key)
            .as_ref()
            .to_vec(),
        server_key: hmac(mechanism, salted_password, b"Server Key"),
    }
}

/// Where one SCRAM exchange is.
enum State {
    ClientFirst,
    ClientFinal(Box<Challenge>),
    Finished,
}

/// What the server-first message committed to.
struct Challenge {
    user: String,
    credential: ScramCredential,
    client_first_bare: String,
    server_first: String,
    client_nonce: String,
    nonce: String,
    gs2_header: String,
}

/// One SCRAM authentication in progress.
pub struct ScramExchange {
    mechanism: ScramMechanism,
    store: Arc<dyn CredentialStore>,
    state: State,
}

impl fmt::Debug for ScramExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::ClientFirst => "client-first",
            State::ClientFinal(_) => "client-final",
            State::Finished => "finished",
        };
        f.debug_struct("ScramExchange")
            .field("mechanism", &self.mechanism.name())
            .field("state", &state)
            .finish()
    }
}

impl ScramExchange {
    pub fn new(mechanism: ScramMechanism, store: Arc<dyn CredentialStore>) -> ScramExchange {
        ScramExchange {
            mechanism,
            store,
            state: State::ClientFirst,
        }
    }

    /// Takes the client's next message.
    pub fn step(&mut self, message: &[u8]) -> Result<Step, AuthFailure> {
        let result = match std::mem::replace(&mut self.state, State::Finished) {
            State::ClientFirst => self.client_first(message),
            State::ClientFinal(challenge) => self.client_final(&challenge, message),
            State::Finished => Err(self.failure("message after the exchange finished")),
        };
        if result.is_err() {
            self.state = State::Finished;
        }
        result
    }

    fn failure(&self, reason: impl Into<String>) -> AuthFailure {
        AuthFailure {
            message: format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                self.mechanism.name()
            ),
            reason: reason.into(),
        }
    }

    /// `gs2-header client-first-bare`: `n,[a=authzid],n=user,r=nonce[,extensions]`.
    fn client_first(&mut self, message: &[u8]) -> Result<Step, AuthFailure> {
        let text = std::str::from_utf8(message)
            .map_err(|_| self.failure("client-first message is not UTF-8"))?;
        let (flag, rest) = text
            .split_once(',')
            .ok_or_else(|| self.failure("malformed client-first message"))?;
        if flag != "n" && flag != "y" {
            return Err(self.failure(format!(
                "channel binding {flag:?} requested; none is offered"
            )));
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or_else(|| self.failure("malformed client-first message"))?;
        let gs2_header = format!("{flag},{authzid},");
        let mut fields = bare.split(',');
        let user = fields
            .next()
            .and_then(|f| f.strip_prefix("n="))
            .and_then(decode_name)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| self.failure("client-first message without a valid username"))?;
        let client_nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| self.failure("client-first message without a nonce"))?;
        if fields.any(|extension| extension == "tokenauth=true") {
            return Err(self.failure(format!(
                "user {user:?} offered a delegation token; delegation tokens are not supported"
            )));
        }
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if decode_name(authzid).as_deref() != Some(user.as_str()) {
                return Err(AuthFailure {
                    message: "Authentication failed: Client requested an authorization id that is different from username".to_string(),
                    reason: format!("user {user:?} asked to act as {authzid:?}"),
                });
            }
        } else if !authzid.is_empty() {
            return Err(self.failure("malformed authorization id in client-first message"));
        }
        let credential = self
            .store
            .scram_credential(&user, self.mechanism)
            .ok_or_else(|| {
                self.failure(format!(
                    "unknown user {user:?} (no {} credential)",
                    self.mechanism.name()
                ))
            })?;
        let nonce = format!("{client_nonce}{}", server_nonce()?);
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&credential.salt),
            credential.iterations
        );
        self.state = State::ClientFinal(Box::new(Challenge {
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            client_nonce: client_nonce.to_string(),
            nonce,
            gs2_header,
        }));
        Ok(Step::Continue {
            message: server_first.into_bytes(),
        })
    }

    /// `c=channel-binding,r=nonce[,extensions],p=proof`; answered with `v=server-signature`.
    fn client_final(&mut self, challenge: &Challenge, message: &[u8]) -> Result<Step, AuthFailure> {
        let user = &challenge.user;
        let text = std::str::from_utf8(message)
            .map_err(|_| self.failure("client-final message is not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| self.failure("client-final message without a proof"))?;
        let mut fields = without_proof.split(',');
        let binding = fields.next().and_then(|f| f.strip_prefix("c="));
        if binding != Some(STANDARD.encode(&challenge.gs2_header).as_str()) {
            return Err(self.failure(format!(
                "user {user:?}: channel binding does not match the client-first message"
            )));
        }
        // librdkafka before 2.6.1 sends its own nonce again in front of the combined one
        // (librdkafka #4895); that form still carries the whole server nonce, so it is taken.
        let nonce = fields.next().and_then(|f| f.strip_prefix("r="));
        let fresh = nonce.is_some_and(|n| {
            n == challenge.nonce
                || n.strip_prefix(challenge.client_nonce.as_str()) == Some(challenge.nonce.as_str())
        });
        if !fresh {
            return Err(self.failure(format!(
                "user {user:?}: invalid client nonce in the client-final message"
            )));
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| self.failure(format!("user {user:?}: proof is not base64")))?;
        let auth_message = format!(
            "{},{},{}",
            challenge.client_first_bare, challenge.server_first, without_proof
        );
        let credential = &challenge.credential;
        let client_signature = hmac(
            self.mechanism,
            &credential.stored_key,
            auth_message.as_bytes(),
        );
        if proof.len() != client_signature.len() {
            return Err(self.failure(format!("user {user:?}: proof of the wrong length")));
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let stored_key = digest::digest(digest_algorithm(self.mechanism), &client_key);
        if !same_bytes(stored_key.as_ref(), &credential.stored_key) {
            return Err(self.failure(format!("wrong password for user {user:?}")));
        }
        let server_signature = hmac(
            self.mechanism,
            &credential.server_key,
            auth_message.as_bytes(),
        );
        Ok(Step::Done {
            principal: KafkaPrincipal::user(user),
            message: format!("v={}", STANDARD.encode(server_signature)).into_bytes(),
        })
    }
}

/// `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` makes the name invalid.
fn decode_name(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The server's part of the nonce: 24 random bytes, base64url (printable, no `,`).
pub(crate) fn server_nonce() -> Result<String, AuthFailure> {
    let mut bytes = [0u8; 24];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthFailure {
            message: "Authentication failed: server error".to_string(),
            reason: "the system random number generator failed".to_string(),
        })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::num::NonZeroU32;

    use ring::pbkdf2;

    use super::*;

    /// Users and their credentials, for exchanges without a quorum.
    #[derive(Debug, Default)]
    pub(crate) struct Users(pub BTreeMap<(String, ScramMechanism), ScramCredential>);

    impl CredentialStore for Users {
        fn scram_credential(
            &self,
            user: &str,
            mechanism: ScramMechanism,
        ) -> Option<ScramCredential> {
            self.0.get(&(user.to_string(), mechanism)).cloned()
        }
    }

    /// `Hi(password, salt, iterations)`, as a client computes it.
    pub(crate) fn salted_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Vec<u8> {
        let (algorithm, len) = match mechanism {
            ScramMechanism::Sha256 => (pbkdf2::PBKDF2_HMAC_SHA256, 32),
            ScramMechanism::Sha512 => (pbkdf2::PBKDF2_HMAC_SHA512, 64),
        };
        let mut out = vec![0u8; len];
        let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(algorithm, iterations, salt, password.as_bytes(), &mut out);
        out
    }

    pub(crate) fn users(mechanism: ScramMechanism) -> Arc<Users> {
        let salted = salted_password(mechanism, "alice-secret", b"pepper", 4096);
        let mut users = Users::default();
        users.0.insert(
            ("alice".to_string(), mechanism),
            credential(mechanism, &salted, b"pepper", 4096),
        );
        Arc::new(users)
    }

    /// The client side of RFC 5802, to drive the server.
    struct Client {
        mechanism: ScramMechanism,
        password: String,
        client_first_bare: String,
    }

    impl Client {
        fn first(mechanism: ScramMechanism, user: &str, password: &str) -> (Client, String) {
            let client_first_bare = format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL");
            let client = Client {
                mechanism,
                password: password.to_string(),
                client_first_bare: client_first_bare.clone(),
            };
            (client, format!("n,,{client_first_bare}"))
        }

        /// The client-final message and the server signature it expects.
        fn last(&self, server_first: &str) -> (String, String) {
            self.last_over(server_first, server_first)
        }

        /// The client-final message naming the nonce of `nonce_from`, proven over the
        /// `server_first` the server sent.
        fn last_over(&self, nonce_from: &str, server_first: &str) -> (String, String) {
            let nonce = nonce_from
                .split(',')
                .find_map(|f| f.strip_prefix("r="))
                .unwrap()
                .to_string();
            let fields: BTreeMap<&str, &str> = server_first
                .split(',')
                .filter_map(|f| f.split_once('='))
                .collect();
            let salt = STANDARD.decode(fields["s"]).unwrap();
            let iterations: u32 = fields["i"].parse().unwrap();
            let salted = salted_password(self.mechanism, &self.password, &salt, iterations);
            let without_proof = format!("c=biws,r={nonce}");
            let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
            let client_key = hmac(self.mechanism, &salted, b"Client Key");
            let stored_key = digest::digest(digest_algorithm(self.mechanism), &client_key);
            let signature = hmac(self.mechanism, stored_key.as_ref(), auth_message.as_bytes());
            let proof: Vec<u8> = client_key
                .iter()
                .zip(&signature)
                .map(|(k, s)| k ^ s)
                .collect();
            let server_key = hmac(self.mechanism, &salted, b"Server Key");
            let expected = hmac(self.mechanism, &server_key, auth_message.as_bytes());
            (
                format!("{without_proof},p={}", STANDARD.encode(proof)),
                format!("v={}", STANDARD.encode(expected)),
            )
        }
    }

    fn continued(step: Step) -> String {
        match step {
            Step::Continue { message } => String::from_utf8(message).unwrap(),
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    #[test]
    fn the_right_password_authenticates_and_the_server_proves_itself() {
        for mechanism in ScramMechanism::ALL {
            let mut exchange = ScramExchange::new(mechanism, users(mechanism));
            let (client, first) = Client::first(mechanism, "alice", "alice-secret");
            let server_first = continued(exchange.step(first.as_bytes()).unwrap());
            assert!(server_first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"));
            assert!(server_first.ends_with(",i=4096"));
            let (last, expected) = client.last(&server_first);
            assert_eq!(
                exchange.step(last.as_bytes()),
                Ok(Step::Done {
                    principal: KafkaPrincipal::user("alice"),
                    message: expected.into_bytes(),
                })
            );
            assert!(exchange.step(b"again").is_err());
        }
    }

    #[test]
    fn a_wrong_password_or_unknown_user_is_refused_without_saying_which() {
        let mechanism = ScramMechanism::Sha512;
        let mut exchange = ScramExchange::new(mechanism, users(mechanism));
        let (client, first) = Client::first(mechanism, "alice", "guess");
        let server_first = continued(exchange.step(first.as_bytes()).unwrap());
        let (last, _) = client.last(&server_first);
        let wrong = exchange.step(last.as_bytes()).unwrap_err();
        assert_eq!(wrong.reason, "wrong password for user \"alice\"");
        assert!(wrong.message.contains("invalid credentials"));
        assert!(!wrong.reason.contains("guess"));

        let mut exchange = ScramExchange::new(mechanism, users(mechanism));
        let (_, first) = Client::first(mechanism, "mallory", "alice-secret");
        let unknown = exchange.step(first.as_bytes()).unwrap_err();
        assert!(unknown.reason.contains("unknown user"));
        assert_eq!(unknown.message, wrong.message);

        // A SHA-256 credential does not answer a SHA-512 exchange.
        let mut exchange =
            ScramExchange::new(ScramMechanism::Sha512, users(ScramMechanism::Sha256));
        let (_, first) = Client::first(mechanism, "alice", "alice-secret");
        assert!(exchange.step(first.as_bytes()).is_err());
    }

    #[test]
    fn tampered_final_messages_are_refused() {
        let mechanism = ScramMechanism::Sha256;
        let tamper = |change: &dyn Fn(String) -> String| {
            let mut exchange = ScramExchange::new(mechanism, users(mechanism));
            let (client, first) = Client::first(mechanism, "alice", "alice-secret");
            let server_first = continued(exchange.step(first.as_bytes()).unwrap());
            let (last, _) = client.last(&server_first);
            exchange.step(change(last).as_bytes())
        };
        assert!(tamper(&|m| m).is_ok());
        // librdkafka < 2.6.1 repeats its nonce; the proof is over what it sent, so it verifies.
        let mut exchange = ScramExchange::new(mechanism, users(mechanism));
        let (client, first) = Client::first(mechanism, "alice", "alice-secret");
        let server_first = continued(exchange.step(first.as_bytes()).unwrap());
        let doubled = server_first.replacen("r=", "r=fyko+d2lbbFgONRv9qkxdawL", 1);
        let (last, _) = client.last_over(&doubled, &server_first);
        assert!(exchange.step(last.as_bytes()).is_ok());
        assert!(tamper(&|m| m.replacen("c=biws", "c=eSws", 1)).is_err());
        assert!(tamper(&|m| m.replacen("r=fyko", "r=fyka", 1)).is_err());
        assert!(tamper(&|m| m.split(",p=").next().unwrap().to_string()).is_err());
        assert!(tamper(&|m| format!("{m}AAAA")).is_err());
        assert!(tamper(&|m| format!("{}p=!!", m.split("p=").next().unwrap())).is_err());
    }

    #[test]
    fn malformed_first_messages_are_refused() {
        let mechanism = ScramMechanism::Sha256;
        for first in [
            "",
            "n,,",
            "n,,r=abc",
            "n,,n=alice",
            "n,,n=alice,r=",
            "p=tls-unique,,n=alice,r=abc",
            "n,a=bob,n=alice,r=abc",
            "n,,n=ali=ce,r=abc",
            "n,,n=alice,r=abc,tokenauth=true",
        ] {
            let mut exchange = ScramExchange::new(mechanism, users(mechanism));
            assert!(exchange.step(first.as_bytes()).is_err(), "{first:?}");
        }
        let mut exchange = ScramExchange::new(mechanism, users(mechanism));
        assert!(exchange.step(&[0xff, 0xfe]).is_err());
        let mut exchange = ScramExchange::new(mechanism, users(mechanism));
        assert!(exchange.step(b"n,a=alice,n=alice,r=abc").is_ok());
    }

    #[test]
    fn names_unescape_as_rfc_5802_says() {
        assert_eq!(decode_name("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_name("plain").as_deref(), Some("plain"));
        assert_eq!(decode_name("a=2"), None);
        assert_eq!(decode_name("a=41"), None);
    }

    #[test]
    fn credentials_match_rfc_7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil", 4096 iterations.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(ScramMechanism::Sha256, "pencil", &salt, 4096);
        let credential = credential(ScramMechanism::Sha256, &salted, &salt, 4096);
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(
            ScramMechanism::Sha256,
            &credential.server_key,
            auth_message.as_bytes(),
        );
        assert_eq!(
            STANDARD.encode(signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }
}

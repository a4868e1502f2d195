//! The client side of SCRAM (RFC 5802), for a broker authenticating to another broker's
//! SASL inter-broker listener: the client-first message, the client-final message with its
//! proof once the server's salt and iterations are known, and the check of the server's
//! signature (so a broker also knows it reached a server holding its credential).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kafka_core::scram::ScramMechanism;
use ring::digest;

use super::scram::{digest_algorithm, hmac, salted_password, server_nonce};

/// Where the client is.
enum State {
    /// The client-first message went out.
    First {
        client_first_bare: String,
        nonce: String,
    },
    /// The client-final message went out; the server's signature is expected.
    Final {
        server_signature: Vec<u8>,
    },
    Done,
}

/// One SCRAM login.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    state: State,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism.name())
            .finish_non_exhaustive()
    }
}

fn escape(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    /// Starts a login as `user`; the first message to send.
    pub fn start(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
    ) -> Result<(ScramClient, Vec<u8>), String> {
        let nonce = server_nonce().map_err(|e| e.reason)?;
        let client_first_bare = format!("n={},r={nonce}", escape(user));
        let message = format!("n,,{client_first_bare}").into_bytes();
        let client = ScramClient {
            mechanism,
            password: password.to_string(),
            state: State::First {
                client_first_bare,
                nonce,
            },
        };
        Ok((client, message))
    }

    /// Takes the server's next message; the answer to send, or `None` once the server has
    /// proved itself.
    pub fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let text = std::str::from_utf8(server).map_err(|_| "server message is not UTF-8")?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::First {
                client_first_bare,
                nonce,
            } => {
                let field = |name: &str| {
                    text.split(',')
                        .find_map(|f| f.strip_prefix(name))
                        .ok_or_else(|| format!("server-first message without {name}"))
                };
                let combined = field("r=")?;
                if !combined.starts_with(nonce.as_str()) || combined.len() == nonce.len() {
                    return Err("the server's nonce does not extend ours".to_string());
                }
                let salt = STANDARD
                    .decode(field("s=")?)
                    .map_err(|_| "the salt is not base64")?;
                let iterations: i32 = field("i=")?
                    .parse()
                    .map_err(|_| "the iteration count is not a number")?;
                ScramMechanism::check_iterations(iterations)?;
                let salted =
                    salted_password(self.mechanism, self.password.as_bytes(), &salt, iterations)?;
                let client_key = hmac(self.mechanism, &salted, b"Client Key");
                let stored_key = digest::digest(digest_algorithm(self.mechanism), &client_key);
                let without_proof = format!("c=biws,r={combined}");
                let auth_message = format!("{client_first_bare},{text},{without_proof}");
                let signature = hmac(self.mechanism, stored_key.as_ref(), auth_message.as_bytes());
                let proof: Vec<u8> = client_key
                    .iter()
                    .zip(&signature)
                    .map(|(k, s)| k ^ s)
                    .collect();
                let server_key = hmac(self.mechanism, &salted, b"Server Key");
                self.state = State::Final {
                    server_signature: hmac(self.mechanism, &server_key, auth_message.as_bytes()),
                };
                Ok(Some(
                    format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes(),
                ))
            }
            State::Final { server_signature } => {
                let verifier = text
                    .strip_prefix("v=")
                    .ok_or_else(|| format!("server-final message {text:?} carries no signature"))?;
                let verifier = STANDARD
                    .decode(verifier)
                    .map_err(|_| "the server signature is not base64")?;
                if verifier != server_signature {
                    return Err(
                        "the server's signature is wrong: it does not hold our credential"
                            .to_string(),
                    );
                }
                Ok(None)
            }
            State::Done => Err("the exchange is over".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::security::scram::tests::Users;
    use crate::security::scram::{credential, ScramExchange};
    use crate::security::Step;

    fn users(user: &str, password: &str, mechanism: ScramMechanism) -> Arc<Users> {
        let salt = b"0123456789abcdef";
        let salted = salted_password(mechanism, password.as_bytes(), salt, 4096).unwrap();
        let mut users = Users::default();
        users.0.insert(
            (user.to_string(), mechanism),
            credential(mechanism, &salted, salt, 4096),
        );
        Arc::new(users)
    }

    /// The client against the broker's own server exchange.
    fn login(mechanism: ScramMechanism, user: &str, password: &str) -> Result<String, String> {
        let mut server = ScramExchange::new(mechanism, users("broker,1", "pw=1", mechanism));
        let (mut client, first) = ScramClient::start(mechanism, user, password)?;
        let Ok(Step::Continue { message }) = server.step(&first) else {
            return Err("server refused the first message".into());
        };
        let last = client.step(&message)?.ok_or("no client-final message")?;
        match server.step(&last) {
            Ok(Step::Done { principal, message }) => {
                assert_eq!(client.step(&message)?, None);
                Ok(principal.to_string())
            }
            Ok(Step::Continue { .. }) => Err("server wants more".into()),
            Err(e) => Err(e.reason),
        }
    }

    #[test]
    fn logs_in_with_both_mechanisms_and_checks_the_server() {
        for mechanism in ScramMechanism::ALL {
            assert_eq!(
                login(mechanism, "broker,1", "pw=1").as_deref(),
                Ok("User:broker,1")
            );
            assert!(login(mechanism, "broker,1", "wrong").is_err());
        }
    }

    #[test]
    fn a_server_without_our_credential_is_caught() {
        let mechanism = ScramMechanism::Sha256;
        let (mut client, _) = ScramClient::start(mechanism, "b", "pw").unwrap();
        let State::First { nonce, .. } = &client.state else {
            panic!("not started")
        };
        let server_first = format!("r={nonce}xyz,s={},i=4096", STANDARD.encode(b"salt"));
        assert!(client.step(server_first.as_bytes()).unwrap().is_some());
        let forged = format!("v={}", STANDARD.encode([0u8; 32]));
        assert!(client.step(forged.as_bytes()).is_err());
        let (mut client, _) = ScramClient::start(mechanism, "b", "pw").unwrap();
        assert!(client.step(b"r=someone-elses,s=c2FsdA==,i=4096").is_err());
    }
}

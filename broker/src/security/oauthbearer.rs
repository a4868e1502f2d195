//! SASL/OAUTHBEARER (RFC 7628) with signed JWTs, as Kafka's
//! `OAuthBearerValidatorCallbackHandler` (KIP-768) checks them: the signature against a key of
//! the configured JSON Web Key Set (RS256/384/512, PS256/384/512, ES256/384; never `none` or
//! a shared-secret HMAC), `exp` and `nbf` with the clock skew, `iss` and `aud` when configured;
//! the principal is the subject claim. The key set is a file, re-read when it changes (a
//! rotated Kubernetes Secret or ConfigMap is picked up without a restart).
//!
//! A refused token is answered as RFC 7628 says: an error challenge
//! (`{"status":"invalid_token"}`), then the failure once the client acknowledges it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use parking_lot::Mutex;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use tracing::{info, warn};

use super::principal::KafkaPrincipal;
use super::sasl::{AuthFailure, Step};
use crate::config::security::OAuthSettings;

/// A key of the key set.
#[derive(Debug, Clone)]
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed curve point (`04 || x || y`) and its curve.
    Ec {
        point: Vec<u8>,
        curve: String,
    },
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    key: Key,
}

/// The file's identity when it was read, to notice a replacement.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Validates tokens against one listener's settings.
#[derive(Debug)]
pub struct JwtValidator {
    settings: OAuthSettings,
    keys: Mutex<(Stamp, Arc<Vec<Jwk>>)>,
}

impl JwtValidator {
    /// Reads the key set; an unreadable or empty one stops the broker from starting.
    pub fn load(settings: OAuthSettings) -> Result<JwtValidator, String> {
        let path = &settings.jwks_file;
        let stamp = stamp(path);
        let keys = read_key_set(path)?;
        Ok(JwtValidator {
            settings,
            keys: Mutex::new((stamp, Arc::new(keys))),
        })
    }

    /// The key set, re-read first if its file changed; a bad new file keeps the old keys.
    fn keys(&self) -> Arc<Vec<Jwk>> {
        let path = &self.settings.jwks_file;
        let now = stamp(path);
        let mut current = self.keys.lock();
        if now.is_some() && now != current.0 {
            match read_key_set(path) {
                Ok(keys) => {
                    info!(file = %path.display(), keys = keys.len(), "OAUTHBEARER key set reloaded");
                    *current = (now, Arc::new(keys));
                }
                Err(reason) => {
                    warn!(file = %path.display(), reason, "OAUTHBEARER key set not reloaded; the previous keys stay");
                    current.0 = now;
                }
            }
        }
        current.1.clone()
    }

    /// The principal name a token proves, or why it proves nothing.
    pub fn validate(&self, token: &str, now: SystemTime) -> Result<String, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the token is not a signed JWT (three dot-separated parts)".to_string());
        };
        let header_json = decode_json(header, "header")?;
        let claims = decode_json(payload, "payload")?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "the token's signature is not base64url".to_string())?;
        let alg = header_json
            .get("alg")
            .and_then(Value::as_str)
            .ok_or("the token header names no alg")?;
        let kid = header_json.get("kid").and_then(Value::as_str);
        let keys = self.keys();
        let candidates: Vec<&Jwk> = keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == alg))
            .collect();
        if candidates.is_empty() {
            return Err(format!(
                "no key of the key set matches kid {kid:?} and alg {alg:?}"
            ));
        }
        let signed = &token[..header.len() + 1 + payload.len()];
        let verified = candidates
            .iter()
            .any(|k| verify(alg, &k.key, signed.as_bytes(), &signature));
        if !verified {
            return Err(format!(
                "the token's {alg} signature does not verify against the key set"
            ));
        }
        self.check_claims(&claims, now)
    }

    fn check_claims(&self, claims: &Value, now: SystemTime) -> Result<String, String> {
        let settings = &self.settings;
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        let skew = settings.clock_skew.as_secs_f64();
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or("the token has no exp claim")?;
        if now > exp + skew {
            return Err(format!("the token expired at {exp} (now {now:.0})"));
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_f64) {
            if now + skew < nbf {
                return Err(format!(
                    "the token is not valid before {nbf} (now {now:.0})"
                ));
            }
        }
        if let Some(expected) = &settings.issuer {
            let iss = claims.get("iss").and_then(Value::as_str);
            if iss != Some(expected.as_str()) {
                return Err(format!("the token's issuer {iss:?} is not {expected:?}"));
            }
        }
        if !settings.audience.is_empty() {
            let aud: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !aud.iter().any(|a| settings.audience.iter().any(|e| e == a)) {
                return Err(format!(
                    "the token's audience {aud:?} names none of {:?}",
                    settings.audience
                ));
            }
        }
        claims
            .get(&settings.sub_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("the token has no {:?} claim", settings.sub_claim))
    }
}

fn decode_json(part: &str, what: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| format!("the token's {what} is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| format!("the token's {what} is not JSON"))
}

fn verify(alg: &str, key: &Key, message: &[u8], sig: &[u8]) -> bool {
    match (alg, key) {
        ("RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512", Key::Rsa { n, e }) => {
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                _ => &signature::RSA_PSS_2048_8192_SHA512,
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok()
        }
        ("ES256", Key::Ec { point, curve }) if curve == "P-256" => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        ("ES384", Key::Ec { point, curve }) if curve == "P-384" => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        _ => false,
    }
}

/// The signing keys of a JWKS file (`{"keys":[...]}`); keys for other uses or of other types
/// are skipped.
fn read_key_set(path: &Path) -> Result<Vec<Jwk>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read the key set {}: {e}", path.display()))?;
    let json: Value = serde_json::from_slice(&text)
        .map_err(|e| format!("the key set {} is not JSON: {e}", path.display()))?;
    let field = |k: &Value, name: &str| -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(k.get(name)?.as_str()?).ok()
    };
    let keys: Vec<Jwk> = json
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .filter_map(|k| {
            let key = match k.get("kty").and_then(Value::as_str)? {
                "RSA" => Key::Rsa {
                    n: field(k, "n")?,
                    e: field(k, "e")?,
                },
                "EC" => {
                    let mut point = vec![4u8];
                    point.extend(field(k, "x")?);
                    point.extend(field(k, "y")?);
                    Key::Ec {
                        point,
                        curve: k.get("crv")?.as_str()?.to_string(),
                    }
                }
                _ => return None,
            };
            Some(Jwk {
                kid: k.get("kid").and_then(Value::as_str).map(str::to_string),
                alg: k.get("alg").and_then(Value::as_str).map(str::to_string),
                key,
            })
        })
        .collect();
    if keys.is_empty() {
        return Err(format!(
            "the key set {} holds no RSA or EC signing key",
            path.display()
        ));
    }
    Ok(keys)
}

/// One OAUTHBEARER authentication in progress.
#[derive(Debug)]
pub struct OAuthExchange {
    validator: Arc<JwtValidator>,
    /// Why the token was refused, once the error challenge is sent.
    refused: Option<String>,
}

impl OAuthExchange {
    pub fn new(validator: Arc<JwtValidator>) -> OAuthExchange {
        OAuthExchange {
            validator,
            refused: None,
        }
    }

    fn failure(reason: impl Into<String>) -> AuthFailure {
        AuthFailure {
            message: "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER".to_string(),
            reason: reason.into(),
        }
    }

    /// `gs2-header %x01 auth=Bearer <token> %x01 [key=value %x01]... %x01`.
    pub fn step(&mut self, message: &[u8], now: SystemTime) -> Result<Step, AuthFailure> {
        if let Some(reason) = self.refused.take() {
            return Err(OAuthExchange::failure(reason));
        }
        let text = std::str::from_utf8(message)
            .map_err(|_| OAuthExchange::failure("OAUTHBEARER message is not UTF-8"))?;
        let mut parts = text.split('\u{1}');
        let header = parts.next().unwrap_or_default();
        let Some(authzid) = header
            .strip_prefix("n,")
            .and_then(|rest| rest.strip_suffix(','))
        else {
            return Err(OAuthExchange::failure("malformed OAUTHBEARER gs2 header"));
        };
        let token = parts
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "auth")
            .and_then(|(_, v)| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| OAuthExchange::failure("OAUTHBEARER message without a bearer token"))?;
        match self.validator.validate(token, now) {
            Ok(subject) => {
                if let Some(asked) = authzid.strip_prefix("a=") {
                    if asked != subject {
                        return Err(AuthFailure {
                            message: "Authentication failed: Client requested an authorization id that is different from username".to_string(),
                            reason: format!("token subject {subject:?} asked to act as {asked:?}"),
                        });
                    }
                }
                Ok(Step::Done {
                    principal: KafkaPrincipal::user(&subject),
                    message: Vec::new(),
                })
            }
            Err(reason) => {
                // Logged now too: clients that ignore the error challenge never hear the failure.
                info!(reason = %reason, "OAUTHBEARER token refused; sending the error challenge");
                self.refused = Some(reason);
                Ok(Step::Continue {
                    message: br#"{"status":"invalid_token"}"#.to_vec(),
                })
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use rcgen::KeyPair;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    use super::*;

    /// An ES256 signing key and its key set file.
    pub(crate) struct Issuer {
        key: EcdsaKeyPair,
        pub jwks: tempfile::NamedTempFile,
    }

    impl Issuer {
        pub(crate) fn new(kid: &str) -> Issuer {
            let pair = KeyPair::generate().unwrap();
            let key = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &pair.serialize_der(),
                &SystemRandom::new(),
            )
            .unwrap();
            let point = pair.public_key_raw();
            let jwks = serde_json::json!({"keys": [{
                "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid, "alg": "ES256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }]});
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), jwks.to_string()).unwrap();
            Issuer { key, jwks: file }
        }

        pub(crate) fn token(&self, kid: &str, alg: &str, claims: &Value) -> String {
            let header = serde_json::json!({"alg": alg, "kid": kid, "typ": "JWT"});
            let signed = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = self
                .key
                .sign(&SystemRandom::new(), signed.as_bytes())
                .unwrap();
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
        }
    }

    fn settings(jwks: PathBuf) -> OAuthSettings {
        OAuthSettings {
            jwks_file: jwks,
            issuer: Some("https://idp.test".to_string()),
            audience: vec!["kafka".to_string()],
            sub_claim: "sub".to_string(),
            clock_skew: Duration::from_secs(30),
        }
    }

    const NOW: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn claims(sub: &str, exp: u64) -> Value {
        serde_json::json!({"sub": sub, "iss": "https://idp.test", "aud": ["kafka"], "exp": exp, "iat": NOW})
    }

    #[test]
    fn a_signed_token_names_its_subject() {
        let issuer = Issuer::new("k1");
        let v = JwtValidator::load(settings(issuer.jwks.path().to_path_buf())).unwrap();
        let token = issuer.token("k1", "ES256", &claims("team-a", NOW + 600));
        assert_eq!(v.validate(&token, at(NOW)), Ok("team-a".to_string()));
    }

    #[test]
    fn bad_tokens_are_refused_with_the_reason() {
        let issuer = Issuer::new("k1");
        let stranger = Issuer::new("k1");
        let v = JwtValidator::load(settings(issuer.jwks.path().to_path_buf())).unwrap();
        let refused = |token: String| v.validate(&token, at(NOW)).unwrap_err();
        assert!(refused(issuer.token("k1", "ES256", &claims("a", NOW - 60))).contains("expired"));
        assert!(
            refused(stranger.token("k1", "ES256", &claims("a", NOW + 60)))
                .contains("does not verify")
        );
        assert!(refused(issuer.token("k2", "ES256", &claims("a", NOW + 60))).contains("kid"));
        let mut wrong = claims("a", NOW + 60);
        wrong["aud"] = serde_json::json!("other");
        assert!(refused(issuer.token("k1", "ES256", &wrong)).contains("audience"));
        let mut wrong = claims("a", NOW + 60);
        wrong["iss"] = serde_json::json!("https://evil");
        assert!(refused(issuer.token("k1", "ES256", &wrong)).contains("issuer"));
        let mut wrong = claims("a", NOW + 60);
        wrong["nbf"] = serde_json::json!(NOW + 600);
        assert!(refused(issuer.token("k1", "ES256", &wrong)).contains("not valid before"));
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims("a", NOW + 60).to_string())
        );
        assert!(v.validate(&unsigned, at(NOW)).is_err());
        assert!(v.validate("not-a-jwt", at(NOW)).is_err());
        // Within the clock skew an expired token still counts.
        let token = issuer.token("k1", "ES256", &claims("a", NOW - 10));
        assert!(v.validate(&token, at(NOW)).is_ok());
    }

    #[test]
    fn a_replaced_key_set_is_read_and_a_broken_one_ignored() {
        let first = Issuer::new("k1");
        let v = JwtValidator::load(settings(first.jwks.path().to_path_buf())).unwrap();
        let second = Issuer::new("k2");
        std::fs::copy(second.jwks.path(), first.jwks.path()).unwrap();
        let token = second.token("k2", "ES256", &claims("b", NOW + 60));
        assert_eq!(v.validate(&token, at(NOW)), Ok("b".to_string()));
        std::fs::write(first.jwks.path(), "{ not json, and longer than before").unwrap();
        assert_eq!(v.validate(&token, at(NOW)), Ok("b".to_string()));
        assert!(JwtValidator::load(settings(PathBuf::from("/nonexistent/jwks.json"))).is_err());
    }

    #[test]
    fn the_exchange_sends_an_error_challenge_before_failing() {
        let issuer = Issuer::new("k1");
        let v = Arc::new(JwtValidator::load(settings(issuer.jwks.path().to_path_buf())).unwrap());
        let message = |token: &str| format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}");
        let good = issuer.token("k1", "ES256", &claims("team-a", NOW + 60));
        let done = OAuthExchange::new(v.clone()).step(message(&good).as_bytes(), at(NOW));
        assert_eq!(
            done,
            Ok(Step::Done {
                principal: KafkaPrincipal::user("team-a"),
                message: Vec::new()
            })
        );
        let bad = issuer.token("k1", "ES256", &claims("team-a", NOW - 600));
        let mut exchange = OAuthExchange::new(v.clone());
        let challenge = exchange.step(message(&bad).as_bytes(), at(NOW)).unwrap();
        assert_eq!(
            challenge,
            Step::Continue {
                message: br#"{"status":"invalid_token"}"#.to_vec()
            }
        );
        let failure = exchange.step(b"\x01", at(NOW)).unwrap_err();
        assert!(failure.reason.contains("expired"));
        let other = format!("n,a=team-b,\u{1}auth=Bearer {good}\u{1}\u{1}");
        assert!(OAuthExchange::new(v.clone())
            .step(other.as_bytes(), at(NOW))
            .is_err());
        assert!(OAuthExchange::new(v).step(b"n,,\x01\x01", at(NOW)).is_err());
    }
}

//! SCRAM users a cluster starts with, so a SASL-only cluster has someone who can log in to
//! create the rest: `sasl.scram.bootstrap.credentials.file` names a file (a mounted Secret)
//! with one credential per line in the syntax of Kafka's `kafka-storage format --add-scram`:
//!
//! ```text
//! SCRAM-SHA-512=[name=admin,password=admin-secret]
//! SCRAM-SHA-256=[name=alice,password=alice-secret,iterations=8192]
//! ```
//!
//! Once the quorum answers, each listed (user, mechanism) that has no credential yet is created
//! (salted and hashed here; only the derived keys reach the metadata log). A user who already
//! has one keeps it, so a password changed with AlterUserScramCredentials is not reset by a
//! restart — as Kafka's format-time bootstrap only applies to a new cluster.

use std::path::Path;
use std::time::Duration;

use kafka_core::scram::{ScramCredential, ScramMechanism};
use raft_controller::Quorum;
use ring::rand::SecureRandom;
use tracing::{info, warn};

use super::scram;
use crate::config::security::Secret;
use crate::shutdown::Shutdown;

/// Iterations when a line names none (Kafka's default for `--add-scram`).
const DEFAULT_ITERATIONS: i32 = 4096;

/// How long to wait between attempts while the quorum is not ready.
const RETRY: Duration = Duration::from_secs(1);

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapCredential {
    pub user: String,
    pub mechanism: ScramMechanism,
    pub password: Secret,
    pub iterations: i32,
}

/// A line that does not parse, with its number (1-based); the password is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct InvalidLine {
    pub line: usize,
    pub reason: String,
}

/// Parses the file's text: blank lines and `#` comments are skipped.
pub fn parse(text: &str) -> Result<Vec<BootstrapCredential>, InvalidLine> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(line, l)| parse_line(l).map_err(|reason| InvalidLine { line, reason }))
        .collect()
}

fn parse_line(line: &str) -> Result<BootstrapCredential, String> {
    let (mechanism, rest) = line
        .split_once('=')
        .ok_or("expected MECHANISM=[name=...,password=...]")?;
    let mechanism = ScramMechanism::from_name(mechanism.trim())
        .ok_or_else(|| format!("unknown SCRAM mechanism {:?}", mechanism.trim()))?;
    let inner = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or("the attributes must be enclosed in [ ]")?;
    let (mut user, mut password, mut iterations) = (None, None, DEFAULT_ITERATIONS);
    for attribute in inner.split(',') {
        let (key, value) = attribute
            .split_once('=')
            .ok_or("attributes are key=value")?;
        let value = value.trim().trim_matches('"');
        match key.trim() {
            "name" => user = Some(value.to_string()),
            "password" => password = Some(Secret::new(value)),
            "iterations" => {
                iterations = value
                    .parse()
                    .map_err(|_| format!("iterations {value:?} is not a number"))?;
                ScramMechanism::check_iterations(iterations)?;
            }
            other => return Err(format!("unknown attribute {other:?}")),
        }
    }
    let user = user.filter(|u| !u.is_empty()).ok_or("no name")?;
    let password = password
        .filter(|p| !p.expose().is_empty())
        .ok_or("no password")?;
    Ok(BootstrapCredential {
        user,
        mechanism,
        password,
        iterations,
    })
}

/// Reads and parses the file.
pub fn load(path: &Path) -> Result<Vec<BootstrapCredential>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The stored form of a bootstrap credential, with a fresh random salt.
fn stored(credential: &BootstrapCredential) -> Result<ScramCredential, String> {
    let mut salt = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "no randomness for a salt".to_string())?;
    let salted = scram::salted_password(
        credential.mechanism,
        credential.password.expose().as_bytes(),
        &salt,
        credential.iterations,
    )?;
    Ok(scram::credential(
        credential.mechanism,
        &salted,
        &salt,
        credential.iterations,
    ))
}

/// Creates the credentials that do not exist yet, retrying until the quorum takes them or the
/// broker shuts down.
pub async fn run(quorum: Quorum, credentials: Vec<BootstrapCredential>, mut shutdown: Shutdown) {
    loop {
        let image = quorum.image();
        let missing: Vec<&BootstrapCredential> = credentials
            .iter()
            .filter(|c| {
                !image
                    .scram
                    .get(&c.user)
                    .is_some_and(|m| m.contains_key(&c.mechanism))
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        let upsertions: Result<Vec<_>, String> = missing
            .iter()
            .map(|c| stored(c).map(|s| (c.user.clone(), c.mechanism, s)))
            .collect();
        let upsertions = match upsertions {
            Ok(u) => u,
            Err(e) => {
                warn!(error = %e, "cannot prepare the bootstrap SCRAM credentials");
                return;
            }
        };
        match quorum.alter_scram_credentials(upsertions, Vec::new()).await {
            Ok(_) => {
                for c in &missing {
                    info!(user = %c.user, mechanism = c.mechanism.name(), "bootstrap SCRAM credential created");
                }
                return;
            }
            Err(e) => {
                info!(error = %e, "bootstrap SCRAM credentials not written yet; retrying");
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_kafka_storage_syntax_parse() {
        let text = "# users\n\nSCRAM-SHA-512=[name=admin,password=admin-secret]\n\
                    SCRAM-SHA-256=[name=\"alice\",password=\"a,b\"c\",iterations=8192]\n";
        let parsed = parse("SCRAM-SHA-512=[name=admin,password=admin-secret]").unwrap();
        assert_eq!(parsed[0].user, "admin");
        assert_eq!(parsed[0].mechanism, ScramMechanism::Sha512);
        assert_eq!(parsed[0].password.expose(), "admin-secret");
        assert_eq!(parsed[0].iterations, DEFAULT_ITERATIONS);
        // A comma inside a password is not supported (as in Kafka's syntax): it is refused.
        let err = parse(text).unwrap_err();
        assert_eq!(err.line, 4);
        let two = parse(
            "SCRAM-SHA-512=[name=admin,password=x]\nSCRAM-SHA-256=[name=alice,password=y,iterations=8192]",
        )
        .unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].iterations, 8192);
    }

    #[test]
    fn bad_lines_are_refused_without_echoing_the_password() {
        for (line, why) in [
            (
                "SCRAM-SHA-1=[name=a,password=secret-1]",
                "unknown SCRAM mechanism",
            ),
            ("SCRAM-SHA-256=name=a,password=secret-2", "enclosed"),
            ("SCRAM-SHA-256=[name=a]", "no password"),
            ("SCRAM-SHA-256=[password=secret-3]", "no name"),
            (
                "SCRAM-SHA-256=[name=a,password=secret-4,iterations=10]",
                "Too few iterations",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=secret-5,salt=abc]",
                "unknown attribute",
            ),
        ] {
            let err = parse(line).unwrap_err();
            assert!(err.reason.contains(why), "{line}: {err}");
            assert!(!err.to_string().contains("secret-"), "{err}");
        }
    }

    #[test]
    fn the_stored_credential_verifies_the_password() {
        let c = parse("SCRAM-SHA-256=[name=a,password=pw]")
            .unwrap()
            .remove(0);
        let stored = stored(&c).unwrap();
        let salted =
            scram::salted_password(c.mechanism, b"pw", &stored.salt, stored.iterations).unwrap();
        assert_eq!(
            scram::credential(c.mechanism, &salted, &stored.salt, stored.iterations),
            stored
        );
        assert_eq!(stored.salt.len(), 32);
    }
}

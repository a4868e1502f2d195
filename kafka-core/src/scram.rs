//! SCRAM (RFC 5802, RFC 7677) as Kafka uses it: the two mechanisms with their protocol codes
//! (AlterUserScramCredentials, DescribeUserScramCredentials), the iteration bounds Kafka
//! accepts, and the credential a broker stores for a user — salt, iterations and the derived
//! stored and server keys, never the password or the salted password.

use serde::{Deserialize, Serialize};

/// A SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// Both, in protocol-code order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// Fewest iterations Kafka accepts for a credential.
    pub const MIN_ITERATIONS: i32 = 4096;

    /// Most iterations Kafka accepts for a credential.
    pub const MAX_ITERATIONS: i32 = 16384;

    /// The protocol code (`1` SHA-256, `2` SHA-512; `0` is "unknown" on the wire).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The SASL mechanism name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Why `iterations` is refused (`UNACCEPTABLE_CREDENTIAL`), if it is.
    pub fn check_iterations(iterations: i32) -> Result<(), &'static str> {
        if iterations < ScramMechanism::MIN_ITERATIONS {
            Err("Too few iterations")
        } else if iterations > ScramMechanism::MAX_ITERATIONS {
            Err("Too many iterations")
        } else {
            Ok(())
        }
    }
}

/// What a broker keeps to verify a user's SCRAM proof: `StoredKey = H(HMAC(SaltedPassword,
/// "Client Key"))` and `ServerKey = HMAC(SaltedPassword, "Server Key")`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: i32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for m in ScramMechanism::ALL {
            assert_eq!(ScramMechanism::from_code(m.code()), Some(m));
            assert_eq!(ScramMechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(ScramMechanism::from_code(0), None);
        assert_eq!(ScramMechanism::from_name("SCRAM-SHA-1"), None);
    }

    #[test]
    fn iterations_are_bounded_as_in_kafka() {
        assert!(ScramMechanism::check_iterations(4095).is_err());
        assert!(ScramMechanism::check_iterations(4096).is_ok());
        assert!(ScramMechanism::check_iterations(16384).is_ok());
        assert!(ScramMechanism::check_iterations(16385).is_err());
    }

    #[test]
    fn debug_hides_the_keys() {
        let c = ScramCredential {
            salt: vec![1],
            iterations: 4096,
            stored_key: vec![0xab; 32],
            server_key: vec![0xcd; 32],
        };
        assert_eq!(format!("{c:?}"), "ScramCredential { iterations: 4096, .. }");
    }
}

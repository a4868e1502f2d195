//! Kafka's `controller.quorum.voters`: `id@host:port,...`.

use std::collections::BTreeMap;

/// Why a voter list is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidVoters {
    #[error("voter entry {0:?} is not id@host:port")]
    NotIdAtAddress(String),
    #[error("voter entry {entry:?}: {id:?} is not a non-negative node id")]
    BadId { entry: String, id: String },
    #[error("voter entry {entry:?}: {address:?} is not host:port")]
    BadAddress { entry: String, address: String },
    #[error("voter {0} is listed twice")]
    Duplicate(i32),
    #[error("no voters are listed")]
    Empty,
}

/// Parses `0@rivulet-0.rivulet-headless:9093,1@10.0.0.2:9093` into voter id -> `host:port`.
/// Ids must be non-negative, hosts non-empty and ports numbers, as Kafka requires; blank
/// entries and spaces around entries are ignored.
pub fn parse_voters(text: &str) -> Result<BTreeMap<i32, String>, InvalidVoters> {
    let mut voters = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id_text, address) = entry
            .split_once('@')
            .ok_or_else(|| InvalidVoters::NotIdAtAddress(entry.to_string()))?;
        let id = id_text
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| InvalidVoters::BadId {
                entry: entry.to_string(),
                id: id_text.to_string(),
            })?;
        let address = address.trim();
        let valid = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(InvalidVoters::BadAddress {
                entry: entry.to_string(),
                address: address.to_string(),
            });
        }
        if voters.insert(id, address.to_string()).is_some() {
            return Err(InvalidVoters::Duplicate(id));
        }
    }
    if voters.is_empty() {
        return Err(InvalidVoters::Empty);
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_voter_strings() {
        let voters = parse_voters(
            "0@rivulet-0.rivulet-headless:9093, 1@rivulet-1.rivulet-headless:9093,2@10.0.0.3:9093",
        )
        .unwrap();
        assert_eq!(voters.len(), 3);
        assert_eq!(voters[&0], "rivulet-0.rivulet-headless:9093");
        assert_eq!(voters[&2], "10.0.0.3:9093");
        assert_eq!(
            parse_voters("0@[::1]:9093").map(|v| v[&0].clone()),
            Ok("[::1]:9093".to_string())
        );
    }

    #[test]
    fn rejects_malformed_voters_saying_why() {
        assert_eq!(parse_voters(""), Err(InvalidVoters::Empty));
        assert_eq!(parse_voters(" , "), Err(InvalidVoters::Empty));
        assert!(matches!(
            parse_voters("0"),
            Err(InvalidVoters::NotIdAtAddress(_))
        ));
        for bad in ["x@h:1", "-1@h:1", "@h:1"] {
            assert!(
                matches!(parse_voters(bad), Err(InvalidVoters::BadId { .. })),
                "{bad}"
            );
        }
        for bad in ["0@h", "0@h:port", "0@:9093", "0@h:70000"] {
            assert!(
                matches!(parse_voters(bad), Err(InvalidVoters::BadAddress { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            parse_voters("0@h:1,0@h:2"),
            Err(InvalidVoters::Duplicate(0))
        );
    }
}

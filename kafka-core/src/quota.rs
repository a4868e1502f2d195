//! Client quotas as Kafka defines them (KIP-13, KIP-55, KIP-124): the entities a quota is set
//! on (a user, a client id, or a user's client id, each named or the default), the quota keys
//! with the checks Kafka applies to their values, and the precedence that picks the one quota
//! a connection is held to.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The entity type of a user quota (`DescribeClientQuotas` / `AlterClientQuotas`).
pub const USER: &str = "user";

/// The entity type of a client-id quota.
pub const CLIENT_ID: &str = "client-id";

/// The entity type of an IP (connection-rate) quota.
pub const IP: &str = "ip";

/// One part of an entity: a name, or the default for every name without its own quota.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    /// From the wire, where the default is a null name.
    pub fn from_wire(name: Option<&str>) -> EntityName {
        match name {
            None => EntityName::Default,
            Some(n) => EntityName::Named(n.to_string()),
        }
    }

    /// For the wire: `None` for the default.
    pub fn to_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(n) => Some(n),
        }
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityName::Default => f.write_str("<default>"),
            EntityName::Named(n) => f.write_str(n),
        }
    }
}

/// What a quota is set on: a user, a client id, or both. At least one part is present.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<EntityName>,
    pub client_id: Option<EntityName>,
}

/// An entity that Rivulet cannot hold a quota for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEntity {
    #[error("a quota entity needs at least one of user and client-id")]
    Empty,
    #[error("entity type {0} appears twice")]
    Duplicate(String),
    #[error(
        "ip quotas (connection_creation_rate) are not supported; use max.connection.creation.rate"
    )]
    Ip,
    #[error("unknown entity type {0}")]
    UnknownType(String),
}

impl QuotaEntity {
    /// Builds an entity from its `(entity_type, name)` parts as the admin APIs send them.
    pub fn from_parts<'a>(
        parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<QuotaEntity, InvalidEntity> {
        let mut entity = QuotaEntity {
            user: None,
            client_id: None,
        };
        for (kind, name) in parts {
            let slot = match kind {
                USER => &mut entity.user,
                CLIENT_ID => &mut entity.client_id,
                IP => return Err(InvalidEntity::Ip),
                other => return Err(InvalidEntity::UnknownType(other.to_string())),
            };
            if slot.is_some() {
                return Err(InvalidEntity::Duplicate(kind.to_string()));
            }
            *slot = Some(EntityName::from_wire(name));
        }
        if entity.user.is_none() && entity.client_id.is_none() {
            return Err(InvalidEntity::Empty);
        }
        Ok(entity)
    }

    /// The `(entity_type, name)` parts, user first.
    pub fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut parts = Vec::with_capacity(2);
        if let Some(user) = &self.user {
            parts.push((USER, user.to_wire()));
        }
        if let Some(client) = &self.client_id {
            parts.push((CLIENT_ID, client.to_wire()));
        }
        parts
    }

    fn of(user: Option<EntityName>, client_id: Option<EntityName>) -> QuotaEntity {
        QuotaEntity { user, client_id }
    }
}

impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(user) = &self.user {
            write!(f, "user={user}")?;
            sep = ",";
        }
        if let Some(client) = &self.client_id {
            write!(f, "{sep}client-id={client}")?;
        }
        Ok(())
    }
}

/// A quota key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaKey {
    /// Bytes per second a client may produce.
    ProducerByteRate,
    /// Bytes per second a client may fetch.
    ConsumerByteRate,
    /// Percentage of one request-handling thread's time per second.
    RequestPercentage,
}

impl QuotaKey {
    pub const ALL: [QuotaKey; 3] = [
        QuotaKey::ProducerByteRate,
        QuotaKey::ConsumerByteRate,
        QuotaKey::RequestPercentage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QuotaKey::ProducerByteRate => "producer_byte_rate",
            QuotaKey::ConsumerByteRate => "consumer_byte_rate",
            QuotaKey::RequestPercentage => "request_percentage",
        }
    }

    pub fn from_name(name: &str) -> Option<QuotaKey> {
        QuotaKey::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Checks a value as Kafka does: byte rates are whole numbers (Kafka types them LONG),
    /// every quota is a positive finite number.
    pub fn check(self, value: f64) -> Result<QuotaValue, InvalidQuotaValue> {
        if !value.is_finite() || value <= 0.0 {
            return Err(InvalidQuotaValue {
                key: self,
                value,
                reason: "must be a positive number",
            });
        }
        if self != QuotaKey::RequestPercentage && value.fract() != 0.0 {
            return Err(InvalidQuotaValue {
                key: self,
                value,
                reason: "must be a whole number of bytes per second",
            });
        }
        Ok(QuotaValue(value))
    }
}

/// A quota value refused by [`QuotaKey::check`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} {value} {reason}", key.name())]
pub struct InvalidQuotaValue {
    pub key: QuotaKey,
    pub value: f64,
    pub reason: &'static str,
}

/// A checked quota value: finite and positive (which is why it may be `Eq`).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct QuotaValue(f64);

impl Eq for QuotaValue {}

impl QuotaValue {
    pub fn get(self) -> f64 {
        self.0
    }
}

/// One entity's changes: a value to set, or `None` to remove the key.
pub type QuotaAlteration = (QuotaEntity, Vec<(QuotaKey, Option<QuotaValue>)>);

/// Every quota set, by entity and key.
pub type ClientQuotaMap = BTreeMap<QuotaEntity, BTreeMap<QuotaKey, QuotaValue>>;

/// The entity whose quota applies to `(user, client_id)` for `key`, with the value: Kafka's
/// order from the most specific (`user=u,client-id=c`) to the least (`client-id=<default>`).
pub fn resolve<'a>(
    quotas: &'a ClientQuotaMap,
    user: &str,
    client_id: &str,
    key: QuotaKey,
) -> Option<(&'a QuotaEntity, QuotaValue)> {
    if quotas.is_empty() {
        return None;
    }
    let named_user = || Some(EntityName::Named(user.to_string()));
    let named_client = || Some(EntityName::Named(client_id.to_string()));
    let default = || Some(EntityName::Default);
    let precedence = [
        QuotaEntity::of(named_user(), named_client()),
        QuotaEntity::of(named_user(), default()),
        QuotaEntity::of(named_user(), None),
        QuotaEntity::of(default(), named_client()),
        QuotaEntity::of(default(), default()),
        QuotaEntity::of(default(), None),
        QuotaEntity::of(None, named_client()),
        QuotaEntity::of(None, default()),
    ];
    precedence.iter().find_map(|candidate| {
        quotas
            .get_key_value(candidate)
            .and_then(|(entity, values)| values.get(&key).map(|v| (entity, *v)))
    })
}

/// The usage a matched quota meters together (Kafka's quota metric tags): a quota set on a
/// user (named or default) is shared by all of that user's client ids, one on a client id by
/// every user of it, one on both by that pair only.
pub fn metered_as(entity: &QuotaEntity, user: &str, client_id: &str) -> (String, String) {
    let user = if entity.user.is_some() { user } else { "" };
    let client = if entity.client_id.is_some() {
        client_id
    } else {
        ""
    };
    (user.to_string(), client.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        QuotaEntity {
            user: user.map(EntityName::from_wire),
            client_id: client.map(EntityName::from_wire),
        }
    }

    fn set(quotas: &mut ClientQuotaMap, e: QuotaEntity, value: f64) {
        quotas
            .entry(e)
            .or_default()
            .insert(QuotaKey::ProducerByteRate, QuotaValue(value));
    }

    #[test]
    fn the_most_specific_entity_wins_in_kafkas_order() {
        let levels = [
            entity(Some(Some("alice")), Some(Some("app"))),
            entity(Some(Some("alice")), Some(None)),
            entity(Some(Some("alice")), None),
            entity(Some(None), Some(Some("app"))),
            entity(Some(None), Some(None)),
            entity(Some(None), None),
            entity(None, Some(Some("app"))),
            entity(None, Some(None)),
        ];
        let mut quotas = ClientQuotaMap::new();
        for (i, level) in levels.iter().enumerate().rev() {
            set(&mut quotas, level.clone(), (i + 1) as f64);
        }
        for (i, level) in levels.iter().enumerate() {
            let (found, value) = resolve(&quotas, "alice", "app", QuotaKey::ProducerByteRate)
                .expect("a quota applies");
            assert_eq!(found, level);
            assert_eq!(value.get(), (i + 1) as f64);
            quotas.remove(level);
        }
        assert!(resolve(&quotas, "alice", "app", QuotaKey::ProducerByteRate).is_none());
    }

    #[test]
    fn other_users_and_keys_do_not_match() {
        let mut quotas = ClientQuotaMap::new();
        set(&mut quotas, entity(Some(Some("alice")), None), 100.0);
        assert!(resolve(&quotas, "bob", "app", QuotaKey::ProducerByteRate).is_none());
        assert!(resolve(&quotas, "alice", "app", QuotaKey::ConsumerByteRate).is_none());
        let (e, _) = resolve(&quotas, "alice", "x", QuotaKey::ProducerByteRate).expect("match");
        assert_eq!(metered_as(e, "alice", "x"), ("alice".into(), String::new()));
    }

    #[test]
    fn metering_follows_the_matched_entity() {
        let pair = entity(Some(Some("alice")), Some(Some("app")));
        assert_eq!(
            metered_as(&pair, "alice", "app"),
            ("alice".into(), "app".into())
        );
        let client_default = entity(None, Some(None));
        assert_eq!(
            metered_as(&client_default, "alice", "app"),
            (String::new(), "app".into())
        );
    }

    #[test]
    fn entities_are_checked() {
        let e = QuotaEntity::from_parts([(USER, Some("a")), (CLIENT_ID, None)]).expect("valid");
        assert_eq!(e, entity(Some(Some("a")), Some(None)));
        assert_eq!(e.parts(), vec![(USER, Some("a")), (CLIENT_ID, None)]);
        assert_eq!(e.to_string(), "user=a,client-id=<default>");
        assert_eq!(QuotaEntity::from_parts([]), Err(InvalidEntity::Empty));
        assert_eq!(
            QuotaEntity::from_parts([(USER, Some("a")), (USER, Some("b"))]),
            Err(InvalidEntity::Duplicate(USER.into()))
        );
        assert_eq!(
            QuotaEntity::from_parts([(IP, Some("10.0.0.1"))]),
            Err(InvalidEntity::Ip)
        );
        assert!(matches!(
            QuotaEntity::from_parts([("group", Some("g"))]),
            Err(InvalidEntity::UnknownType(_))
        ));
    }

    #[test]
    fn values_are_checked_like_kafka() {
        assert!(QuotaKey::ProducerByteRate.check(1024.0).is_ok());
        assert!(QuotaKey::ProducerByteRate.check(10.5).is_err());
        assert!(QuotaKey::ConsumerByteRate.check(0.0).is_err());
        assert!(QuotaKey::RequestPercentage.check(-1.0).is_err());
        assert!(QuotaKey::RequestPercentage.check(f64::NAN).is_err());
        assert_eq!(
            QuotaKey::RequestPercentage.check(12.5).map(QuotaValue::get),
            Ok(12.5)
        );
        assert_eq!(
            QuotaKey::from_name("consumer_byte_rate"),
            Some(QuotaKey::ConsumerByteRate)
        );
        assert_eq!(QuotaKey::from_name("controller_mutation_rate"), None);
    }
}

//! The connection limits an operator sets, parsed from Kafka's properties: `max.connections`
//! (broker-wide, KIP-402), `max.connections.per.ip` and its `max.connections.per.ip.overrides`,
//! `max.connection.creation.rate` (KIP-612), and the per-listener forms
//! `listener.name.<name>.max.connections` / `listener.name.<name>.max.connection.creation.rate`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::sources::Properties;
use super::ConfigError;

/// Properties that may also be set for one listener as `listener.name.<name>.<property>`.
pub const PER_LISTENER_PROPERTIES: [&str; 2] = ["max.connections", "max.connection.creation.rate"];

/// "No limit": Kafka's default for every connection limit (`Int.MaxValue`).
pub const UNLIMITED: u32 = i32::MAX as u32;

/// Limits of one listener; `None` where only the broker-wide limit applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerConnectionLimits {
    pub max_connections: Option<u32>,
    pub max_connection_creation_rate: Option<u32>,
}

/// Every connection limit of the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimitsConfig {
    /// Connections over all client listeners but the inter-broker one.
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub per_ip_overrides: BTreeMap<IpAddr, u32>,
    /// New connections per second over all client listeners but the inter-broker one.
    pub max_connection_creation_rate: u32,
    /// Keyed by upper-case listener name, as listeners are named in `listeners`.
    pub listeners: BTreeMap<String, ListenerConnectionLimits>,
}

impl Default for ConnectionLimitsConfig {
    fn default() -> Self {
        ConnectionLimitsConfig {
            max_connections: UNLIMITED,
            max_connections_per_ip: UNLIMITED,
            per_ip_overrides: BTreeMap::new(),
            max_connection_creation_rate: UNLIMITED,
            listeners: BTreeMap::new(),
        }
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn count(key: &str, value: &str, min: u32) -> Result<u32, ConfigError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| invalid(key, value, e.to_string()))?;
    if n < i64::from(min) || n > i64::from(UNLIMITED) {
        return Err(invalid(
            key,
            value,
            format!("must be between {min} and {UNLIMITED}"),
        ));
    }
    Ok(n as u32)
}

/// `host:count,...` with IP-address hosts (hostnames are not resolved).
fn parse_overrides(key: &str, text: &str) -> Result<BTreeMap<IpAddr, u32>, ConfigError> {
    let mut overrides = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, n) = entry
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, entry, "expected ip:count"))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = host
            .parse()
            .map_err(|_| invalid(key, entry, format!("{host:?} is not an IP address")))?;
        overrides.insert(ip, count(key, n, 0)?);
    }
    Ok(overrides)
}

impl ConnectionLimitsConfig {
    /// Reads the limits; `value` gives a property's explicit value or its table default.
    pub(super) fn resolve(
        props: &Properties,
        value: impl Fn(&str) -> Option<String>,
        listener_names: &[String],
    ) -> Result<ConnectionLimitsConfig, ConfigError> {
        let get = |key: &str| value(key).unwrap_or_default();
        let max_connections = count("max.connections", &get("max.connections"), 0)?;
        let max_connections_per_ip =
            count("max.connections.per.ip", &get("max.connections.per.ip"), 0)?;
        let per_ip_overrides = parse_overrides(
            "max.connections.per.ip.overrides",
            &get("max.connections.per.ip.overrides"),
        )?;
        if max_connections_per_ip == 0 && per_ip_overrides.is_empty() {
            // Kafka's own rule: a per-IP limit of 0 only makes sense with overrides.
            return Err(invalid(
                "max.connections.per.ip",
                "0",
                "0 requires max.connections.per.ip.overrides",
            ));
        }
        let max_connection_creation_rate = count(
            "max.connection.creation.rate",
            &get("max.connection.creation.rate"),
            1,
        )?;
        let mut listeners = BTreeMap::new();
        for (key, text) in props.iter() {
            let Some((name, property)) = split_listener_key(key) else {
                continue;
            };
            let name = name.to_ascii_uppercase();
            if !listener_names.contains(&name) {
                return Err(invalid(
                    key,
                    text,
                    format!("no client listener named {name}"),
                ));
            }
            let limits: &mut ListenerConnectionLimits = listeners.entry(name).or_default();
            match property {
                "max.connections" => limits.max_connections = Some(count(key, text, 0)?),
                _ => limits.max_connection_creation_rate = Some(count(key, text, 1)?),
            }
        }
        Ok(ConnectionLimitsConfig {
            max_connections,
            max_connections_per_ip,
            per_ip_overrides,
            max_connection_creation_rate,
            listeners,
        })
    }

    /// The per-IP limit for `ip`.
    pub fn max_connections_for(&self, ip: IpAddr) -> u32 {
        self.per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.max_connections_per_ip)
    }
}

/// `listener.name.<name>.<property>` -> (name, property) for the per-listener properties.
pub fn split_listener_key(key: &str) -> Option<(&str, &'static str)> {
    let rest = key.strip_prefix("listener.name.")?;
    PER_LISTENER_PROPERTIES.iter().find_map(|property| {
        let name = rest.strip_suffix(property)?.strip_suffix('.')?;
        (!name.is_empty() && !name.contains('.')).then_some((name, *property))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;

    fn resolve(pairs: &[(&str, &str)]) -> Result<ConnectionLimitsConfig, ConfigError> {
        let mut props = Properties::default();
        for (k, v) in pairs {
            props.set(*k, *v, Origin::CommandLine);
        }
        let explicit = props.clone();
        ConnectionLimitsConfig::resolve(
            &props,
            |key| {
                explicit
                    .get(key)
                    .map(str::to_string)
                    .or_else(|| super::super::definition(key).map(|d| d.default.to_string()))
            },
            &["CLIENT".to_string(), "REPLICATION".to_string()],
        )
    }

    #[test]
    fn defaults_are_unlimited() {
        assert_eq!(resolve(&[]).unwrap(), ConnectionLimitsConfig::default());
    }

    #[test]
    fn reads_broker_ip_and_listener_limits() {
        let c = resolve(&[
            ("max.connections", "100"),
            ("max.connections.per.ip", "10"),
            ("max.connections.per.ip.overrides", "127.0.0.2:50, [::1]:0"),
            ("max.connection.creation.rate", "20"),
            ("listener.name.client.max.connections", "30"),
            ("listener.name.CLIENT.max.connection.creation.rate", "5"),
        ])
        .unwrap();
        assert_eq!(c.max_connections, 100);
        assert_eq!(c.max_connections_for("127.0.0.1".parse().unwrap()), 10);
        assert_eq!(c.max_connections_for("127.0.0.2".parse().unwrap()), 50);
        assert_eq!(c.max_connections_for("::1".parse().unwrap()), 0);
        assert_eq!(c.max_connection_creation_rate, 20);
        assert_eq!(
            c.listeners["CLIENT"],
            ListenerConnectionLimits {
                max_connections: Some(30),
                max_connection_creation_rate: Some(5),
            }
        );
    }

    #[test]
    fn rejects_bad_limits() {
        assert!(resolve(&[("max.connections", "-1")]).is_err());
        assert!(resolve(&[("max.connections", "many")]).is_err());
        assert!(resolve(&[("max.connections.per.ip.overrides", "somehost:3")]).is_err());
        assert!(resolve(&[("max.connections.per.ip.overrides", "127.0.0.1")]).is_err());
        assert!(resolve(&[("max.connections.per.ip", "0")]).is_err());
        assert!(resolve(&[
            ("max.connections.per.ip", "0"),
            ("max.connections.per.ip.overrides", "10.0.0.1:5"),
        ])
        .is_ok());
        assert!(resolve(&[("max.connection.creation.rate", "0")]).is_err());
        assert!(resolve(&[("listener.name.nosuch.max.connections", "3")]).is_err());
    }

    #[test]
    fn splits_listener_keys() {
        assert_eq!(
            split_listener_key("listener.name.client.max.connections"),
            Some(("client", "max.connections"))
        );
        assert_eq!(
            split_listener_key("listener.name.x.max.connection.creation.rate"),
            Some(("x", "max.connection.creation.rate"))
        );
        assert_eq!(split_listener_key("listener.name.max.connections"), None);
        assert_eq!(
            split_listener_key("listener.name.a.b.max.connections"),
            None
        );
        assert_eq!(split_listener_key("max.connections"), None);
    }
}

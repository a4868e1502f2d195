//! Connection quotas, shared by every client listener, as Kafka's `ConnectionQuotas` applies
//! them:
//!
//! - `max.connections` (broker-wide) and `listener.name.<name>.max.connections`: at the limit a
//!   listener stops accepting until a connection closes (KIP-402). The inter-broker listener is
//!   exempt from the broker-wide limit (and not counted in it) when there are other listeners,
//!   so replication keeps working when clients exhaust the broker.
//! - `max.connections.per.ip` (+ overrides): one connection too many from an address is closed
//!   as soon as it is accepted.
//! - `max.connection.creation.rate` (broker-wide, the inter-broker listener exempt) and
//!   `listener.name.<name>.max.connection.creation.rate` (KIP-612): accepting is delayed until
//!   the rate allows one more.
//!
//! The counting is a plain state machine ([`Counts`]); [`ConnectionQuotas`] adds the waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::rate::TokenBucket;
use crate::config::connections::UNLIMITED;
use crate::config::ConnectionLimitsConfig;

/// An address already holds its allowed connections.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{ip} already has {open} connections (max.connections.per.ip allows {max})")]
pub struct TooManyConnections {
    pub ip: IpAddr,
    pub open: u32,
    pub max: u32,
}

/// Open connections by listener, by address, and in total (the broker-wide count leaves the
/// protected inter-broker listener out).
#[derive(Debug, Default)]
struct Counts {
    total: u32,
    listeners: HashMap<String, u32>,
    ips: HashMap<IpAddr, u32>,
}

impl Counts {
    /// Takes a listener slot if both the listener and (unless `protected`) the broker have room.
    fn try_reserve(
        &mut self,
        listener: &str,
        listener_max: u32,
        broker_max: u32,
        protected: bool,
    ) -> bool {
        let on_listener = self.listeners.get(listener).copied().unwrap_or(0);
        if on_listener >= listener_max || (!protected && self.total >= broker_max) {
            return false;
        }
        *self.listeners.entry(listener.to_string()).or_insert(0) += 1;
        if !protected {
            self.total += 1;
        }
        true
    }

    fn release(&mut self, listener: &str, protected: bool) {
        if let Some(n) = self.listeners.get_mut(listener) {
            *n = n.saturating_sub(1);
        }
        if !protected {
            self.total = self.total.saturating_sub(1);
        }
    }

    fn admit_ip(&mut self, ip: IpAddr, max: u32) -> Result<(), TooManyConnections> {
        let open = self.ips.entry(ip).or_insert(0);
        if *open >= max {
            return Err(TooManyConnections {
                ip,
                open: *open,
                max,
            });
        }
        *open += 1;
        Ok(())
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.ips.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.ips.remove(&ip);
            }
        }
    }
}

#[derive(Debug)]
struct Rates {
    broker: Option<TokenBucket>,
    listeners: HashMap<String, TokenBucket>,
}

/// The broker's connection limits and what is currently open against them.
#[derive(Debug)]
pub struct ConnectionQuotas {
    config: ConnectionLimitsConfig,
    /// The inter-broker listener, if it is exempt from the broker-wide limits.
    protected_listener: Option<String>,
    counts: Mutex<Counts>,
    rates: Mutex<Rates>,
    freed: Notify,
}

impl ConnectionQuotas {
    /// `listeners` are the client listener names; the inter-broker one is protected only when
    /// there are others (as in Kafka: with a single listener every limit applies to it).
    pub fn new(
        config: ConnectionLimitsConfig,
        inter_broker_listener: &str,
        listeners: &[String],
        now: Instant,
    ) -> ConnectionQuotas {
        let protected_listener = (listeners.len() > 1
            && listeners.iter().any(|l| l == inter_broker_listener))
        .then(|| inter_broker_listener.to_string());
        let broker = (config.max_connection_creation_rate < UNLIMITED)
            .then(|| TokenBucket::new(config.max_connection_creation_rate, now));
        let listeners = config
            .listeners
            .iter()
            .filter_map(|(name, l)| {
                let rate = l.max_connection_creation_rate.filter(|r| *r < UNLIMITED)?;
                Some((name.clone(), TokenBucket::new(rate, now)))
            })
            .collect();
        ConnectionQuotas {
            config,
            protected_listener,
            counts: Mutex::new(Counts::default()),
            rates: Mutex::new(Rates { broker, listeners }),
            freed: Notify::new(),
        }
    }

    fn protected(&self, listener: &str) -> bool {
        self.protected_listener.as_deref() == Some(listener)
    }

    fn listener_max(&self, listener: &str) -> u32 {
        self.config
            .listeners
            .get(listener)
            .and_then(|l| l.max_connections)
            .unwrap_or(UNLIMITED)
    }

    /// A connection slot on `listener` if one is free now.
    pub fn try_reserve(self: &Arc<Self>, listener: &str) -> Option<Slot> {
        let protected = self.protected(listener);
        let reserved = self.counts.lock().try_reserve(
            listener,
            self.listener_max(listener),
            self.config.max_connections,
            protected,
        );
        reserved.then(|| Slot {
            quotas: self.clone(),
            listener: listener.to_string(),
            protected,
            ip: None,
        })
    }

    /// Waits for a connection slot on `listener`.
    pub async fn reserve(self: &Arc<Self>, listener: &str) -> Slot {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_reserve(listener) {
                return slot;
            }
            freed.await;
        }
    }

    /// How long `listener` must wait before accepting its next connection under the creation
    /// rates; zero means go ahead, and the connection is counted against the rates.
    pub fn throttle(&self, listener: &str, now: Instant) -> Duration {
        let mut rates = self.rates.lock();
        let Rates { broker, listeners } = &mut *rates;
        let broker = broker.as_mut().filter(|_| !self.protected(listener));
        let own = listeners.get_mut(listener);
        let mut buckets: Vec<&mut TokenBucket> = broker.into_iter().chain(own).collect();
        let wait = buckets
            .iter_mut()
            .map(|bucket| bucket.wait_time(now))
            .max()
            .unwrap_or(Duration::ZERO);
        if wait.is_zero() {
            for bucket in buckets {
                bucket.take(now);
            }
        }
        wait
    }

    fn release(&self, slot: &Slot) {
        let mut counts = self.counts.lock();
        counts.release(&slot.listener, slot.protected);
        if let Some(ip) = slot.ip {
            counts.release_ip(ip);
        }
        drop(counts);
        self.freed.notify_waiters();
    }
}

/// A reserved connection slot; dropping it frees the slot (and the address's count once
/// [`admit`](Slot::admit)ted).
#[derive(Debug)]
pub struct Slot {
    quotas: Arc<ConnectionQuotas>,
    listener: String,
    protected: bool,
    ip: Option<IpAddr>,
}

impl Slot {
    /// Counts the accepted connection against its address's limit.
    pub fn admit(mut self, ip: IpAddr) -> Result<Slot, TooManyConnections> {
        let max = self.quotas.config.max_connections_for(ip);
        self.quotas.counts.lock().admit_ip(ip, max)?;
        self.ip = Some(ip);
        Ok(self)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.quotas.release(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenerConnectionLimits;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn quotas(config: ConnectionLimitsConfig) -> Arc<ConnectionQuotas> {
        Arc::new(ConnectionQuotas::new(
            config,
            "REPLICATION",
            &["CLIENT".to_string(), "REPLICATION".to_string()],
            Instant::now(),
        ))
    }

    #[test]
    fn counts_listener_broker_and_ip() {
        let mut c = Counts::default();
        assert!(c.try_reserve("A", 2, 3, false));
        assert!(c.try_reserve("A", 2, 3, false));
        assert!(!c.try_reserve("A", 2, 3, false), "listener limit");
        assert!(c.try_reserve("B", 10, 3, false));
        assert!(!c.try_reserve("B", 10, 3, false), "broker limit");
        assert!(
            c.try_reserve("R", 10, 3, true),
            "protected listener ignores the broker limit"
        );
        c.release("A", false);
        assert!(c.try_reserve("B", 10, 3, false));

        assert!(c.admit_ip(ip("10.0.0.1"), 1).is_ok());
        let err = c.admit_ip(ip("10.0.0.1"), 1).unwrap_err();
        assert_eq!((err.open, err.max), (1, 1));
        c.release_ip(ip("10.0.0.1"));
        assert!(c.admit_ip(ip("10.0.0.1"), 1).is_ok());
    }

    #[test]
    fn slots_free_on_drop_and_ip_limits_apply() {
        let q = quotas(ConnectionLimitsConfig {
            max_connections: 2,
            max_connections_per_ip: 1,
            per_ip_overrides: [(ip("127.0.0.9"), 2)].into_iter().collect(),
            ..ConnectionLimitsConfig::default()
        });
        let a = q
            .try_reserve("CLIENT")
            .unwrap()
            .admit(ip("127.0.0.1"))
            .unwrap();
        let b = q.try_reserve("CLIENT").unwrap();
        assert!(q.try_reserve("CLIENT").is_none(), "broker-wide limit");
        let repl = q.try_reserve("REPLICATION");
        assert!(repl.is_some(), "inter-broker listener is exempt");
        // A second connection from 127.0.0.1 is refused and gives its slot back.
        assert!(b.admit(ip("127.0.0.1")).is_err());
        let b = q
            .try_reserve("CLIENT")
            .unwrap()
            .admit(ip("127.0.0.9"))
            .unwrap();
        drop(a);
        let c = q.try_reserve("CLIENT").unwrap().admit(ip("127.0.0.9"));
        assert!(c.is_ok(), "override allows two");
        drop(b);
        assert!(q.try_reserve("CLIENT").is_some());
    }

    #[test]
    fn single_listener_is_not_protected() {
        let q = Arc::new(ConnectionQuotas::new(
            ConnectionLimitsConfig {
                max_connections: 1,
                ..ConnectionLimitsConfig::default()
            },
            "PLAINTEXT",
            &["PLAINTEXT".to_string()],
            Instant::now(),
        ));
        let _a = q.try_reserve("PLAINTEXT").unwrap();
        assert!(q.try_reserve("PLAINTEXT").is_none());
    }

    #[tokio::test]
    async fn reserve_waits_until_a_slot_frees() {
        let q = quotas(ConnectionLimitsConfig {
            listeners: [(
                "CLIENT".to_string(),
                ListenerConnectionLimits {
                    max_connections: Some(1),
                    max_connection_creation_rate: None,
                },
            )]
            .into_iter()
            .collect(),
            ..ConnectionLimitsConfig::default()
        });
        let first = q.try_reserve("CLIENT").unwrap();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.reserve("CLIENT").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(second, Ok(Ok(_))));
    }

    #[test]
    fn creation_rates_throttle_broker_and_listener() {
        let t0 = Instant::now();
        let q = ConnectionQuotas::new(
            ConnectionLimitsConfig {
                max_connection_creation_rate: 2,
                listeners: [(
                    "REPLICATION".to_string(),
                    ListenerConnectionLimits {
                        max_connections: None,
                        max_connection_creation_rate: Some(1),
                    },
                )]
                .into_iter()
                .collect(),
                ..ConnectionLimitsConfig::default()
            },
            "REPLICATION",
            &["CLIENT".to_string(), "REPLICATION".to_string()],
            t0,
        );
        assert_eq!(q.throttle("CLIENT", t0), Duration::ZERO);
        assert_eq!(q.throttle("CLIENT", t0), Duration::ZERO);
        let wait = q.throttle("CLIENT", t0);
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(q.throttle("CLIENT", t0 + wait), Duration::ZERO);
        // The inter-broker listener only has its own rate.
        assert_eq!(q.throttle("REPLICATION", t0), Duration::ZERO);
        assert_eq!(q.throttle("REPLICATION", t0), Duration::from_secs(1));
    }
}

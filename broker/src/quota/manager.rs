//! The client quotas a broker enforces: which quota holds a request (resolved from the metadata
//! image with Kafka's precedence), the usage recorded against it, and how long its client must
//! be held back — its debt over its quota, at most `quota.window.num` windows at a time. Time
//! is passed in; usage nobody has recorded for a minute is forgotten.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafka_core::quota::{metered_as, resolve, ClientQuotaMap, QuotaKey};
use parking_lot::Mutex;

use super::usage_bucket::UsageBucket;

/// How often idle usage is looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Who a request is metered as.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The principal's name (`ANONYMOUS` when unauthenticated).
    pub user: &'a str,
    pub client_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MeterKey {
    key: QuotaKey,
    user: String,
    client_id: String,
}

#[derive(Debug)]
struct Meters {
    rates: HashMap<MeterKey, UsageBucket>,
    swept: Option<Instant>,
}

/// Usage against client quotas, shared by every connection of the broker.
#[derive(Debug)]
pub struct ClientQuotas {
    window: Duration,
    samples: u32,
    meters: Mutex<Meters>,
}

impl ClientQuotas {
    /// Allowance of one `window` (`quota.window.size.seconds`); one throttle lasts at most
    /// `samples` windows (`quota.window.num`).
    pub fn new(window: Duration, samples: u32) -> ClientQuotas {
        ClientQuotas {
            window,
            samples,
            meters: Mutex::new(Meters {
                rates: HashMap::new(),
                swept: None,
            }),
        }
    }

    /// Records `amount` of `key` for `client` at `now`; how long the client must now wait
    /// (zero when no quota applies or it is within its quota).
    pub fn record(
        &self,
        quotas: &ClientQuotaMap,
        key: QuotaKey,
        client: Client<'_>,
        amount: f64,
        now: Instant,
    ) -> Duration {
        let (window, most) = (self.window, self.longest_throttle());
        self.with_meter(quotas, key, client, now, |bucket, limit| {
            bucket.take(amount, limit, window, now);
            bucket.debt_time(limit, window, now).min(most)
        })
    }

    /// How long `client` must wait before more `key` usage, without recording any.
    pub fn throttle_time(
        &self,
        quotas: &ClientQuotaMap,
        key: QuotaKey,
        client: Client<'_>,
        now: Instant,
    ) -> Duration {
        let (window, most) = (self.window, self.longest_throttle());
        self.with_meter(quotas, key, client, now, |bucket, limit| {
            bucket.debt_time(limit, window, now).min(most)
        })
    }

    /// The most `key` usage one request may bring while within quota (one window's
    /// allowance), if a quota applies.
    pub fn max_in_window(
        &self,
        quotas: &ClientQuotaMap,
        key: QuotaKey,
        client: Client<'_>,
    ) -> Option<f64> {
        let (_, limit) = resolve(quotas, client.user, client.client_id, key)?;
        Some(limit.get() * self.window.as_secs_f64())
    }

    fn with_meter(
        &self,
        quotas: &ClientQuotaMap,
        key: QuotaKey,
        client: Client<'_>,
        now: Instant,
        f: impl FnOnce(&mut UsageBucket, f64) -> Duration,
    ) -> Duration {
        let Some((entity, limit)) = resolve(quotas, client.user, client.client_id, key) else {
            return Duration::ZERO;
        };
        let (user, client_id) = metered_as(entity, client.user, client.client_id);
        let meter = MeterKey {
            key,
            user,
            client_id,
        };
        let mut meters = self.meters.lock();
        self.sweep(&mut meters, now);
        let bucket = meters
            .rates
            .entry(meter)
            .or_insert_with(|| UsageBucket::new(limit.get(), self.window, now));
        f(bucket, limit.get())
    }

    fn longest_throttle(&self) -> Duration {
        self.window * self.samples.max(1)
    }

    fn sweep(&self, meters: &mut Meters, now: Instant) {
        if meters
            .swept
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_INTERVAL)
        {
            return;
        }
        meters.swept = Some(now);
        meters
            .rates
            .retain(|_, bucket| now.saturating_duration_since(bucket.updated()) < SWEEP_INTERVAL);
    }

    #[cfg(test)]
    fn meters(&self) -> usize {
        self.meters.lock().rates.len()
    }
}

#[cfg(test)]
mod tests {
    use kafka_core::quota::QuotaEntity;

    use super::*;

    const ALICE: Client<'static> = Client {
        user: "alice",
        client_id: "app",
    };

    fn quotas(parts: &[(&str, Option<&str>)], key: QuotaKey, value: f64) -> ClientQuotaMap {
        let entity = QuotaEntity::from_parts(parts.iter().copied()).expect("valid entity");
        let mut map = ClientQuotaMap::new();
        map.entry(entity)
            .or_default()
            .insert(key, key.check(value).expect("valid value"));
        map
    }

    #[test]
    fn a_client_over_its_quota_waits_in_proportion() {
        let q = quotas(
            &[("user", Some("alice"))],
            QuotaKey::ProducerByteRate,
            1000.0,
        );
        let cq = ClientQuotas::new(Duration::from_secs(1), 11);
        let t0 = Instant::now();
        // One window of allowance: 1000 bytes go through at once.
        let t = cq.record(&q, QuotaKey::ProducerByteRate, ALICE, 1_000.0, t0);
        assert_eq!(t, Duration::ZERO);
        // 500 more is half a second over the quota.
        let t = cq.record(&q, QuotaKey::ProducerByteRate, ALICE, 500.0, t0);
        assert!((t.as_secs_f64() - 0.5).abs() < 1e-6, "{t:?}");
    }

    #[test]
    fn waiting_the_throttle_time_brings_a_steady_client_back_to_its_quota() {
        let q = quotas(
            &[("user", Some("alice"))],
            QuotaKey::ProducerByteRate,
            1000.0,
        );
        let cq = ClientQuotas::new(Duration::from_secs(1), 11);
        let t0 = Instant::now();
        let mut t = Duration::ZERO;
        for second in 0..11 {
            let now = t0 + Duration::from_secs(second);
            t = cq.record(&q, QuotaKey::ProducerByteRate, ALICE, 1100.0, now);
        }
        // 12100 sent against 1000 of allowance and 10 s of refill: 1100 over, 1.1 s.
        assert!((t.as_secs_f64() - 1.1).abs() < 1e-6, "{t:?}");
        let later = t0 + Duration::from_secs(10) + t;
        let t = cq.throttle_time(&q, QuotaKey::ProducerByteRate, ALICE, later);
        assert_eq!(t, Duration::ZERO);
    }

    #[test]
    fn the_wait_is_bounded_by_the_sample_span() {
        let q = quotas(&[("client-id", None)], QuotaKey::ConsumerByteRate, 1.0);
        let cq = ClientQuotas::new(Duration::from_secs(1), 11);
        let t = cq.record(&q, QuotaKey::ConsumerByteRate, ALICE, 1e9, Instant::now());
        assert_eq!(t, Duration::from_secs(11));
    }

    #[test]
    fn clients_without_a_quota_are_not_metered() {
        let q = quotas(&[("user", Some("bob"))], QuotaKey::ProducerByteRate, 1.0);
        let cq = ClientQuotas::new(Duration::from_secs(1), 11);
        let now = Instant::now();
        assert_eq!(
            cq.record(&q, QuotaKey::ProducerByteRate, ALICE, 1e9, now),
            Duration::ZERO
        );
        assert_eq!(
            cq.record(&q, QuotaKey::ConsumerByteRate, ALICE, 1e9, now),
            Duration::ZERO
        );
        assert_eq!(cq.meters(), 0);
        assert_eq!(
            cq.max_in_window(&q, QuotaKey::ProducerByteRate, ALICE),
            None
        );
    }

    #[test]
    fn a_user_quota_is_shared_by_the_users_client_ids() {
        let q = quotas(
            &[("user", Some("alice"))],
            QuotaKey::ProducerByteRate,
            100.0,
        );
        let cq = ClientQuotas::new(Duration::from_secs(1), 11);
        let now = Instant::now();
        let other = Client {
            user: "alice",
            client_id: "other-app",
        };
        cq.record(&q, QuotaKey::ProducerByteRate, ALICE, 1000.0, now);
        assert!(cq.record(&q, QuotaKey::ProducerByteRate, other, 1000.0, now) > Duration::ZERO);
        assert_eq!(cq.meters(), 1);
        assert_eq!(
            cq.max_in_window(&q, QuotaKey::ProducerByteRate, other),
            Some(100.0)
        );
    }

    #[test]
    fn idle_meters_are_forgotten() {
        let q = quotas(&[("user", None)], QuotaKey::RequestPercentage, 50.0);
        let cq = ClientQuotas::new(Duration::from_secs(1), 11);
        let t0 = Instant::now();
        cq.record(&q, QuotaKey::RequestPercentage, ALICE, 10.0, t0);
        let bob = Client {
            user: "bob",
            client_id: "app",
        };
        cq.record(&q, QuotaKey::RequestPercentage, bob, 10.0, t0);
        assert_eq!(cq.meters(), 2);
        cq.record(
            &q,
            QuotaKey::RequestPercentage,
            bob,
            10.0,
            t0 + SWEEP_INTERVAL,
        );
        assert_eq!(cq.meters(), 1);
    }
}

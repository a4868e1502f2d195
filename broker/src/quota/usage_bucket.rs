//! A client's usage against one quota, as a token bucket (the shape Kafka's KIP-599 gave its
//! controller-mutation quota): it holds at most one quota window of allowance, refills at the
//! quota, and a request always takes what it used — the balance may go negative, and the debt
//! is how long the client must wait. A client that keeps to its quota is never throttled; one
//! that goes over is held to the quota from then on, with no window-sized bursts after a
//! pause. The quota is passed on every call (an AlterClientQuotas takes effect at once); time
//! is passed in.

use std::time::{Duration, Instant};

/// Allowance left against a quota.
#[derive(Debug, Clone)]
pub struct UsageBucket {
    /// Allowance (bytes, or percent-seconds); negative is debt.
    balance: f64,
    updated: Instant,
}

impl UsageBucket {
    /// A full bucket.
    pub fn new(limit: f64, window: Duration, now: Instant) -> UsageBucket {
        UsageBucket {
            balance: limit * window.as_secs_f64(),
            updated: now,
        }
    }

    fn refill(&mut self, limit: f64, window: Duration, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.balance = (self.balance + elapsed * limit).min(limit * window.as_secs_f64());
        self.updated = self.updated.max(now);
    }

    /// Takes `amount` at `now`.
    pub fn take(&mut self, amount: f64, limit: f64, window: Duration, now: Instant) {
        self.refill(limit, window, now);
        self.balance -= amount;
    }

    /// How long from `now` until the debt is paid (zero if there is none).
    pub fn debt_time(&mut self, limit: f64, window: Duration, now: Instant) -> Duration {
        self.refill(limit, window, now);
        if self.balance >= 0.0 || limit <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.balance / limit)
        }
    }

    /// When it was last used.
    pub fn updated(&self) -> Instant {
        self.updated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn one_window_of_allowance_then_the_quota() {
        let t0 = Instant::now();
        let mut bucket = UsageBucket::new(1000.0, SECOND, t0);
        bucket.take(1000.0, 1000.0, SECOND, t0);
        assert_eq!(bucket.debt_time(1000.0, SECOND, t0), Duration::ZERO);
        bucket.take(500.0, 1000.0, SECOND, t0);
        let wait = bucket.debt_time(1000.0, SECOND, t0);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert_eq!(bucket.debt_time(1000.0, SECOND, t0 + wait), Duration::ZERO);
    }

    #[test]
    fn a_paced_client_gets_exactly_its_quota() {
        let t0 = Instant::now();
        let mut bucket = UsageBucket::new(1000.0, SECOND, t0);
        let mut now = t0;
        let mut sent = 0.0;
        // Send 300-byte requests, each as soon as the last one's wait is over.
        while now < t0 + 100 * SECOND {
            bucket.take(300.0, 1000.0, SECOND, now);
            sent += 300.0;
            now += bucket
                .debt_time(1000.0, SECOND, now)
                .max(Duration::from_millis(1));
        }
        let rate = sent / now.duration_since(t0).as_secs_f64();
        assert!((rate - 1000.0).abs() < 20.0, "{rate}");
    }

    #[test]
    fn idle_time_banks_no_more_than_one_window() {
        let t0 = Instant::now();
        let mut bucket = UsageBucket::new(100.0, SECOND, t0);
        let later = t0 + 3600 * SECOND;
        bucket.take(300.0, 100.0, SECOND, later);
        let wait = bucket.debt_time(100.0, SECOND, later);
        assert!((wait.as_secs_f64() - 2.0).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn a_changed_quota_applies_at_once() {
        let t0 = Instant::now();
        let mut bucket = UsageBucket::new(100.0, SECOND, t0);
        bucket.take(1100.0, 100.0, SECOND, t0);
        assert_eq!(bucket.debt_time(100.0, SECOND, t0), 10 * SECOND);
        assert_eq!(bucket.debt_time(1000.0, SECOND, t0), SECOND);
    }
}

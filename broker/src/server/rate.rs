//! A token bucket: the connection-creation rate limit of KIP-612 (`max.connection.creation.rate`)
//! as a pure state machine. Time is passed in, so the limiter is tested without sleeping.
//!
//! The bucket holds at most `rate` tokens (one second of connections) and refills at `rate`
//! tokens per second. Taking a token never fails: when the bucket is empty the caller is told how
//! long to wait first, which is how Kafka's acceptor throttles (it delays the accept, it does
//! not refuse the connection).

use std::time::{Duration, Instant};

/// Tokens replenished at a fixed rate, with a burst of one second's worth.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate` connections per second (at least a burst of one).
    pub fn new(rate: u32, now: Instant) -> TokenBucket {
        let rate = f64::from(rate.max(1));
        TokenBucket {
            rate,
            capacity: rate,
            tokens: rate,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = self.updated.max(now);
    }

    /// How long from `now` until a token is available (zero if one is).
    pub fn wait_time(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    /// Takes one token at `now`; the caller has waited [`wait_time`](Self::wait_time) first.
    /// The balance may go below zero by a fraction when a token is taken early, which the next
    /// wait pays back.
    pub fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_of_one_second_then_paced() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5, t0);
        for _ in 0..5 {
            assert_eq!(bucket.wait_time(t0), Duration::ZERO);
            bucket.take(t0);
        }
        // Empty: the sixth waits one refill interval (200 ms at 5/s).
        let wait = bucket.wait_time(t0);
        assert!((wait.as_secs_f64() - 0.2).abs() < 1e-9, "{wait:?}");
        let t1 = t0 + wait;
        assert_eq!(bucket.wait_time(t1), Duration::ZERO);
        bucket.take(t1);
        assert!(bucket.wait_time(t1) > Duration::ZERO);
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(2, t0);
        let later = t0 + Duration::from_secs(60);
        let mut admitted = 0;
        while bucket.wait_time(later) == Duration::ZERO {
            bucket.take(later);
            admitted += 1;
        }
        assert_eq!(admitted, 2, "an idle minute must not bank 120 tokens");
    }

    #[test]
    fn a_burst_of_n_takes_about_n_over_rate_seconds() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, t0);
        let mut now = t0;
        for _ in 0..30 {
            now += bucket.wait_time(now);
            bucket.take(now);
        }
        // 10 from the burst, 20 more at 10/s.
        let spent = now.duration_since(t0).as_secs_f64();
        assert!((spent - 2.0).abs() < 1e-6, "{spent}");
    }

    #[test]
    fn time_going_backwards_is_ignored() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut bucket = TokenBucket::new(1, t0);
        bucket.take(t0);
        let earlier = t0 - Duration::from_millis(500);
        let wait = bucket.wait_time(earlier);
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn zero_rate_still_admits_one_per_second() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(0, t0);
        bucket.take(t0);
        assert_eq!(bucket.wait_time(t0), Duration::from_secs(1));
    }
}

//! A rate measured over a fixed number of time windows, as Kafka's `Rate` over a
//! `SampledStat` measures it: the total of the samples still current, divided by the time
//! since the oldest one began — but never by less than `samples - 1` whole windows, so a
//! client's first burst is not taken for a huge rate. Time is passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One window's total.
#[derive(Debug, Clone, Copy)]
struct Sample {
    start: Instant,
    total: f64,
}

/// Amounts recorded over the last `samples` windows of `window` each.
#[derive(Debug, Clone)]
pub struct SampledRate {
    window: Duration,
    samples: usize,
    current: VecDeque<Sample>,
}

impl SampledRate {
    pub fn new(window: Duration, samples: u32) -> SampledRate {
        SampledRate {
            window: window.max(Duration::from_millis(1)),
            samples: samples.max(2) as usize,
            current: VecDeque::new(),
        }
    }

    /// The span every sample together covers.
    pub fn span(&self) -> Duration {
        self.window * self.samples as u32
    }

    fn purge(&mut self, now: Instant) {
        let span = self.span();
        while self
            .current
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.start) >= span)
        {
            self.current.pop_front();
        }
    }

    /// Adds `amount` at `now`.
    pub fn record(&mut self, amount: f64, now: Instant) {
        self.purge(now);
        match self.current.back_mut() {
            Some(last) if now.saturating_duration_since(last.start) < self.window => {
                last.total += amount;
            }
            _ => {
                if self.current.len() == self.samples {
                    self.current.pop_front();
                }
                self.current.push_back(Sample {
                    start: now,
                    total: amount,
                });
            }
        }
    }

    /// The time the rate is measured over at `now` (Kafka's `Rate.windowSize`).
    pub fn measured_over(&mut self, now: Instant) -> Duration {
        self.purge(now);
        let elapsed = self
            .current
            .front()
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s.start));
        let minimum = self.window * (self.samples as u32 - 1);
        elapsed.max(minimum)
    }

    /// Amount per second at `now`.
    pub fn rate(&mut self, now: Instant) -> f64 {
        let over = self.measured_over(now).as_secs_f64();
        let total: f64 = self.current.iter().map(|s| s.total).sum();
        total / over
    }

    /// When the last amount was recorded, if any still counts.
    pub fn last_recorded(&self) -> Option<Instant> {
        self.current.back().map(|s| s.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_first_burst_is_spread_over_the_minimum_span() {
        let t0 = Instant::now();
        let mut rate = SampledRate::new(SECOND, 11);
        rate.record(1000.0, t0);
        // One second in, 1000 bytes over at least ten windows: 100/s, not 1000/s.
        assert!((rate.rate(t0 + SECOND) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_steady_stream_measures_its_rate() {
        let t0 = Instant::now();
        let mut rate = SampledRate::new(SECOND, 11);
        let mut now = t0;
        for _ in 0..300 {
            rate.record(50.0, now);
            now += Duration::from_millis(100);
        }
        // 500 per second, measured over the last 11 windows.
        let r = rate.rate(now);
        assert!((r - 500.0).abs() < 50.0, "{r}");
    }

    #[test]
    fn old_samples_stop_counting() {
        let t0 = Instant::now();
        let mut rate = SampledRate::new(SECOND, 11);
        rate.record(10_000.0, t0);
        assert!(rate.rate(t0 + 5 * SECOND) > 0.0);
        assert_eq!(rate.rate(t0 + 11 * SECOND), 0.0);
        assert!(rate.last_recorded().is_none());
    }

    #[test]
    fn measured_over_grows_past_the_minimum() {
        let t0 = Instant::now();
        let mut rate = SampledRate::new(SECOND, 11);
        for i in 0..11 {
            rate.record(1.0, t0 + i * SECOND);
        }
        let over = rate.measured_over(t0 + Duration::from_millis(10_500));
        assert_eq!(over, Duration::from_millis(10_500));
        let r = rate.rate(t0 + Duration::from_millis(10_500));
        assert!((r - 11.0 / 10.5).abs() < 1e-9, "{r}");
    }
}

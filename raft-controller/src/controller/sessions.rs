//! Broker sessions as the active controller sees them: when each broker last heartbeated.
//! Kept in memory only (a heartbeat is not a log write); reset whenever a node becomes the
//! controller, so every broker gets a full session timeout to reach the new one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::image::MetadataImage;

/// Last heartbeat times of brokers, as seen by this controller.
#[derive(Debug)]
pub(crate) struct SessionTracker {
    last_seen: HashMap<i32, Instant>,
    since: Instant,
}

impl SessionTracker {
    pub(crate) fn new(now: Instant) -> Self {
        SessionTracker {
            last_seen: HashMap::new(),
            since: now,
        }
    }

    /// Forgets every heartbeat: all sessions restart at `now`.
    pub(crate) fn reset(&mut self, now: Instant) {
        self.last_seen.clear();
        self.since = now;
    }

    /// Records a heartbeat (or registration) of `broker`.
    pub(crate) fn touch(&mut self, broker: i32, now: Instant) {
        self.last_seen.insert(broker, now);
    }

    /// Whether `broker` heartbeated within `timeout` of `now`.
    pub(crate) fn is_alive(&self, broker: i32, now: Instant, timeout: Duration) -> bool {
        let last = self.last_seen.get(&broker).copied().unwrap_or(self.since);
        now.saturating_duration_since(last) <= timeout
    }

    /// Unfenced brokers whose session expired, with their epochs.
    pub(crate) fn expired(
        &self,
        image: &MetadataImage,
        now: Instant,
        timeout: Duration,
    ) -> Vec<(i32, i64)> {
        image
            .live_brokers()
            .filter(|b| !self.is_alive(b.id, now, timeout))
            .map(|b| (b.id, b.epoch))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::BrokerRegistration;
    use uuid::Uuid;

    #[test]
    fn sessions_expire_and_reset() {
        let t0 = Instant::now();
        let mut image = MetadataImage::default();
        for id in [1, 2] {
            image.brokers.insert(
                id,
                BrokerRegistration {
                    id,
                    incarnation_id: Uuid::new_v4(),
                    epoch: 3,
                    rack: None,
                    endpoints: vec![],
                    fenced: false,
                    in_controlled_shutdown: false,
                    controlled_shutdown_offset: None,
                },
            );
        }
        let timeout = Duration::from_secs(9);
        let mut s = SessionTracker::new(t0);
        s.touch(1, t0 + Duration::from_secs(5));
        assert!(s
            .expired(&image, t0 + Duration::from_secs(8), timeout)
            .is_empty());
        assert_eq!(
            s.expired(&image, t0 + Duration::from_secs(10), timeout),
            vec![(2, 3)]
        );
        s.reset(t0 + Duration::from_secs(10));
        assert!(s
            .expired(&image, t0 + Duration::from_secs(15), timeout)
            .is_empty());
    }
}

//! The time a request keeps the broker busy, which `request_percentage` quotas meter: the time
//! spent inside its handler's polls (Kafka meters request-handler thread time), not the time it
//! waits for replication, a long poll or the controller.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::server::{Outcome, Pending};

/// A handler's future that also reports how long its polls took, plus `already` (the
/// synchronous part that ran before it was returned).
pub struct BusyTime {
    inner: Pending,
    busy: Duration,
}

impl BusyTime {
    pub fn new(inner: Pending, already: Duration) -> BusyTime {
        BusyTime {
            inner,
            busy: already,
        }
    }
}

impl Future for BusyTime {
    type Output = (Outcome, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let started = Instant::now();
        let polled = self.inner.as_mut().poll(cx);
        self.busy += started.elapsed();
        polled.map(|outcome| (outcome, self.busy))
    }
}

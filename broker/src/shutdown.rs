//! The broker-wide shutdown signal that listeners, connections and background tasks watch.

use tokio::sync::watch;

/// Sender side: trip it once to stop everything that listens.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// Receiver side: cheap to clone, one per task.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// A new trigger and its first receiver.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    #[cfg(any(test, feature = "kubernetes"))]
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once shutdown has been triggered (immediately if it already was).
    pub async fn wait(&mut self) {
        // An error means the trigger was dropped, which also means: stop.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn receivers_see_the_trigger() {
        let (trigger, mut a) = channel();
        let mut b = a.clone();
        assert!(!a.is_triggered());
        trigger.trigger();
        a.wait().await;
        b.wait().await;
        assert!(b.is_triggered());
    }
}

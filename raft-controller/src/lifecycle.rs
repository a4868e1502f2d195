//! The broker side of the controller protocol: register (a fresh incarnation per process),
//! heartbeat every `broker.heartbeat.interval.ms` with the applied metadata offset, get unfenced
//! once caught up, register again if the controller forgot the registration, and on request
//! perform a controlled shutdown. The loop ends when this node's quorum member stops or fails:
//! with no working metadata log the broker can neither heartbeat nor apply the leadership moves a
//! controlled shutdown waits for.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::error::{ControllerError, QuorumError};
use crate::quorum::Quorum;
use crate::requests::{BrokerHeartbeat, BrokerRegistrationRequest};

/// The broker's standing with the controller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerState {
    /// The controller accepted the registration.
    pub registered: bool,
    /// The broker epoch of that registration.
    pub broker_epoch: i64,
    /// The broker is fenced.
    pub fenced: bool,
    /// A controlled shutdown is under way.
    pub in_controlled_shutdown: bool,
}

/// How the lifecycle loop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ended {
    ShutDownCleanly,
    Stopped,
    /// This node's quorum member failed; the reason.
    QuorumFailed(String),
}

/// Handle on a running broker lifecycle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BrokerLifecycle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: watch::Sender<BrokerState>,
    want_shutdown: watch::Sender<bool>,
    ended: watch::Sender<Option<Ended>>,
    task: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl BrokerLifecycle {
    pub(crate) fn start(quorum: Quorum, registration: BrokerRegistrationRequest) -> Self {
        let inner = Arc::new(Inner {
            state: watch::Sender::new(BrokerState::default()),
            want_shutdown: watch::Sender::new(false),
            ended: watch::Sender::new(None),
            task: parking_lot::Mutex::new(None),
        });
        let task = tokio::spawn(run(quorum, registration, inner.clone()));
        *inner.task.lock() = Some(task);
        BrokerLifecycle { inner }
    }

    /// Follows the broker's state.
    pub fn state(&self) -> watch::Receiver<BrokerState> {
        self.inner.state.subscribe()
    }

    /// Controlled shutdown: heartbeats with `want_shutdown` until the controller answers
    /// `should_shut_down` (leaderships moved away) or `timeout` passes; then stops heartbeating.
    pub async fn controlled_shutdown(&self, timeout: Duration) -> Result<(), QuorumError> {
        self.inner.want_shutdown.send_replace(true);
        let mut ended = self.inner.ended.subscribe();
        let outcome = tokio::time::timeout(timeout, ended.wait_for(Option::is_some))
            .await
            .map(|end| end.map(|end| end.clone()));
        self.stop();
        match outcome {
            Ok(Ok(Some(Ended::ShutDownCleanly))) => Ok(()),
            Ok(Ok(Some(Ended::QuorumFailed(reason)))) => Err(QuorumError::Raft(reason)),
            Ok(_) => Err(QuorumError::Shutdown),
            Err(_) => Err(QuorumError::Timeout),
        }
    }

    /// Stops heartbeating at once (no controlled shutdown); the controller fences the broker
    /// when its session expires.
    pub fn stop(&self) {
        if let Some(task) = self.inner.task.lock().take() {
            task.abort();
        }
        self.inner.ended.send_if_modified(|e| {
            let unset = e.is_none();
            if unset {
                *e = Some(Ended::Stopped);
            }
            unset
        });
    }
}

async fn run(quorum: Quorum, registration: BrokerRegistrationRequest, inner: Arc<Inner>) {
    let config = quorum.config().clone();
    let interval = Duration::from_millis(config.broker_heartbeat_interval_ms);
    let attempt_timeout = Duration::from_millis(
        config
            .broker_session_timeout_ms
            .min(config.request_timeout_ms),
    );
    let broker_id = registration.broker_id;
    let mut epoch: Option<i64> = None;
    let mut reported_offset = 0u64;
    let mut images = quorum.subscribe();
    let mut want_shutdown_rx = inner.want_shutdown.subscribe();
    let mut quorum_stopped = quorum.shutdown_signal();
    let beats = async {
        loop {
            if *quorum_stopped.borrow() {
                break Ended::Stopped;
            }
            let want_shutdown = *want_shutdown_rx.borrow_and_update();
            match epoch {
                None if want_shutdown => break Ended::ShutDownCleanly,
                None => match quorum
                    .register_broker_within(registration.clone(), attempt_timeout)
                    .await
                {
                    Ok(Ok(e)) => {
                        info!(
                            broker = broker_id,
                            broker_epoch = e,
                            "broker registered with the controller"
                        );
                        epoch = Some(e);
                        inner.state.send_replace(BrokerState {
                            registered: true,
                            broker_epoch: e,
                            fenced: true,
                            in_controlled_shutdown: false,
                        });
                        continue;
                    }
                    Ok(Err(error)) => warn!(broker = broker_id, %error, "registration refused"),
                    Err(error) => debug!(broker = broker_id, %error, "registration not answered"),
                },
                Some(e) => {
                    let offset = quorum.image().offset;
                    let hb = BrokerHeartbeat {
                        broker_id,
                        broker_epoch: e,
                        current_metadata_offset: offset,
                        want_fence: false,
                        want_shutdown,
                    };
                    match quorum.broker_heartbeat_within(hb, attempt_timeout).await {
                        Ok(Ok(reply)) => {
                            reported_offset = offset;
                            let fenced = reply.is_fenced;
                            inner.state.send_if_modified(|s| {
                                let next = BrokerState {
                                    registered: true,
                                    broker_epoch: e,
                                    fenced,
                                    in_controlled_shutdown: want_shutdown
                                        && !reply.should_shut_down,
                                };
                                let changed = *s != next;
                                *s = next;
                                changed
                            });
                            if want_shutdown && reply.should_shut_down {
                                info!(broker = broker_id, "controlled shutdown complete");
                                break Ended::ShutDownCleanly;
                            }
                        }
                        Ok(Err(
                            error @ (ControllerError::StaleBrokerEpoch
                            | ControllerError::BrokerIdNotRegistered(_)),
                        )) => {
                            warn!(broker = broker_id, broker_epoch = e, %error, "registration lost, registering again");
                            epoch = None;
                            inner.state.send_modify(|s| s.registered = false);
                            continue;
                        }
                        Ok(Err(error)) => warn!(broker = broker_id, %error, "heartbeat refused"),
                        Err(error) => debug!(broker = broker_id, %error, "heartbeat not answered"),
                    }
                }
            }
            // Heartbeat again after the interval, or as soon as there is news the controller is
            // waiting for: a shutdown request, or (while fenced or shutting down) metadata applied
            // past what was last reported.
            let waiting = {
                let s = inner.state.borrow();
                s.registered && (s.fenced || s.in_controlled_shutdown)
            };
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = want_shutdown_rx.changed() => {}
                () = crate::signal::image_past(&mut images, reported_offset), if waiting => {}
                () = crate::signal::stopped(&mut quorum_stopped) => break Ended::Stopped,
            }
        }
    };
    let end = tokio::select! {
        end = beats => end,
        reason = quorum.fatal_error() => {
            warn!(broker = broker_id, %reason, "metadata quorum member failed; no more heartbeats");
            Ended::QuorumFailed(reason)
        }
    };
    inner.ended.send_replace(Some(end));
}

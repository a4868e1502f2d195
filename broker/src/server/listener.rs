//! Accept loops: one per client listener, each connection served on its own task. As in Kafka,
//! a listener accepts nothing until the broker has caught up with the metadata log (`open`): a
//! restarted broker would otherwise answer Metadata from the stale image it recovered, and
//! clients would drop brokers and leaders that are in fact alive. Before each
//! accept the loop takes a slot from the [`ConnectionQuotas`] (waiting while the listener or the
//! broker is at `max.connections`) and waits out the connection-creation rate; after it, the
//! peer's address is checked against `max.connections.per.ip`. The loop owns its connection
//! tasks: at shutdown it stops accepting, then waits (bounded by the connections' drain timeout)
//! until every connection has answered what it accepted and closed, so the broker closes its
//! logs only once no request can append any more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::authentication::ListenerAuth;
use super::connection::{self, ConnectionInfo, ConnectionLimits};
use super::quotas::{ConnectionQuotas, Slot};
use super::service::{LimitEvent, Service};
use crate::security::KafkaPrincipal;
use crate::shutdown::Shutdown;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// How long past the drain timeout a closing connection may take to write its last responses.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A bound client listener and how its connections authenticate.
#[derive(Debug)]
pub struct ClientListener {
    pub name: String,
    pub socket: TcpListener,
    pub auth: ListenerAuth,
}

/// Once `open` turns true, accepts connections on `listener` until shutdown, then waits for them
/// to finish. Connections arriving before that wait in the listen backlog.
pub async fn run<S: Service>(
    listener: ClientListener,
    service: Arc<S>,
    limits: ConnectionLimits,
    quotas: Arc<ConnectionQuotas>,
    mut open: watch::Receiver<bool>,
    mut shutdown: Shutdown,
) {
    let ClientListener {
        name,
        socket: listener,
        auth,
    } = listener;
    let local = listener.local_addr().ok();
    if !*open.borrow_and_update() {
        info!(listener = %name, address = ?local, "waiting for the metadata log to catch up before accepting connections");
        let opened = tokio::select! {
            _ = shutdown.wait() => false,
            opened = open.wait_for(|open| *open) => opened.is_ok(),
        };
        if !opened {
            info!(listener = %name, "listener stopped before it opened");
            return;
        }
    }
    info!(listener = %name, address = ?local, "accepting client connections");
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connection tasks so the set holds only open connections.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            _ = shutdown.wait() => break,
            slot = take_slot(&name, service.as_ref(), &quotas) => slot,
        };
        let throttled = tokio::select! {
            _ = shutdown.wait() => break,
            throttled = wait_for_rate(&name, &quotas) => throttled,
        };
        if !throttled.is_zero() {
            service.connection_limited(&name, LimitEvent::Throttled(throttled));
        }
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let slot = match slot.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(e) => {
                        info!(listener = %name, peer = %peer, reason = %e, "rejected connection");
                        service.connection_limited(&name, LimitEvent::RejectedPerIp);
                        drop(stream);
                        continue;
                    }
                };
                let info = ConnectionInfo {
                    id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                    peer,
                    listener: name.clone(),
                    principal: KafkaPrincipal::anonymous(),
                };
                let serve = connection::serve(
                    stream,
                    info,
                    service.clone(),
                    limits,
                    auth.clone(),
                    shutdown.clone(),
                );
                connections.spawn(async move {
                    serve.await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    let open = connections.len();
    info!(listener = %name, connections = open, "stopped accepting; draining connections");
    let drained = tokio::time::timeout(limits.drain_timeout + CLOSE_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(listener = %name, left = connections.len(), "connections still open after the drain timeout; closing them");
        connections.shutdown().await;
    }
    info!(listener = %name, connections = open, "listener stopped; connections drained");
}

/// A connection slot, waiting (and saying so) while the listener or broker is full.
async fn take_slot<S: Service>(name: &str, service: &S, quotas: &Arc<ConnectionQuotas>) -> Slot {
    if let Some(slot) = quotas.try_reserve(name) {
        return slot;
    }
    info!(listener = %name, "max.connections reached, accepting paused until a connection closes");
    let started = Instant::now();
    let slot = quotas.reserve(name).await;
    let blocked = started.elapsed();
    service.connection_limited(name, LimitEvent::Blocked(blocked));
    info!(listener = %name, blocked_ms = blocked.as_millis() as u64, "accepting resumed");
    slot
}

/// Sleeps until the creation rates allow one more connection; returns the time spent.
async fn wait_for_rate(name: &str, quotas: &ConnectionQuotas) -> Duration {
    let mut waited = Duration::ZERO;
    loop {
        let wait = quotas.throttle(name, Instant::now());
        if wait.is_zero() {
            return waited;
        }
        tokio::time::sleep(wait).await;
        waited += wait;
    }
}

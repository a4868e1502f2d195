//! Accept loops: one per client listener, each connection served on its own task. The loop
//! owns its connection tasks: at shutdown it stops accepting, then waits (bounded by the
//! connections' drain timeout) until every connection has answered what it accepted and
//! closed, so the broker closes its logs only once no request can append any more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::connection::{self, ConnectionInfo, ConnectionLimits};
use super::service::Service;
use crate::shutdown::Shutdown;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// How long past the drain timeout a closing connection may take to write its last responses.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` until shutdown, then waits for them to finish.
pub async fn run<S: Service>(
    listener: TcpListener,
    name: String,
    service: Arc<S>,
    limits: ConnectionLimits,
    mut shutdown: Shutdown,
) {
    let local = listener.local_addr().ok();
    info!(listener = %name, address = ?local, "accepting client connections");
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let info = ConnectionInfo {
                    id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                    peer,
                    listener: name.clone(),
                };
                connections.spawn(connection::serve(
                    stream,
                    info,
                    service.clone(),
                    limits,
                    shutdown.clone(),
                ));
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

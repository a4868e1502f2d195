//! Accept loops: one per client listener, each connection served on its own task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{info, warn};

use super::connection::{self, ConnectionInfo, ConnectionLimits};
use super::service::Service;
use crate::shutdown::Shutdown;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Accepts connections on `listener` until shutdown.
pub async fn run<S: Service>(
    listener: TcpListener,
    name: String,
    service: Arc<S>,
    limits: ConnectionLimits,
    mut shutdown: Shutdown,
) {
    let local = listener.local_addr().ok();
    info!(listener = %name, address = ?local, "accepting client connections");
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let info = ConnectionInfo {
                    id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                    peer,
                    listener: name.clone(),
                };
                tokio::spawn(connection::serve(
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
    info!(listener = %name, "listener stopped");
}

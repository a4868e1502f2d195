//! The HTTP endpoint for Prometheus and Kubernetes probes: `GET /metrics`, `/livez`, `/readyz`.
//!
//! A deliberately tiny HTTP/1.1 responder (one request per connection, `Connection: close`):
//! three read-only paths do not justify a web framework in the broker. Scrapes are serialised:
//! refreshing the state gauges resets and refills labelled families, and two interleaved
//! refreshes could otherwise render a half-filled family.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use raft_controller::BrokerState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::health::{readiness, refresh_gauges};
use crate::parts::Parts;
use crate::shutdown::Shutdown;

/// What the endpoint needs to answer.
#[derive(Debug, Clone)]
pub struct HealthSources {
    pub parts: Arc<Parts>,
    pub lifecycle: watch::Receiver<BrokerState>,
    pub roles_applied: watch::Receiver<bool>,
}

pub async fn serve(listener: TcpListener, sources: HealthSources, mut shutdown: Shutdown) {
    info!(address = ?listener.local_addr().ok(), "serving /metrics, /livez and /readyz");
    let scrape = Arc::new(Mutex::new(()));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let sources = sources.clone();
                let scrape = scrape.clone();
                tokio::spawn(async move {
                    if let Err(e) = tokio::time::timeout(
                        Duration::from_secs(10),
                        handle(stream, sources, scrape),
                    )
                    .await
                    {
                        debug!(error = %e, "metrics request timed out");
                    }
                });
            }
            Err(e) => {
                debug!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut stream: TcpStream, sources: HealthSources, scrape: Arc<Mutex<()>>) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 8192 {
            let _ = respond(
                &mut stream,
                431,
                "text/plain",
                "request header too large\n",
                false,
            )
            .await;
            return;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut parts = text.lines().next().unwrap_or("").split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let _ = respond(
                &mut stream,
                405,
                "text/plain",
                "method not allowed\n",
                false,
            )
            .await;
            return;
        }
    };
    let (status, content_type, body) = match path {
        "/metrics" => {
            let parts = sources.parts.clone();
            let rendered = tokio::task::spawn_blocking(move || {
                let _serial = scrape.lock();
                refresh_gauges(&parts);
                parts.metrics.render()
            })
            .await;
            match rendered {
                Ok(body) => (200, "text/plain; version=0.0.4; charset=utf-8", body),
                Err(e) => {
                    warn!(error = %e, "collecting metrics failed");
                    (500, "text/plain", "collecting metrics failed\n".to_string())
                }
            }
        }
        "/livez" => (200, "text/plain", "ok\n".to_string()),
        "/readyz" => {
            let r = readiness(&sources.parts, &sources.lifecycle, &sources.roles_applied);
            (
                if r.ready { 200 } else { 503 },
                "text/plain",
                format!("{}\n", r.reason),
            )
        }
        _ => (404, "text/plain", "not found\n".to_string()),
    };
    let _ = respond(&mut stream, status, content_type, &body, head_only).await;
}

/// Writes a response; for HEAD only its head (with the length the body would have).
async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

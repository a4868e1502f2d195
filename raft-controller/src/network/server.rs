//! The server side of the RPC layer: accepts peer connections, decodes framed requests, serves
//! each concurrently (Raft traffic to openraft, forwarded requests to the local controller), and
//! writes the answers back on the same connection.

use std::io::{self, Cursor};
use std::sync::Arc;
use std::time::Duration;

use openraft::Snapshot;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use super::frame::{self, Envelope, EnvelopeId};
use super::messages::{RpcRequest, RpcResponse};
use super::tls::RpcTls;
use crate::controller::Controller;
use crate::types::MetaRaft;

/// Serves requests addressed to this node.
#[derive(Clone)]
pub(crate) struct RpcHandler {
    raft: MetaRaft,
    controller: Arc<Controller>,
}

impl std::fmt::Debug for RpcHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcHandler").finish_non_exhaustive()
    }
}

impl RpcHandler {
    pub(crate) fn new(raft: MetaRaft, controller: Arc<Controller>) -> Self {
        RpcHandler { raft, controller }
    }

    async fn handle(&self, request: RpcRequest) -> RpcResponse {
        match request {
            RpcRequest::AppendEntries(rpc) => {
                RpcResponse::AppendEntries(self.raft.append_entries(rpc).await)
            }
            RpcRequest::Vote(rpc) => RpcResponse::Vote(self.raft.vote(rpc).await),
            RpcRequest::FullSnapshot { vote, meta, data } => {
                let snapshot = Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(data.into_bytes())),
                };
                RpcResponse::FullSnapshot(self.raft.install_full_snapshot(vote, snapshot).await)
            }
            RpcRequest::Forward {
                request,
                timeout_ms,
            } => {
                let timeout =
                    Duration::from_millis(timeout_ms.min(self.controller.request_timeout_ms()));
                RpcResponse::Forward(self.controller.handle(request, timeout).await)
            }
            RpcRequest::AddLearner { node_id, addr } => {
                RpcResponse::AddLearner(self.controller.add_learner(node_id, addr).await)
            }
        }
    }
}

/// Accepts connections on `listener` until `shutdown` turns true; then every connection and
/// in-flight request is dropped.
pub(crate) fn spawn(
    listener: TcpListener,
    handler: RpcHandler,
    tls: Option<Arc<dyn RpcTls>>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                () = crate::signal::stopped(&mut shutdown) => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        debug!(%peer, "peer connected");
                        connections.spawn(accept(stream, handler.clone(), tls.clone()));
                    }
                    Err(error) => {
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        info!("rpc server stopped");
    })
}

/// What the server makes of one frame's payload.
#[derive(Debug)]
pub(crate) enum Incoming {
    Request(Envelope<RpcRequest>),
    /// The envelope's id is readable but its body is not: answered with `BadRequest`.
    Undecodable {
        id: u64,
        error: io::Error,
    },
    /// Not even an id: the connection is closed.
    Malformed(io::Error),
}

/// Decodes a request frame's payload.
pub(crate) fn decode_request(payload: &[u8]) -> Incoming {
    match frame::decode::<RpcRequest>(payload) {
        Ok(envelope) => Incoming::Request(envelope),
        Err(error) => match serde_json::from_slice::<EnvelopeId>(payload) {
            Ok(EnvelopeId { id }) => Incoming::Undecodable { id, error },
            Err(_) => Incoming::Malformed(error),
        },
    }
}

/// How long a peer may take to complete its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sets up one accepted connection (TLS when configured) and serves it.
async fn accept(stream: TcpStream, handler: RpcHandler, tls: Option<Arc<dyn RpcTls>>) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    match tls {
        None => serve_connection(stream, peer, handler).await,
        Some(tls) => {
            let handshake = tls.acceptor().accept(stream);
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => serve_connection(stream, peer, handler).await,
                Ok(Err(error)) => {
                    info!(%peer, %error, "controller connection refused: TLS handshake failed");
                }
                Err(_) => info!(%peer, "controller connection refused: no TLS handshake in time"),
            }
        }
    }
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    peer: String,
    handler: RpcHandler,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        while let Some(frame) = rx.recv().await {
            if let Err(error) = frame::write_frame(&mut writer, &frame).await {
                debug!(%error, "write to peer failed");
                break;
            }
        }
    });
    loop {
        let payload = match frame::read_frame(&mut reader).await {
            Ok(Some(payload)) => payload,
            Ok(None) => break,
            Err(error) => {
                debug!(%peer, %error, "read from peer failed");
                break;
            }
        };
        let envelope = match decode_request(&payload) {
            Incoming::Request(envelope) => envelope,
            Incoming::Malformed(error) => {
                warn!(%peer, %error, "malformed frame, closing connection");
                break;
            }
            Incoming::Undecodable { id, error } => {
                warn!(%peer, id, %error, "undecodable request");
                let reply = RpcResponse::BadRequest(error.to_string());
                let Ok(frame) = frame::encode(id, &reply) else {
                    break;
                };
                if tx.send(frame).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let handler = handler.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            let kind = envelope.body.kind();
            let response = handler.handle(envelope.body).await;
            match frame::encode(envelope.id, &response) {
                Ok(frame) => {
                    // The connection may be gone; the peer will retry.
                    let _ = tx.send(frame).await;
                }
                Err(error) => warn!(request = kind, %error, "cannot encode response"),
            }
        });
        while tasks.try_join_next().is_some() {}
    }
}

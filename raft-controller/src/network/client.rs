//! The client side of the RPC layer: one persistent connection per peer, multiplexed by request
//! id, re-established on error, every call bounded by a timeout; and openraft's
//! `RaftNetworkFactory` / `RaftNetwork` on top of it.
//!
//! Voters are dialed at the address from `controller.quorum.voters` (this node's view, so a
//! node can reach a voter through a different name than the voter advertises); learners at the
//! address they registered in the membership.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{RPCTypes, Snapshot, Vote};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::frame::{self, Envelope};
use super::messages::{RpcRequest, RpcResponse};
use super::tls::RpcTls;
use crate::types::{Node, NodeId, TypeConfig};

/// Why an RPC got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RpcError {
    /// Could not connect.
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    /// The connection failed while the call was in flight.
    #[error("connection to {addr} failed: {reason}")]
    Io { addr: String, reason: String },
    /// No answer in time.
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
}

/// State shared between a connection's users and its reader task.
#[derive(Debug, Default)]
struct ConnShared {
    pending: parking_lot::Mutex<HashMap<u64, oneshot::Sender<RpcResponse>>>,
    closed: AtomicBool,
    /// Milliseconds since `opened` at which the last frame arrived.
    last_received_ms: AtomicU64,
}

/// One TCP connection to a peer.
/// The sending half of a peer connection, plain or TLS.
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

struct Connection {
    writer: tokio::sync::Mutex<Writer>,
    shared: Arc<ConnShared>,
    reader: JoinHandle<()>,
    opened: Instant,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("opened", &self.opened)
            .finish_non_exhaustive()
    }
}

impl Connection {
    async fn open(addr: &str, tls: Option<&dyn RpcTls>) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut read_half, write_half): (Box<dyn AsyncRead + Send + Unpin>, Writer) = match tls {
            None => {
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
            Some(tls) => {
                let invalid = |reason: String| io::Error::new(io::ErrorKind::InvalidInput, reason);
                let connector = tls.connector().ok_or_else(|| {
                    invalid("the controller listener has no truststore to check peers with".into())
                })?;
                let name = super::tls::server_name(addr).map_err(invalid)?;
                let stream = connector.connect(name, stream).await?;
                let (r, w) = tokio::io::split(stream);
                (Box::new(r), Box::new(w))
            }
        };
        let shared = Arc::new(ConnShared::default());
        let opened = Instant::now();
        let reader_shared = shared.clone();
        let peer = addr.to_string();
        let reader = tokio::spawn(async move {
            loop {
                match frame::read_frame(&mut read_half).await {
                    Ok(Some(payload)) => match frame::decode::<RpcResponse>(&payload) {
                        Ok(Envelope { id, body }) => {
                            let ms =
                                u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX);
                            reader_shared.last_received_ms.store(ms, Ordering::Relaxed);
                            if let Some(tx) = reader_shared.pending.lock().remove(&id) {
                                // The caller may have given up already; nothing to do then.
                                let _ = tx.send(body);
                            }
                        }
                        Err(error) => {
                            warn!(peer = %peer, %error, "undecodable response, closing connection");
                            break;
                        }
                    },
                    Ok(None) => break,
                    Err(error) => {
                        debug!(peer = %peer, %error, "connection read failed");
                        break;
                    }
                }
            }
            reader_shared.closed.store(true, Ordering::Relaxed);
            reader_shared.pending.lock().clear();
        });
        Ok(Connection {
            writer: tokio::sync::Mutex::new(write_half),
            shared,
            reader,
            opened,
        })
    }

    fn is_open(&self) -> bool {
        !self.shared.closed.load(Ordering::Relaxed)
    }

    /// Whether anything arrived on this connection since `since`.
    fn received_since(&self, since: Instant) -> bool {
        let since_ms = u64::try_from(since.saturating_duration_since(self.opened).as_millis())
            .unwrap_or(u64::MAX);
        self.shared.last_received_ms.load(Ordering::Relaxed) >= since_ms
    }

    fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.reader.abort();
        self.shared.pending.lock().clear();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A peer: its address and (lazily opened) connection.
#[derive(Debug)]
pub(crate) struct Peer {
    addr: String,
    tls: Option<Arc<dyn RpcTls>>,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Peer {
    fn new(addr: String, tls: Option<Arc<dyn RpcTls>>) -> Self {
        Peer {
            addr,
            tls,
            conn: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    async fn connection(&self) -> Result<Arc<Connection>, RpcError> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| c.is_open()) {
            return Ok(conn.clone());
        }
        let conn = Arc::new(
            Connection::open(&self.addr, self.tls.as_deref())
                .await
                .map_err(|source| RpcError::Connect {
                    addr: self.addr.clone(),
                    source,
                })?,
        );
        debug!(peer = %self.addr, "connected");
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn discard(&self, conn: &Arc<Connection>) {
        conn.close();
        let mut slot = self.conn.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *slot = None;
        }
    }

    /// Sends `request` and waits for its answer, at most `timeout` in all.
    pub(crate) async fn call(
        &self,
        request: &RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, RpcError> {
        let deadline = Instant::now() + timeout;
        let timed_out = || RpcError::Timeout {
            addr: self.addr.clone(),
            timeout,
        };
        let conn = tokio::time::timeout_at(deadline, self.connection())
            .await
            .map_err(|_| timed_out())??;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = frame::encode(id, request).map_err(|e| RpcError::Io {
            addr: self.addr.clone(),
            reason: e.to_string(),
        })?;
        let (tx, rx) = oneshot::channel();
        conn.shared.pending.lock().insert(id, tx);
        let sent_at = Instant::now();
        let written = tokio::time::timeout_at(deadline, async {
            let mut writer = conn.writer.lock().await;
            frame::write_frame(&mut *writer, &frame).await
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.discard(&conn).await;
                return Err(RpcError::Io {
                    addr: self.addr.clone(),
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                self.discard(&conn).await;
                return Err(timed_out());
            }
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => {
                self.discard(&conn).await;
                Err(RpcError::Io {
                    addr: self.addr.clone(),
                    reason: "connection closed".into(),
                })
            }
            Err(_) => {
                conn.shared.pending.lock().remove(&id);
                // Silence since the request left means the connection is likely dead (a
                // partition does not always close sockets); a busy peer keeps it.
                if !conn.received_since(sent_at) {
                    self.discard(&conn).await;
                }
                Err(timed_out())
            }
        }
    }

    async fn close(&self) {
        if let Some(conn) = self.conn.lock().await.take() {
            conn.close();
        }
    }
}

/// Connections to all peers of this node.
#[derive(Debug)]
pub(crate) struct PeerPool {
    voters: BTreeMap<i32, String>,
    tls: Option<Arc<dyn RpcTls>>,
    peers: parking_lot::Mutex<HashMap<NodeId, Arc<Peer>>>,
}

impl PeerPool {
    pub(crate) fn new(voters: BTreeMap<i32, String>, tls: Option<Arc<dyn RpcTls>>) -> Self {
        PeerPool {
            voters,
            tls,
            peers: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The peer `target`, dialed at its configured voter address, else at `fallback_addr`
    /// (its membership address). `None` when no address is known.
    pub(crate) fn peer(&self, target: NodeId, fallback_addr: Option<&str>) -> Option<Arc<Peer>> {
        let configured = crate::types::broker_id(target).and_then(|id| self.voters.get(&id));
        let addr = configured.map(String::as_str).or(fallback_addr)?;
        let mut peers = self.peers.lock();
        match peers.get(&target) {
            Some(peer) if peer.addr == addr => Some(peer.clone()),
            _ => {
                let peer = Arc::new(Peer::new(addr.to_string(), self.tls.clone()));
                peers.insert(target, peer.clone());
                Some(peer)
            }
        }
    }

    /// Closes every connection.
    pub(crate) async fn close_all(&self) {
        let peers: Vec<Arc<Peer>> = self.peers.lock().drain().map(|(_, p)| p).collect();
        for peer in peers {
            peer.close().await;
        }
    }
}

/// openraft's network factory over the peer pool.
#[derive(Debug, Clone)]
pub(crate) struct NetworkFactory {
    node_id: NodeId,
    pool: Arc<PeerPool>,
    backoff: Duration,
}

impl NetworkFactory {
    pub(crate) fn new(node_id: NodeId, pool: Arc<PeerPool>, backoff: Duration) -> Self {
        NetworkFactory {
            node_id,
            pool,
            backoff,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = NetworkClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> NetworkClient {
        NetworkClient {
            node_id: self.node_id,
            target,
            peer: self.pool.peer(target, Some(&node.addr)),
            backoff: self.backoff,
        }
    }
}

/// openraft's view of one peer.
#[derive(Debug)]
pub(crate) struct NetworkClient {
    node_id: NodeId,
    target: NodeId,
    peer: Option<Arc<Peer>>,
    backoff: Duration,
}

/// How a failed call looks to openraft.
enum Failure {
    Unreachable(io::Error),
    Timeout(Duration),
    Network(io::Error),
}

impl NetworkClient {
    async fn call(&self, request: RpcRequest, timeout: Duration) -> Result<RpcResponse, Failure> {
        let Some(peer) = &self.peer else {
            return Err(Failure::Unreachable(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no address known for node {}", self.target),
            )));
        };
        match peer.call(&request, timeout).await {
            Ok(RpcResponse::BadRequest(reason)) => {
                Err(Failure::Network(io::Error::other(format!(
                    "{} rejected by node {}: {reason}",
                    request.kind(),
                    self.target
                ))))
            }
            Ok(response) => Ok(response),
            Err(RpcError::Timeout { timeout, .. }) => Err(Failure::Timeout(timeout)),
            Err(e @ RpcError::Connect { .. }) => {
                Err(Failure::Unreachable(io::Error::other(e.to_string())))
            }
            Err(e @ RpcError::Io { .. }) => {
                Err(Failure::Unreachable(io::Error::other(e.to_string())))
            }
        }
    }

    fn rpc_error<E: std::error::Error>(
        &self,
        failure: Failure,
        action: RPCTypes,
    ) -> RPCError<NodeId, Node, E> {
        match failure {
            Failure::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            Failure::Network(e) => RPCError::Network(NetworkError::new(&e)),
            Failure::Timeout(timeout) => RPCError::Timeout(Timeout {
                action,
                id: self.node_id,
                target: self.target,
                timeout,
            }),
        }
    }

    fn unexpected(&self, response: &RpcResponse) -> io::Error {
        io::Error::other(format!(
            "unexpected response from node {}: {response:?}",
            self.target
        ))
    }
}

impl RaftNetwork<TypeConfig> for NetworkClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        match self
            .call(RpcRequest::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(RpcResponse::AppendEntries(result)) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(RPCError::Network(NetworkError::new(
                &self.unexpected(&other),
            ))),
            Err(failure) => Err(self.rpc_error(failure, RPCTypes::AppendEntries)),
        }
    }

    /// Chunked snapshot transfer is never used: openraft 0.9 sends snapshots through
    /// `full_snapshot`, which this network implements with a single message.
    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let e = io::Error::new(
            io::ErrorKind::Unsupported,
            "chunked snapshot transfer is not supported; snapshots are sent whole",
        );
        Err(RPCError::Network(NetworkError::new(&e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        match self.call(RpcRequest::Vote(rpc), option.hard_ttl()).await {
            Ok(RpcResponse::Vote(result)) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(RPCError::Network(NetworkError::new(
                &self.unexpected(&other),
            ))),
            Err(failure) => Err(self.rpc_error(failure, RPCTypes::Vote)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let Snapshot { meta, snapshot } = snapshot;
        let data = String::from_utf8(snapshot.into_inner()).map_err(|e| {
            StreamingError::Network(NetworkError::new(&io::Error::new(
                io::ErrorKind::InvalidData,
                e,
            )))
        })?;
        let request = RpcRequest::FullSnapshot { vote, meta, data };
        let result = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            result = self.call(request, option.hard_ttl()) => result,
        };
        match result {
            Ok(RpcResponse::FullSnapshot(result)) => {
                result.map_err(|e| StreamingError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(StreamingError::Network(NetworkError::new(
                &self.unexpected(&other),
            ))),
            Err(Failure::Unreachable(e)) => Err(StreamingError::Unreachable(Unreachable::new(&e))),
            Err(Failure::Network(e)) => Err(StreamingError::Network(NetworkError::new(&e))),
            Err(Failure::Timeout(timeout)) => Err(StreamingError::Timeout(Timeout {
                action: RPCTypes::InstallSnapshot,
                id: self.node_id,
                target: self.target,
                timeout,
            })),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.backoff))
    }
}

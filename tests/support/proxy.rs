//! A fault-injecting TCP proxy between brokers: forwards bytes until told to black-hole them,
//! which is what a network partition looks like to the brokers (requests time out; nothing is
//! refused). Healing closes the stalled connections so peers reconnect.
//!
//! A proxy can also delay every chunk it forwards (added latency), and black-hole only the
//! connections of one peer broker: it reads the client id of a connection's first Kafka request
//! (`rivulet-<role>-<node id>`, as brokers name their inter-broker clients) to tell who is
//! connecting, which is how a single replication listener is cut from one peer but not another.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug)]
struct State {
    blocked: AtomicBool,
    /// Node ids whose connections are black-holed (identified by their first request).
    blocked_peers: Mutex<BTreeSet<i32>>,
    /// Added one-way latency per forwarded chunk, in milliseconds.
    delay_ms: AtomicU64,
    /// Whether connections carry Kafka requests whose first client id names the peer.
    kafka: bool,
    /// Bumped on every block/heal, so connections from an earlier period are torn down.
    epoch: AtomicU64,
    changes: watch::Sender<u64>,
}

impl State {
    fn is_blocked(&self, peer: Option<i32>) -> bool {
        self.blocked.load(Ordering::SeqCst)
            || peer.is_some_and(|p| self.blocked_peers.lock().expect("peers").contains(&p))
    }

    fn changed(&self) {
        let e = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.changes.send_replace(e);
    }
}

/// Handle to one proxy; cheap to clone.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub listen: SocketAddr,
    state: Arc<State>,
}

impl Proxy {
    /// Starts a proxy on `listen_ip` (any free port) forwarding to `target`.
    pub fn start(rt: &tokio::runtime::Handle, listen_ip: &str, target: SocketAddr) -> Proxy {
        Proxy::spawn(rt, listen_ip, target, false)
    }

    /// A proxy in front of a Kafka listener, able to black-hole one peer broker (`block_peer`).
    pub fn start_kafka(rt: &tokio::runtime::Handle, listen_ip: &str, target: SocketAddr) -> Proxy {
        Proxy::spawn(rt, listen_ip, target, true)
    }

    fn spawn(
        rt: &tokio::runtime::Handle,
        listen_ip: &str,
        target: SocketAddr,
        kafka: bool,
    ) -> Proxy {
        let listener = std::net::TcpListener::bind(format!("{listen_ip}:0")).expect("bind proxy");
        listener
            .set_nonblocking(true)
            .expect("nonblocking proxy socket");
        let listen = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            blocked: AtomicBool::new(false),
            blocked_peers: Mutex::new(BTreeSet::new()),
            delay_ms: AtomicU64::new(0),
            kafka,
            epoch: AtomicU64::new(0),
            changes: watch::channel(0).0,
        });
        let s = state.clone();
        rt.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("proxy listener");
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move { serve(client, target, s).await });
            }
        });
        Proxy { listen, state }
    }

    /// Black-holes traffic (existing connections stall, new ones are accepted and ignored).
    pub fn block(&self) {
        self.state.blocked.store(true, Ordering::SeqCst);
        self.state.changed();
    }

    /// Black-holes only the Kafka connections opened by broker `node` (see the module comment);
    /// for proxies started with `start_kafka`.
    pub fn block_peer(&self, node: i32) {
        assert!(
            self.state.kafka,
            "block_peer needs a proxy started with start_kafka"
        );
        self.state.blocked_peers.lock().expect("peers").insert(node);
        self.state.changed();
    }

    /// Lets traffic through again (also from every peer blocked on its own); stalled
    /// connections are closed.
    pub fn heal(&self) {
        self.state.blocked.store(false, Ordering::SeqCst);
        self.state.blocked_peers.lock().expect("peers").clear();
        self.state.changed();
    }

    /// Delays every forwarded chunk by `delay` in each direction (zero: no added latency).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }
}

/// Reads the start of a Kafka connection's first request (size, api key, api version,
/// correlation id, client id) and returns those bytes with the broker id the client id names.
async fn read_first_request_header(
    client: &mut TcpStream,
) -> std::io::Result<(Vec<u8>, Option<i32>)> {
    let mut head = vec![0u8; 14];
    client.read_exact(&mut head).await?;
    let len = i16::from_be_bytes([head[12], head[13]]);
    let mut id = vec![0u8; usize::try_from(len).unwrap_or(0)];
    client.read_exact(&mut id).await?;
    let peer = std::str::from_utf8(&id)
        .ok()
        .filter(|s| s.starts_with("rivulet-"))
        .and_then(|s| s.rsplit('-').next())
        .and_then(|n| n.parse().ok());
    head.extend_from_slice(&id);
    Ok((head, peer))
}

async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    state: &State,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let delay = state.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        to.write_all(&buf[..n]).await?;
    }
}

async fn serve(mut client: TcpStream, target: SocketAddr, state: Arc<State>) {
    let mut changes = state.changes.subscribe();
    let epoch = state.epoch.load(Ordering::SeqCst);
    if state.is_blocked(None) {
        // Hold the connection silently until the partition heals, then drop it.
        let _ = changes.wait_for(|e| *e != epoch).await;
        return;
    }
    let (first, peer) = if state.kafka {
        tokio::select! {
            read = read_first_request_header(&mut client) => match read {
                Ok(read) => read,
                Err(_) => return,
            },
            _ = changes.wait_for(|e| *e != epoch) => return,
        }
    } else {
        (Vec::new(), None)
    };
    if state.is_blocked(peer) {
        let _ = changes.wait_for(|e| *e != epoch).await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if upstream.write_all(&first).await.is_err() {
        return;
    }
    let (cr, cw) = client.split();
    let (ur, uw) = upstream.split();
    let both = async {
        tokio::select! {
            _ = pump(cr, uw, &state) => {},
            _ = pump(ur, cw, &state) => {},
        }
    };
    let changed = tokio::select! {
        _ = both => false,
        _ = changes.wait_for(|e| *e != epoch) => true,
    };
    // Blocked now: keep both sockets open but silent until healed, then close them.
    if changed && state.is_blocked(peer) {
        let now = *changes.borrow();
        let _ = changes.wait_for(|e| *e != now).await;
    }
}

//! A fault-injecting TCP proxy between brokers: forwards bytes until told to black-hole them,
//! which is what a network partition looks like to the brokers (requests time out; nothing is
//! refused). Healing closes the stalled connections so peers reconnect.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug)]
struct State {
    blocked: AtomicBool,
    /// Bumped on every block/heal, so connections from an earlier period are torn down.
    epoch: AtomicU64,
    changes: watch::Sender<u64>,
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
        let listener = std::net::TcpListener::bind(format!("{listen_ip}:0")).expect("bind proxy");
        listener
            .set_nonblocking(true)
            .expect("nonblocking proxy socket");
        let listen = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            blocked: AtomicBool::new(false),
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
        let e = self.state.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.state.changes.send_replace(e);
    }

    /// Lets traffic through again; stalled connections are closed.
    pub fn heal(&self) {
        self.state.blocked.store(false, Ordering::SeqCst);
        let e = self.state.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.state.changes.send_replace(e);
    }
}

async fn serve(mut client: TcpStream, target: SocketAddr, state: Arc<State>) {
    let mut changes = state.changes.subscribe();
    let epoch = state.epoch.load(Ordering::SeqCst);
    if state.blocked.load(Ordering::SeqCst) {
        // Hold the connection silently until the partition heals, then drop it.
        let _ = changes.wait_for(|e| *e != epoch).await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let pump = async {
        let a = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = cr.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                uw.write_all(&buf[..n]).await?;
            }
        };
        let b = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = ur.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                cw.write_all(&buf[..n]).await?;
            }
        };
        tokio::select! {
            _ = a => {},
            _ = b => {},
        }
    };
    let changed = tokio::select! {
        _ = pump => false,
        _ = changes.wait_for(|e| *e != epoch) => true,
    };
    // Blocked now: keep both sockets open but silent until healed, then close them.
    if changed && state.blocked.load(Ordering::SeqCst) {
        let now = *changes.borrow();
        let _ = changes.wait_for(|e| *e != now).await;
    }
}

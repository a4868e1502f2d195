//! Shared test support: in-process quorum clusters over real loopback TCP. Every directed pair
//! of nodes talks through its own small TCP proxy (each node's voter map points at proxies), so
//! a test can cut a node off the network by closing and refusing its proxies, and heal it again.
// Each test binary uses part of this module; failures here are test failures, so panicking
// on them is intended.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use raft_controller::{
    BrokerLifecycle, BrokerRegistrationRequest, Endpoint, MetadataImage, Quorum, QuorumConfig,
};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

/// Installs a log subscriber honouring `RUST_LOG` (once per test binary).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Polls `check` every 20ms until it returns true; panics after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy forwarding to one node; can be cut (existing connections closed, new ones
/// refused) and healed.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    accept: JoinHandle<()>,
}

struct ProxyState {
    target: parking_lot::Mutex<Option<SocketAddr>>,
    cut: AtomicBool,
    links: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState {
            target: parking_lot::Mutex::new(None),
            cut: AtomicBool::new(false),
            links: parking_lot::Mutex::new(Vec::new()),
        });
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let target = *accept_state.target.lock();
                let Some(target) = target.filter(|_| !accept_state.cut.load(Ordering::SeqCst))
                else {
                    drop(inbound);
                    continue;
                };
                let link = tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                let mut links = accept_state.links.lock();
                links.retain(|l| !l.is_finished());
                links.push(link);
            }
        });
        Proxy {
            addr,
            state,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_target(&self, target: SocketAddr) {
        *self.state.target.lock() = Some(target);
    }

    /// Closes every proxied connection and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        for link in self.state.links.lock().drain(..) {
            link.abort();
        }
    }

    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Test-friendly timings: fast elections and sessions, generous request timeouts.
pub fn fast_timings(c: &mut QuorumConfig) {
    c.heartbeat_interval_ms = 100;
    c.election_timeout_min_ms = 600;
    c.election_timeout_max_ms = 1200;
    c.broker_session_timeout_ms = 2000;
    c.broker_heartbeat_interval_ms = 300;
    c.request_timeout_ms = 15_000;
    c.leader_imbalance_check_interval_ms = None;
}

/// One node of a test cluster.
pub struct TestNode {
    pub config: QuorumConfig,
    pub quorum: Option<Quorum>,
    pub lifecycle: Option<BrokerLifecycle>,
    /// Where others (and the membership) reach this node.
    pub inbound: Proxy,
    _dir: TempDir,
}

/// An in-process cluster: `voters` voters (ids 0..voters) and learners added later.
pub struct Cluster {
    pub nodes: BTreeMap<i32, TestNode>,
    pub voters: Vec<i32>,
    /// Proxy used by node `from` to reach node `to`.
    links: BTreeMap<(i32, i32), Proxy>,
    tune: Arc<dyn Fn(&mut QuorumConfig) + Send + Sync>,
}

impl Cluster {
    /// Starts `voters` voters with `fast_timings` then `tune` applied.
    pub async fn start(
        voters: i32,
        tune: impl Fn(&mut QuorumConfig) + Send + Sync + 'static,
    ) -> Cluster {
        init_tracing();
        let mut cluster = Cluster {
            nodes: BTreeMap::new(),
            voters: (0..voters).collect(),
            links: BTreeMap::new(),
            tune: Arc::new(tune),
        };
        for id in 0..voters {
            cluster.add_node(id).await;
        }
        for id in 0..voters {
            cluster.start_node(id).await;
        }
        cluster
    }

    /// Creates the proxies and configuration of node `id` (a learner unless it is a voter).
    pub async fn add_node(&mut self, id: i32) {
        let others: Vec<i32> = self.voters.iter().copied().filter(|v| *v != id).collect();
        for v in &others {
            let proxy = Proxy::start().await;
            if let Some(target) = self.nodes.get(v).filter(|n| n.quorum.is_some()) {
                proxy.set_target(target.config.listen_addr);
            }
            self.links.insert((id, *v), proxy);
        }
        let inbound = Proxy::start().await;
        let mut voters: BTreeMap<i32, String> = BTreeMap::new();
        for v in &self.voters {
            let addr = if *v == id {
                inbound.addr()
            } else {
                self.links[&(id, *v)].addr()
            };
            voters.insert(*v, addr.to_string());
        }
        let dir = tempfile::tempdir().unwrap();
        let mut config = QuorumConfig::new(
            id,
            "127.0.0.1:0".parse().unwrap(),
            inbound.addr().to_string(),
            voters,
            dir.path().join("meta"),
        );
        fast_timings(&mut config);
        (self.tune)(&mut config);
        self.nodes.insert(
            id,
            TestNode {
                config,
                quorum: None,
                lifecycle: None,
                inbound,
                _dir: dir,
            },
        );
    }

    /// Starts (or restarts, on the same data directory and port) node `id`.
    pub async fn start_node(&mut self, id: i32) {
        let node = self.nodes.get_mut(&id).expect("unknown node");
        assert!(node.quorum.is_none(), "node {id} is already running");
        let quorum = Quorum::start(node.config.clone())
            .await
            .expect("quorum start");
        let addr = quorum.local_addr();
        node.config.listen_addr = addr;
        node.inbound.set_target(addr);
        for ((_, to), proxy) in &self.links {
            if *to == id {
                proxy.set_target(addr);
            }
        }
        node.quorum = Some(quorum);
    }

    /// Shuts node `id` down (its broker lifecycle stops heartbeating with it).
    pub async fn stop_node(&mut self, id: i32) {
        let node = self.nodes.get_mut(&id).expect("unknown node");
        if let Some(lifecycle) = node.lifecycle.take() {
            lifecycle.stop();
        }
        if let Some(quorum) = node.quorum.take() {
            quorum.shutdown().await.expect("shutdown");
        }
    }

    pub fn quorum(&self, id: i32) -> &Quorum {
        self.nodes[&id]
            .quorum
            .as_ref()
            .expect("node is not running")
    }

    pub fn running(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.quorum.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Waits until every running node in `among` knows the same active controller.
    pub async fn leader_among(&self, among: &[i32], timeout: Duration) -> i32 {
        let mut agreed = None;
        eventually("an agreed leader", timeout, || {
            let leaders: Vec<Option<i32>> = among
                .iter()
                .map(|id| self.quorum(*id).status().leader)
                .collect();
            agreed = leaders[0].filter(|l| leaders.iter().all(|x| *x == Some(*l)));
            agreed.is_some_and(|l| among.contains(&l) && self.quorum(l).is_controller())
        })
        .await;
        agreed.unwrap()
    }

    /// Waits until all running nodes agree on an active controller.
    pub async fn leader(&self, timeout: Duration) -> i32 {
        self.leader_among(&self.running(), timeout).await
    }

    /// Cuts node `id` off: all its links in both directions and its inbound proxy.
    pub fn isolate(&self, id: i32) {
        for ((from, to), proxy) in &self.links {
            if *from == id || *to == id {
                proxy.cut();
            }
        }
        self.nodes[&id].inbound.cut();
    }

    pub fn heal(&self, id: i32) {
        for ((from, to), proxy) in &self.links {
            if *from == id || *to == id {
                proxy.heal();
            }
        }
        self.nodes[&id].inbound.heal();
    }

    /// Starts the broker lifecycle of broker `id` on node `id`.
    pub fn start_broker(&mut self, id: i32, rack: Option<&str>) -> BrokerLifecycle {
        let quorum = self.quorum(id).clone();
        let lifecycle = quorum.start_broker_lifecycle(registration(id, rack));
        self.nodes.get_mut(&id).unwrap().lifecycle = Some(lifecycle.clone());
        lifecycle
    }

    pub async fn shutdown(mut self) {
        for id in self.running() {
            self.stop_node(id).await;
        }
    }
}

/// A registration of broker `id` with a fresh incarnation.
pub fn registration(id: i32, rack: Option<&str>) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        broker_id: id,
        incarnation_id: Uuid::new_v4(),
        rack: rack.map(str::to_string),
        endpoints: vec![Endpoint {
            listener: "PLAINTEXT".into(),
            host: format!("broker-{id}"),
            port: 9092,
            security_protocol: "PLAINTEXT".into(),
        }],
    }
}

/// The image without its log offset, for comparing content across nodes.
pub fn content(image: &MetadataImage) -> MetadataImage {
    let mut image = image.clone();
    image.offset = 0;
    image
}

/// Registers broker `id` directly and heartbeats it until unfenced; returns its epoch.
pub async fn register_unfenced(quorum: &Quorum, id: i32, rack: Option<&str>) -> i64 {
    let epoch = quorum
        .register_broker(registration(id, rack))
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hb = raft_controller::BrokerHeartbeat {
            broker_id: id,
            broker_epoch: epoch,
            current_metadata_offset: quorum.image().offset,
            want_fence: false,
            want_shutdown: false,
        };
        let reply = quorum.broker_heartbeat(hb).await.unwrap().unwrap();
        if !reply.is_fenced {
            return epoch;
        }
        assert!(Instant::now() < deadline, "broker {id} not unfenced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

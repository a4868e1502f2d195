//! A cluster of real `rivulet` processes on 127.0.0.x loopback addresses, each with its own data
//! dir and rack, that tests can kill -9, pause (SIGSTOP/SIGCONT), terminate (SIGTERM, controlled
//! shutdown), restart, and cut off from the other brokers.
//!
//! With `ClusterOptions::data_dir_size`, each broker's data dir is a tmpfs of that size (needs
//! root), so a test can fill a broker's disk (`Cluster::fill_disk`) and free it again.
//!
//! Brokers reach each other only through proxies: each broker's voter list names, for every other
//! voter, a proxy dedicated to that direction, and the replication listener each broker
//! advertises is a proxy in front of it. Cutting broker X off black-holes every proxy into and
//! out of X, while clients keep talking to X's client listener directly.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::proxy::Proxy;

static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

/// The proxies' runtime, on a thread of its own so the fixture works from sync and async tests
/// alike and can be dropped anywhere.
#[derive(Debug)]
struct ProxyRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ProxyRuntime {
    fn start() -> ProxyRuntime {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            handle_tx.send(rt.handle().clone()).expect("handle");
            rt.block_on(async {
                let _ = stop_rx.await;
            });
            rt.shutdown_background();
        });
        ProxyRuntime {
            handle: handle_rx.recv().expect("proxy runtime handle"),
            stop: Some(stop_tx),
        }
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for ProxyRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Settings for a test cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub brokers: usize,
    pub racks: Vec<String>,
    /// Extra broker properties for every broker.
    pub properties: Vec<(String, String)>,
    /// Extra environment variables for every broker process.
    pub env: Vec<(String, String)>,
    /// Mount a tmpfs of this many bytes at each broker's data dir (requires root).
    pub data_dir_size: Option<u64>,
    /// Names of client listeners besides CLIENT and REPLICATION (each broker gets a port for
    /// each); their security comes from `properties`.
    pub listeners: Vec<String>,
    /// Secures the internal (REPLICATION, CONTROLLER) listeners: called with every broker's
    /// IP address and the cluster's directory once they are known, it writes certificates
    /// there and returns the properties that use them (see [`ClusterOptions::internal_tls`]).
    pub internal_tls: Option<InternalTls>,
}

/// Writes certificates for the brokers at these addresses into the directory; the properties
/// that configure them.
pub type InternalTls = fn(&[String], &Path) -> Vec<(String, String)>;

impl ClusterOptions {
    pub fn new(brokers: usize) -> ClusterOptions {
        ClusterOptions {
            brokers,
            racks: vec!["a".into(), "b".into(), "c".into()],
            properties: Vec::new(),
            env: Vec::new(),
            data_dir_size: None,
            listeners: Vec::new(),
            internal_tls: None,
        }
    }

    /// Runs the internal listeners over TLS set up by `setup`. The replication proxies then
    /// forward bytes without reading them ([`Proxy::block_peer`] is unavailable).
    pub fn internal_tls(mut self, setup: InternalTls) -> ClusterOptions {
        self.internal_tls = Some(setup);
        self
    }

    /// Adds a client listener named `name` on every broker (see [`Cluster::listener_address`]).
    pub fn listener(mut self, name: &str) -> ClusterOptions {
        self.listeners.push(name.to_string());
        self
    }

    /// Gives each broker a size-limited data dir: a tmpfs of `bytes` mounted at it. The test
    /// panics at start-up if it cannot mount (not root, no tmpfs) rather than run without.
    pub fn data_dir_size(mut self, bytes: u64) -> ClusterOptions {
        self.data_dir_size = Some(bytes);
        self
    }

    pub fn property(mut self, key: &str, value: impl ToString) -> ClusterOptions {
        self.properties.push((key.to_string(), value.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> ClusterOptions {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

#[derive(Debug)]
struct BrokerSlot {
    id: i32,
    ip: String,
    client: SocketAddr,
    replication: SocketAddr,
    controller: SocketAddr,
    metrics: SocketAddr,
    /// The extra listeners of `ClusterOptions::listeners`, by name.
    extra: Vec<(String, SocketAddr)>,
    dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// Proxy in front of this broker's replication listener (what it advertises).
    replication_proxy: Proxy,
    /// The tmpfs at the data dir, when the data dir is size-limited.
    mount: Option<TmpfsMount>,
}

/// A tmpfs mounted at a directory; unmounted when dropped (also while a test panics).
#[derive(Debug)]
struct TmpfsMount {
    dir: PathBuf,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `bytes` at `dir`, panicking with the reason if that is not possible.
    fn mount(dir: &Path, bytes: u64) -> TmpfsMount {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert!(
            euid == 0,
            "ClusterOptions::data_dir_size needs root to mount a tmpfs at {} (running as uid {euid})",
            dir.display()
        );
        std::fs::create_dir_all(dir).expect("data dir");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes}"))
            .arg("tmpfs")
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "mount -t tmpfs -o size={bytes} tmpfs {} failed ({}): {}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        TmpfsMount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let status = Command::new("umount").arg(&self.dir).status();
        if !matches!(status, Ok(s) if s.success()) {
            // Something still holds it open: detach it now, the kernel frees it when released.
            let lazy = Command::new("umount").arg("-l").arg(&self.dir).status();
            if !matches!(lazy, Ok(s) if s.success()) {
                eprintln!("could not unmount the tmpfs at {}", self.dir.display());
            }
        }
    }
}

/// Name of the file `Cluster::fill_disk` writes into a broker's data dir.
const BALLAST: &str = "ballast.fill";

/// The running cluster; dropping it kills every broker.
#[derive(Debug)]
pub struct Cluster {
    brokers: Vec<BrokerSlot>,
    /// (from, to) -> proxy carrying `from`'s Raft traffic to `to`.
    raft_proxies: HashMap<(i32, i32), Proxy>,
    _runtime: ProxyRuntime,
    _dir: tempfile::TempDir,
    pub options: ClusterOptions,
    /// Properties of every broker made by [`ClusterOptions::internal_tls`].
    tls_properties: Vec<(String, String)>,
}

/// A free port on `ip`, kept bound in `reserved` until the brokers start, so that no proxy
/// or other allocation of this fixture is handed the same port meanwhile.
fn free_port(ip: &str, reserved: &mut Vec<TcpListener>) -> SocketAddr {
    let listener = TcpListener::bind(format!("{ip}:0")).expect("a free port");
    let addr = listener.local_addr().expect("a free port");
    reserved.push(listener);
    addr
}

/// Spawns `command` from a thread that lives as long as the test process, with the child set to
/// die with that thread (PR_SET_PDEATHSIG): no broker outlives a test run, even one killed hard.
fn spawn_tied(mut command: Command) -> Child {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    use std::sync::{Mutex, OnceLock};
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    // SAFETY: prctl is async-signal-safe and only affects the child being created.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .expect("spawner")
        .send((command, tx))
        .expect("spawner alive");
    rx.recv().expect("spawner reply").expect("spawn rivulet")
}

/// The broker binary: `RIVULET_BINARY` if set (a private copy, safe from concurrent rebuilds),
/// else the one cargo built for this test.
fn binary() -> PathBuf {
    std::env::var_os("RIVULET_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rivulet")))
}

impl Cluster {
    /// Starts `options.brokers` brokers and waits until all are registered and unfenced.
    pub fn start(options: ClusterOptions) -> Cluster {
        let runtime = ProxyRuntime::start();
        let dir = tempfile::tempdir().expect("temp dir");
        // Each cluster gets its own block of loopback addresses.
        let subnet = NEXT_SUBNET.fetch_add(1, Ordering::SeqCst);
        let base = 10 + (subnet % 40) * 5;
        let mut brokers = Vec::new();
        let mut reserved = Vec::new();
        for i in 0..options.brokers {
            let ip = format!("127.0.{}.{}", 1 + subnet / 40, base + i as u32);
            let replication = free_port(&ip, &mut reserved);
            let replication_proxy = if options.internal_tls.is_some() {
                Proxy::start(runtime.handle(), &ip, replication)
            } else {
                Proxy::start_kafka(runtime.handle(), &ip, replication)
            };
            let broker_dir = dir.path().join(format!("broker-{i}"));
            std::fs::create_dir_all(&broker_dir).expect("broker dir");
            let mount = options
                .data_dir_size
                .map(|bytes| TmpfsMount::mount(&broker_dir.join("data"), bytes));
            brokers.push(BrokerSlot {
                id: i as i32,
                client: free_port(&ip, &mut reserved),
                replication,
                controller: free_port(&ip, &mut reserved),
                metrics: free_port(&ip, &mut reserved),
                extra: options
                    .listeners
                    .iter()
                    .map(|name| (name.clone(), free_port(&ip, &mut reserved)))
                    .collect(),
                config_path: broker_dir.join("server.properties"),
                log_path: broker_dir.join("broker.log"),
                dir: broker_dir,
                ip,
                child: None,
                replication_proxy,
                mount,
            });
        }
        let mut raft_proxies = HashMap::new();
        for from in &brokers {
            for to in &brokers {
                if from.id != to.id {
                    let p = Proxy::start(runtime.handle(), &from.ip, to.controller);
                    raft_proxies.insert((from.id, to.id), p);
                }
            }
        }
        // Every port and proxy is allocated: release the reservations for the brokers to bind.
        drop(reserved);
        let ips: Vec<String> = brokers.iter().map(|b| b.ip.clone()).collect();
        let tls_properties = options
            .internal_tls
            .map(|setup| setup(&ips, dir.path()))
            .unwrap_or_default();
        let mut cluster = Cluster {
            brokers,
            raft_proxies,
            _runtime: runtime,
            _dir: dir,
            options,
            tls_properties,
        };
        for i in 0..cluster.brokers.len() {
            cluster.write_config(i);
            cluster.spawn(i);
        }
        for i in 0..cluster.brokers.len() {
            cluster.wait_ready(i, Duration::from_secs(60));
        }
        cluster
    }

    fn write_config(&self, i: usize) {
        let b = &self.brokers[i];
        let voters: Vec<String> = self
            .brokers
            .iter()
            .map(|v| {
                if v.id == b.id {
                    format!("{}@{}", v.id, v.controller)
                } else {
                    format!("{}@{}", v.id, self.raft_proxies[&(b.id, v.id)].listen)
                }
            })
            .collect();
        let rack = &self.options.racks[i % self.options.racks.len()];
        let extra: String = b
            .extra
            .iter()
            .map(|(name, address)| format!(",{name}://{address}"))
            .collect();
        let mut text = format!(
            "node.id={id}\n\
             listeners=CLIENT://{client},REPLICATION://{repl},CONTROLLER://{ctl}{extra}\n\
             advertised.listeners=CLIENT://{client},REPLICATION://{repl_proxy}{extra}\n\
             inter.broker.listener.name=REPLICATION\n\
             controller.listener.names=CONTROLLER\n\
             controller.quorum.voters={voters}\n\
             broker.rack={rack}\n\
             log.dirs={data}\n\
             metrics.listener={metrics}\n\
             controller.quorum.election.timeout.ms=1000\n\
             controller.quorum.heartbeat.interval.ms=200\n\
             broker.session.timeout.ms=3000\n\
             broker.heartbeat.interval.ms=300\n\
             replica.lag.time.max.ms=4000\n\
             replica.fetch.backoff.ms=100\n\
             group.initial.rebalance.delay.ms=0\n\
             offsets.topic.num.partitions=6\n\
             controlled.shutdown.timeout.ms=15000\n",
            id = b.id,
            client = b.client,
            repl = b.replication,
            ctl = b.controller,
            repl_proxy = b.replication_proxy.listen,
            voters = voters.join(","),
            data = b.dir.join("data").display(),
            metrics = b.metrics,
        );
        for (k, v) in self.options.properties.iter().chain(&self.tls_properties) {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(&b.config_path, text).expect("write config");
    }

    fn spawn(&mut self, i: usize) {
        let b = &mut self.brokers[i];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&b.log_path)
            .expect("log file");
        let mut command = Command::new(binary());
        command
            .arg("--config")
            .arg(&b.config_path)
            .env(
                "RUST_LOG",
                std::env::var("RIVULET_TEST_LOG")
                    .unwrap_or_else(|_| "info,openraft=error".to_string()),
            )
            .env_remove("KUBERNETES_SERVICE_HOST")
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        b.child = Some(spawn_tied(command));
    }

    pub fn len(&self) -> usize {
        self.brokers.len()
    }

    /// bootstrap.servers for clients.
    pub fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .map(|b| b.client.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn client_address(&self, i: usize) -> SocketAddr {
        self.brokers[i].client
    }

    /// Broker `i`'s replication (inter-broker) listener itself, not the proxy it advertises.
    /// Where broker `i` serves the extra listener `name`.
    pub fn listener_address(&self, i: usize, name: &str) -> SocketAddr {
        self.brokers[i]
            .extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, address)| *address)
            .unwrap_or_else(|| panic!("no listener {name} (add it with ClusterOptions::listener)"))
    }

    pub fn replication_address(&self, i: usize) -> SocketAddr {
        self.brokers[i].replication
    }

    /// Where broker `i` serves the metadata quorum (its CONTROLLER listener).
    pub fn controller_address(&self, i: usize) -> SocketAddr {
        self.brokers[i].controller
    }

    /// A property made by [`ClusterOptions::internal_tls`].
    pub fn tls_property(&self, key: &str) -> Option<&str> {
        self.tls_properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn rack(&self, i: usize) -> String {
        self.options.racks[i % self.options.racks.len()].clone()
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.brokers[i].child.as_ref().map(|c| c.id())
    }

    fn signal(&self, i: usize, sig: libc::c_int) {
        if let Some(pid) = self.pid(i) {
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(pid as libc::pid_t, sig);
            }
        }
    }

    /// kill -9.
    pub fn kill(&mut self, i: usize) {
        self.signal(i, libc::SIGKILL);
        if let Some(mut c) = self.brokers[i].child.take() {
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process freezes, its sockets stay open.
    pub fn pause(&self, i: usize) {
        self.signal(i, libc::SIGSTOP);
    }

    pub fn resume(&self, i: usize) {
        self.signal(i, libc::SIGCONT);
    }

    /// SIGTERM and wait for the process to exit (controlled shutdown).
    pub fn terminate(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        self.signal(i, libc::SIGTERM);
        let mut child = self.brokers[i].child.take()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a stopped broker again with the same config and data.
    pub fn restart(&mut self, i: usize) {
        if self.brokers[i].child.is_some() {
            self.kill(i);
        }
        self.spawn(i);
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        match self.brokers[i].child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// How broker `i`'s process stands, as `try_wait` reports it: for a failure message.
    pub fn process_state(&mut self, i: usize) -> String {
        match self.brokers[i].child.as_mut().map(|c| c.try_wait()) {
            None => "no process".to_string(),
            Some(Ok(None)) => "running".to_string(),
            Some(Ok(Some(status))) => format!("exited: {status}"),
            Some(Err(e)) => format!("try_wait failed: {e}"),
        }
    }

    /// Cuts broker `i` off from the other brokers (clients can still reach it).
    pub fn isolate(&self, i: usize) {
        let id = i as i32;
        for ((from, to), p) in &self.raft_proxies {
            if *from == id || *to == id {
                p.block();
            }
        }
        self.brokers[i].replication_proxy.block();
    }

    pub fn heal(&self, i: usize) {
        let id = i as i32;
        for ((from, to), p) in &self.raft_proxies {
            if *from == id || *to == id {
                p.heal();
            }
        }
        self.brokers[i].replication_proxy.heal();
    }

    /// Cuts brokers `a` and `b` off from each other only: both still reach every other broker
    /// (with a third broker, a bridge partition).
    pub fn cut(&self, a: usize, b: usize) {
        let (ia, ib) = (a as i32, b as i32);
        self.raft_proxies[&(ia, ib)].block();
        self.raft_proxies[&(ib, ia)].block();
        self.brokers[a].replication_proxy.block_peer(ib);
        self.brokers[b].replication_proxy.block_peer(ia);
    }

    /// Adds `delay` to every chunk on the proxies into and out of broker `i` (its Raft traffic
    /// both ways, and what followers fetch from it); zero removes it.
    pub fn set_latency(&self, i: usize, delay: Duration) {
        let id = i as i32;
        for ((from, to), p) in &self.raft_proxies {
            if *from == id || *to == id {
                p.set_delay(delay);
            }
        }
        self.brokers[i].replication_proxy.set_delay(delay);
    }

    /// Undoes every network fault: all proxies pass traffic again without added latency.
    pub fn heal_all(&self) {
        for p in self.raft_proxies.values() {
            p.heal();
            p.set_delay(Duration::ZERO);
        }
        for b in &self.brokers {
            b.replication_proxy.heal();
            b.replication_proxy.set_delay(Duration::ZERO);
        }
    }

    /// The broker among `among` whose metrics report it as the active controller, if exactly
    /// one does (leave paused brokers out: their HTTP endpoint does not answer).
    pub fn active_controller(&self, among: &[usize]) -> Option<usize> {
        let active: Vec<usize> = among
            .iter()
            .copied()
            .filter(|i| {
                self.metric(*i, "kafka_controller_kafkacontroller_activecontrollercount")
                    == Some(1.0)
            })
            .collect();
        match active[..] {
            [controller] => Some(controller),
            _ => None,
        }
    }

    /// GET a path from broker `i`'s HTTP endpoint.
    pub fn http_get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        let mut s =
            TcpStream::connect_timeout(&self.brokers[i].metrics, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    pub fn metrics(&self, i: usize) -> String {
        self.http_get(i, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// The value of an unlabelled (or exactly labelled) metric sample.
    pub fn metric(&self, i: usize, name_with_labels: &str) -> Option<f64> {
        parse_metric(&self.metrics(i), name_with_labels)
    }

    /// Waits until broker `i` answers /readyz with 200.
    pub fn wait_ready(&mut self, i: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = self.http_get(i, "/readyz") {
                return;
            }
            if !self.is_running(i) {
                panic!(
                    "broker {i} exited during start-up:\n{}",
                    self.log_tail(i, 60)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "broker {i} not ready after {timeout:?}:\n{}",
                    self.log_tail(i, 60)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `lines` lines of broker `i`'s log, without openraft's per-RPC noise.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.brokers[i].log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().filter(|l| !l.contains("openraft")).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Broker `i`'s log file (stdout and stderr of every run of it).
    pub fn log_path(&self, i: usize) -> &Path {
        &self.brokers[i].log_path
    }

    /// Bytes broker `i` has logged so far (a mark for `log_since`).
    pub fn log_len(&self, i: usize) -> u64 {
        std::fs::metadata(&self.brokers[i].log_path).map_or(0, |m| m.len())
    }

    /// What broker `i` logged after the `log_len` mark `from`.
    pub fn log_since(&self, i: usize, from: u64) -> String {
        use std::io::{Seek, SeekFrom};
        let mut text = Vec::new();
        if let Ok(mut f) = File::open(&self.brokers[i].log_path) {
            if f.seek(SeekFrom::Start(from)).is_ok() {
                let _ = f.read_to_end(&mut text);
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.brokers[i].dir.join("data")
    }

    /// What takes the space in broker `i`'s data dir: each top-level entry with the bytes its
    /// files occupy (allocated blocks, not apparent length), largest first, one per line.
    pub fn data_dir_usage(&self, i: usize) -> String {
        let dir = self.data_dir(i);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return format!("{} cannot be read", dir.display());
        };
        let mut usage: Vec<(u64, String)> = entries
            .flatten()
            .map(|e| {
                (
                    allocated_bytes(&e.path()),
                    e.file_name().to_string_lossy().into_owned(),
                )
            })
            .collect();
        usage.sort_unstable_by(|a, b| b.cmp(a));
        usage
            .iter()
            .map(|(bytes, name)| format!("{:>10} KiB {name}", bytes / 1024))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Fills broker `i`'s size-limited data dir: writes a ballast file until the filesystem
    /// answers ENOSPC. Returns the bytes written.
    pub fn fill_disk(&self, i: usize) -> u64 {
        assert!(
            self.brokers[i].mount.is_some(),
            "fill_disk needs ClusterOptions::data_dir_size"
        );
        // The ballast must land on the tmpfs: if it was unmounted under us, filling the
        // directory would fill the host's disk instead.
        let data = self.data_dir(i);
        let device = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p).map(|m| m.dev()).ok()
        };
        assert!(
            data.parent().and_then(device) != device(&data),
            "broker {i}'s data dir {} is no longer a mount point; not filling it",
            data.display()
        );
        let path = data.join(BALLAST);
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .expect("ballast file");
        let mut written = 0u64;
        // Big chunks first, then small ones for the last partly free pages.
        for chunk in [1 << 20, 4096, 1] {
            let buf = vec![0xbau8; chunk];
            loop {
                match file.write(&buf) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("writing {}: {e}", path.display()),
                }
            }
        }
        written
    }

    /// Deletes the ballast `fill_disk` wrote, giving the space back.
    pub fn free_disk(&self, i: usize) {
        let path = self.data_dir(i).join(BALLAST);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing {}: {e}", path.display()),
        }
    }
}

/// The bytes the files under `path` occupy on their filesystem.
fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let children = std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| allocated_bytes(&e.path())).sum())
        .unwrap_or(0);
    own + children
}

/// Finds `name{labels}` (or a bare name) in Prometheus text and returns its value.
pub fn parse_metric(text: &str, name_with_labels: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name_with_labels)
            .then(|| value.parse().ok())
            .flatten()
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.brokers.len() {
            self.resume(i);
            self.kill(i);
        }
        if std::thread::panicking() || std::env::var("RIVULET_TEST_SHOW_LOGS").is_ok() {
            for i in 0..self.brokers.len() {
                eprintln!("---- broker {i} log (tail) ----\n{}", self.log_tail(i, 150));
            }
        }
    }
}

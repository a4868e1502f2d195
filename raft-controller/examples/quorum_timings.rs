//! Measures two figures of the metadata quorum on a three-voter cluster over loopback TCP:
//! the commit latency of a metadata write (an AllocateProducerIds, a real Raft write applied by
//! every voter) sent to the leader and sent to a follower (forwarded), and the failover time
//! (leader killed -> a new leader elected and a metadata write committed through a survivor).
//!
//! Usage: `cargo run --release -p raft-controller --example quorum_timings [heartbeat_ms
//! election_min_ms election_max_ms]`; without arguments the defaults of `QuorumConfig::new`.
// This program's output is its report.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::error::Error;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use raft_controller::{BrokerRegistrationRequest, Quorum, QuorumConfig};

const WRITES: usize = 300;
const FAILOVERS: usize = 5;
const BROKER: i32 = 100;

fn free_addr() -> Result<SocketAddr, Box<dyn Error>> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn config(
    id: i32,
    addrs: &[SocketAddr],
    dir: &Path,
    timings: Option<(u64, u64, u64)>,
) -> QuorumConfig {
    let voters: BTreeMap<i32, String> = (0..).zip(addrs).map(|(i, a)| (i, a.to_string())).collect();
    let mut c = QuorumConfig::new(
        id,
        addrs[id as usize],
        addrs[id as usize].to_string(),
        voters,
        dir.join(format!("node-{id}")),
    );
    if let Some((hb, min, max)) = timings {
        c.heartbeat_interval_ms = hb;
        c.election_timeout_min_ms = min;
        c.election_timeout_max_ms = max;
    }
    c.leader_imbalance_check_interval_ms = None;
    c
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{name}: n={} mean={mean:?} p50={:?} p90={:?} p99={:?} max={:?}",
        samples.len(),
        pick(0.5),
        pick(0.9),
        pick(0.99),
        pick(1.0)
    );
}

async fn leader_of(nodes: &[Option<Quorum>]) -> Result<i32, Box<dyn Error>> {
    let q = nodes.iter().flatten().next().ok_or("no node running")?;
    Ok(q.wait_for_leader(Duration::from_secs(30)).await?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let timings = match args.as_slice() {
        [hb, min, max] => Some((*hb, *min, *max)),
        _ => None,
    };
    let dir = tempfile::tempdir()?;
    let addrs = [free_addr()?, free_addr()?, free_addr()?];
    let configs: Vec<QuorumConfig> = (0..3)
        .map(|id| config(id, &addrs, dir.path(), timings))
        .collect();
    println!(
        "3 voters on loopback, raft heartbeat {}ms, election timeout {}-{}ms",
        configs[0].heartbeat_interval_ms,
        configs[0].election_timeout_min_ms,
        configs[0].election_timeout_max_ms
    );
    let mut nodes: Vec<Option<Quorum>> = Vec::new();
    for c in &configs {
        nodes.push(Some(Quorum::start(c.clone()).await?));
    }
    let leader = leader_of(&nodes).await?;
    let q_leader = nodes[leader as usize].clone().ok_or("leader not running")?;
    let registration = BrokerRegistrationRequest {
        broker_id: BROKER,
        incarnation_id: uuid::Uuid::new_v4(),
        rack: None,
        endpoints: vec![],
    };
    let epoch = q_leader.register_broker(registration).await??;

    for _ in 0..20 {
        q_leader.allocate_producer_ids(BROKER, epoch).await??;
    }
    let mut on_leader = Vec::with_capacity(WRITES);
    for _ in 0..WRITES {
        let t = Instant::now();
        q_leader.allocate_producer_ids(BROKER, epoch).await??;
        on_leader.push(t.elapsed());
    }
    summary("commit latency, write sent to the leader", on_leader);
    let follower = (0..3).find(|id| *id != leader).ok_or("no follower")?;
    let q_follower = nodes[follower as usize]
        .clone()
        .ok_or("follower not running")?;
    let mut forwarded = Vec::with_capacity(WRITES);
    for _ in 0..WRITES {
        let t = Instant::now();
        q_follower.allocate_producer_ids(BROKER, epoch).await??;
        forwarded.push(t.elapsed());
    }
    summary(
        "commit latency, write sent to a follower (forwarded)",
        forwarded,
    );

    let mut elections = Vec::new();
    let mut failovers = Vec::new();
    for round in 0..FAILOVERS {
        let old = leader_of(&nodes).await?;
        let victim = nodes[old as usize].take().ok_or("leader not running")?;
        let survivor = (0..3).find(|id| *id != old).ok_or("no survivor")?;
        let q = nodes[survivor as usize]
            .clone()
            .ok_or("survivor not running")?;
        let killed = Instant::now();
        let watcher = {
            let q = q.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(l) = q.status().leader.filter(|l| *l != old) {
                        return (l, killed.elapsed());
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        victim.shutdown().await?;
        drop(victim);
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_millis(500),
                q.allocate_producer_ids(BROKER, epoch),
            )
            .await;
            if let Ok(Ok(Ok(_))) = attempt {
                break;
            }
        }
        let failover = killed.elapsed();
        let (new, election) = watcher.await?;
        println!("failover {round}: leader {old} killed -> leader {new} elected after {election:?}, write committed after {failover:?}");
        elections.push(election);
        failovers.push(failover);
        nodes[old as usize] = Some(Quorum::start(configs[old as usize].clone()).await?);
        let target = q.image().offset;
        let back = nodes[old as usize].clone().ok_or("restart failed")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while back.image().offset < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    summary("failover, leader killed -> new leader elected", elections);
    summary(
        "failover, leader killed -> metadata write committed",
        failovers,
    );
    for q in nodes.into_iter().flatten() {
        q.shutdown().await?;
    }
    Ok(())
}

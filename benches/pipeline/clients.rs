//! The two ways a run drives the cluster: every client in this process, rate-limited ones
//! offered their records by one pacing thread (`in-process`), or each producer its own
//! librdkafka instance in separate client processes, paced steadily (`processes`).

use std::sync::Arc;

use crate::broker_cpu::process_cpu_ns;
use crate::processes::ProcessClients;
use crate::workload::{self, Plan, Stats};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    InProcess,
    Processes,
}

impl ClientMode {
    pub fn name(self) -> &'static str {
        match self {
            ClientMode::InProcess => "in-process",
            ClientMode::Processes => "processes",
        }
    }

    pub fn parse(s: &str) -> Option<ClientMode> {
        match s.trim() {
            "in-process" => Some(ClientMode::InProcess),
            "processes" => Some(ClientMode::Processes),
            _ => None,
        }
    }
}

/// The running clients of one run.
pub enum ClientSet {
    InProcess(workload::Clients),
    Processes(ProcessClients),
}

impl ClientSet {
    /// Starts the consumers, waits until they own every partition, then starts the producers.
    pub fn start(mode: ClientMode, plan: &Plan) -> ClientSet {
        match mode {
            ClientMode::InProcess => ClientSet::InProcess(workload::start(plan)),
            ClientMode::Processes => ClientSet::Processes(ProcessClients::start(plan)),
        }
    }

    pub fn stats(&self) -> Arc<Stats> {
        match self {
            ClientSet::InProcess(c) => c.stats.clone(),
            ClientSet::Processes(c) => c.stats.clone(),
        }
    }

    pub fn start_measuring(&mut self) {
        match self {
            ClientSet::InProcess(c) => {
                c.stats.start_measuring();
            }
            ClientSet::Processes(c) => c.start_measuring(),
        }
    }

    /// CPU time of every client, in nanoseconds.
    pub fn cpu_ns(&self) -> u64 {
        match self {
            ClientSet::InProcess(_) => process_cpu_ns(std::process::id()),
            ClientSet::Processes(c) => c.cpu_ns(),
        }
    }

    /// Stops every client; latency samples are in [`ClientSet::stats`] afterwards.
    pub fn stop(self) {
        match self {
            ClientSet::InProcess(c) => c.stop(),
            ClientSet::Processes(c) => c.stop(),
        }
    }
}

//! Request and connection counts from the brokers' own `/metrics`, so a run reports broker CPU
//! per request and per connection next to CPU per message.

use crate::support::Cluster;

/// Counters summed over every broker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Requests answered, every API (client and replication listeners).
    pub requests: f64,
    pub produce: f64,
    /// Fetches from consumers and from followers.
    pub fetch: f64,
    /// Open connections, every listener.
    pub connections: f64,
}

impl Counters {
    /// Counters now minus `earlier` (the connection gauge is taken as it is now).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            requests: self.requests - earlier.requests,
            produce: self.produce - earlier.produce,
            fetch: self.fetch - earlier.fetch,
            connections: self.connections,
        }
    }

    pub fn add(&mut self, other: &Counters) {
        self.requests += other.requests;
        self.produce += other.produce;
        self.fetch += other.fetch;
        self.connections = self.connections.max(other.connections);
    }
}

/// Sum of the samples of metric `name` whose labels contain `label` (every sample if `None`).
fn sum(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let (metric, labels) = key.split_once('{').unwrap_or((key, ""));
            (metric == name && label.is_none_or(|want| labels.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Reads every broker's counters.
pub fn scrape(cluster: &Cluster, brokers: usize) -> Counters {
    let mut total = Counters::default();
    for i in 0..brokers {
        let text = cluster.metrics(i);
        let requests = "kafka_network_requestmetrics_requests_total";
        total.requests += sum(&text, requests, None);
        total.produce += sum(&text, requests, Some("request=\"Produce\""));
        total.fetch += sum(&text, requests, Some("request=\"Fetch\""));
        total.connections += sum(
            &text,
            "kafka_server_socketservermetrics_connection_count",
            None,
        );
    }
    total
}

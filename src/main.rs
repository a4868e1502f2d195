//! `rivulet`: command line, configuration loading, runtime and signal handling.
//!
//! Configuration uses Kafka's property names, merged from (lowest to highest precedence) the
//! built-in defaults, a properties file, `KAFKA_*` / `RIVULET_*` environment variables, and
//! command-line flags.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use broker::config::{BrokerConfig, ConfigType, Origin, Properties, BROKER_PROPERTIES};
use broker::{Broker, StorageFailure};
use clap::{Parser, ValueEnum};
use tracing::{error, info, warn};

/// The broker allocates many small, short-lived buffers per request; mimalloc serves them from
/// thread-local pages for a fraction of glibc malloc's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "rivulet",
    version,
    about = "A Kafka-compatible message broker: standard Kafka clients connect to it unchanged.",
    long_about = "A Kafka-compatible message broker: standard Kafka clients connect to it unchanged.\n\n\
        Run with no arguments for a single-node broker on 127.0.0.1:9092 (a one-voter metadata \
        quorum on 127.0.0.1:9093, data under ./data).\n\n\
        Configuration uses Kafka's broker property names. Sources, later ones winning: defaults, \
        the properties file, environment variables, flags. An environment variable KAFKA_<NAME> or \
        RIVULET_<NAME> sets property <name> with '_' read as '.', '__' as '_' and '___' as '-' \
        (RIVULET_LOG_DIRS=/var/lib/rivulet sets log.dirs).",
    after_long_help = common_properties_help()
)]
struct Cli {
    /// Kafka-style properties file (key=value lines), as `kafka-server-start.sh` takes.
    #[arg(value_name = "CONFIG_FILE")]
    config_file: Option<PathBuf>,

    /// Properties file (same as the positional argument).
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        conflicts_with = "config_file"
    )]
    config: Option<PathBuf>,

    /// Sets any broker property, e.g. --override num.partitions=6 (repeatable).
    #[arg(short = 'o', long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,

    /// node.id: this broker's id.
    #[arg(long, value_name = "ID")]
    node_id: Option<i32>,

    /// listeners, e.g. PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
    #[arg(long, value_name = "LIST")]
    listeners: Option<String>,

    /// advertised.listeners: what clients are told to connect to.
    #[arg(long, value_name = "LIST")]
    advertised_listeners: Option<String>,

    /// controller.quorum.voters, e.g. 0@host0:9093,1@host1:9093,2@host2:9093
    #[arg(long, value_name = "VOTERS")]
    controller_quorum_voters: Option<String>,

    /// log.dirs: comma-separated data directories.
    #[arg(long, value_name = "DIRS")]
    log_dirs: Option<String>,

    /// broker.rack: this broker's rack or availability zone.
    #[arg(long, value_name = "RACK")]
    rack: Option<String>,

    /// metrics.listener: host:port for /metrics, /livez and /readyz.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listener: Option<String>,

    /// Log output format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax); RUST_LOG is used when absent.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,

    /// Print the effective configuration and exit.
    #[arg(long)]
    print_config: bool,
}

fn common_properties_help() -> String {
    let mut text =
        String::from("Common properties (set with --override key=value, a file, or env):\n");
    for d in BROKER_PROPERTIES.iter().filter(|d| d.common) {
        let default = if d.default.is_empty() {
            "(none)"
        } else {
            d.default
        };
        text.push_str(&format!(
            "  {:<34} default {}\n      {}\n",
            d.name, default, d.doc
        ));
    }
    text.push_str("\nEvery property: see README.md, or `rivulet --print-config`.\n");
    text
}

fn load_config(cli: &Cli) -> anyhow::Result<BrokerConfig> {
    let mut props = Properties::default();
    if let Some(path) = cli.config.as_ref().or(cli.config_file.as_ref()) {
        props
            .load_file(path)
            .with_context(|| format!("reading {}", path.display()))?;
    }
    props.load_environment(std::env::vars());
    let flags = [
        ("node.id", cli.node_id.map(|v| v.to_string())),
        ("listeners", cli.listeners.clone()),
        ("advertised.listeners", cli.advertised_listeners.clone()),
        (
            "controller.quorum.voters",
            cli.controller_quorum_voters.clone(),
        ),
        ("log.dirs", cli.log_dirs.clone()),
        ("broker.rack", cli.rack.clone()),
        ("metrics.listener", cli.metrics_listener.clone()),
    ];
    for (key, value) in flags {
        if let Some(v) = value {
            props.set(key, v, Origin::CommandLine);
        }
    }
    props.load_overrides(&cli.overrides)?;
    for (key, _) in props.iter() {
        if !broker::config::is_known_property(key) {
            warn!(property = key, "unknown property ignored");
        }
    }
    Ok(BrokerConfig::from_properties(props)?)
}

fn init_logging(cli: &Cli) {
    let filter = match &cli.log_level {
        Some(f) => tracing_subscriber::EnvFilter::new(f),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn,sled=warn")),
    };
    // Colour only on a terminal: `docker logs` and `kubectl logs` get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match cli.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli);
    let config = load_config(&cli)?;
    if cli.print_config {
        for d in BROKER_PROPERTIES {
            let value = match config.effective_value(d.name) {
                Some(_) if d.kind == ConfigType::Password => "[hidden]".to_string(),
                value => value.unwrap_or_default(),
            };
            let origin = match config.properties.origin(d.name) {
                Some(Origin::File) => "file",
                Some(Origin::Environment) => "environment",
                Some(Origin::CommandLine) => "command line",
                None => "default",
            };
            #[allow(clippy::print_stdout)]
            {
                println!("{}={}    # {}", d.name, value, origin);
            }
        }
        return Ok(());
    }
    // One I/O thread: a single-threaded scheduler, which skips the work-stealing machinery.
    let mut runtime = if config.io_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime.enable_all().thread_name("rivulet");
    if config.io_threads > 1 {
        runtime.worker_threads(config.io_threads);
    }
    runtime
        .build()
        .context("starting the runtime")?
        .block_on(run(config))
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    #[cfg(feature = "kubernetes")]
    let config = broker::k8s::resolve_pod_identity(config).await?;
    #[cfg(not(feature = "kubernetes"))]
    refuse_kubernetes_switches(&config)?;
    let controlled = config.controlled_shutdown;
    let broker = Broker::start(config).await.context("starting the broker")?;
    info!(addresses = ?broker.client_addresses(), "ready for clients");

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let stop = tokio::select! {
        _ = terminate.recv() => Stop::Signal("SIGTERM"),
        _ = tokio::signal::ctrl_c() => Stop::Signal("SIGINT"),
        failure = broker.storage_failed() => Stop::StorageFailed(failure),
    };
    let controlled = match stop {
        Stop::Signal(signal) => {
            info!(signal, controlled, "shutting down");
            controlled
        }
        Stop::StorageFailed(StorageFailure::LogDirs) => {
            // Kafka's rule: with no log dir left the broker cannot serve and exits with a
            // failure. It first tries a controlled shutdown so the controller moves its
            // leaderships at once; that gives up as soon as the metadata log fails too (it
            // usually shares the failed disk).
            error!("all log dirs have failed; shutting down");
            true
        }
        Stop::StorageFailed(StorageFailure::MetadataLog(ref reason)) => {
            // Kafka halts on a metadata log dir failure: the node can no longer vote or apply,
            // so it cannot take part in a controlled shutdown either.
            error!(%reason, "the metadata log store has failed; shutting down");
            false
        }
    };
    // A second signal stops at once.
    tokio::spawn(async move {
        let _ = terminate.recv().await;
        warn!("second signal: exiting immediately");
        std::process::exit(1);
    });
    tokio::time::timeout(Duration::from_secs(120), broker.shutdown(controlled))
        .await
        .context("shutdown took longer than 120 s")??;
    match stop {
        Stop::Signal(_) => Ok(()),
        Stop::StorageFailed(StorageFailure::LogDirs) => anyhow::bail!("all log dirs have failed"),
        Stop::StorageFailed(StorageFailure::MetadataLog(reason)) => {
            anyhow::bail!("the metadata log store has failed: {reason}")
        }
    }
}

/// Why the broker is stopping.
#[derive(Clone, Debug)]
enum Stop {
    Signal(&'static str),
    StorageFailed(StorageFailure),
}

/// A build without the `kubernetes` feature has no pod identity and no KafkaTopic reconciler: it
/// runs with the configuration it was given, `auto` meaning off as it does outside a pod. A switch
/// explicitly set to true cannot be honoured, so it fails the start rather than being ignored.
#[cfg(not(feature = "kubernetes"))]
fn refuse_kubernetes_switches(config: &BrokerConfig) -> anyhow::Result<()> {
    use broker::config::Toggle;
    for (key, toggle) in [
        ("kubernetes.enabled", config.kubernetes),
        (
            "kubernetes.topic.reconciler.enable",
            config.topic_reconciler,
        ),
    ] {
        if toggle == Toggle::On {
            anyhow::bail!("{key}=true, but rivulet was built without the kubernetes feature");
        }
    }
    Ok(())
}

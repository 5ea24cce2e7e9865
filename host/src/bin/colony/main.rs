//! `colony`: the command line of the Colony host.
//!
//! Every command works on a colony home folder (`--home`, `$COLONY_HOME`, or the user's
//! data folder): its journal and its workers' folders. Errors are one line on stderr and
//! a non-zero exit code; `--json` switches stdout to JSON lines for scripts; logs go to
//! stderr through `tracing` (`RUST_LOG`).

mod bearer;
mod chat;
mod deadline;
mod demo;
mod fanout;
mod inspect;
mod interrupt;
mod mcp;
mod node;
mod print;
mod replay;
mod run;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use colony::{Colony, ColonyConfig, Plugin, Runtime};

/// Workers allocate and free many small objects across the runtime's threads, where
/// mimalloc is markedly faster than the system allocator (BENCHMARKS.md, table 1).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "colony",
    version,
    about = "Run AI agent workers as sandboxed WebAssembly components"
)]
struct Cli {
    /// Print events and results as JSON lines (for scripts) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Host-wide config file (TOML): default limits, allocator, component cache folder.
    #[arg(long, global = true, env = "COLONY_CONFIG")]
    config: Option<PathBuf>,
    /// Compile plugins in memory every time instead of caching the compiled component
    /// (by default in the user's cache folder, `$XDG_CACHE_HOME/colony`, unless the
    /// config file names a `cache_dir`).
    #[arg(long, global = true, env = "COLONY_NO_CACHE", value_parser = clap::builder::FalseyValueParser::new())]
    no_cache: bool,
    /// The colony home folder (journal and worker folders).
    #[arg(long, global = true, env = "COLONY_HOME")]
    home: Option<PathBuf>,
    /// Run fanned-out workers on `colony node`s through this NATS server (JetStream
    /// enabled), e.g. nats://127.0.0.1:4222; comma-separate a cluster's servers.
    #[arg(long, global = true, env = "COLONY_NATS")]
    nats: Option<String>,
    /// With --nats on a JetStream cluster: copies of Colony's streams (1, 3 or 5; at most
    /// the number of servers). Unset: existing streams are used as they are, new ones
    /// get one copy.
    #[arg(long, global = true, env = "COLONY_NATS_REPLICAS", value_parser = clap::value_parser!(u8).range(1..=5))]
    nats_replicas: Option<u8>,
    /// Sync the journal to the disk at every batch commit (fsync), so a power loss loses
    /// no report already published. Without it a `kill -9` loses nothing, a power loss
    /// the last few milliseconds.
    #[arg(long, global = true, env = "COLONY_FSYNC", value_parser = clap::builder::FalseyValueParser::new())]
    fsync: bool,
    /// Write OpenTelemetry spans (workers, model calls, tool calls) to this file, one
    /// OTLP JSON export request per line. Spans also go to an OTLP/HTTP collector when
    /// OTEL_EXPORTER_OTLP_ENDPOINT (or the config's [telemetry] endpoint) is set.
    #[arg(long, global = true, env = "COLONY_TRACE_FILE")]
    trace_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a demo colony: a persistent overseer and a fan-out of workers, printing every event.
    Demo(demo::DemoArgs),
    /// Run one ephemeral worker and print its report (exit code 0 on success).
    Run(run::RunArgs),
    /// Chat with a persistent overseer: each line of stdin is one turn.
    Chat(chat::ChatArgs),
    /// Resume a persistent worker from the journal, with its conversation as it was.
    Resume(chat::ResumeArgs),
    /// Fan tasks out to ephemeral workers, with a progress bar and a summary table.
    Fanout(fanout::FanoutArgs),
    /// List the workers in the journal.
    Ps,
    /// Show one worker: its record, reports, conversation and files.
    Inspect(inspect::InspectArgs),
    /// Print the events of the colony's workers (optionally one worker; --follow to tail).
    Events(inspect::EventsArgs),
    /// Serve plugins as a worker node of colonies on NATS (needs --nats).
    Node(node::NodeArgs),
    /// Serve plugins as MCP tools (stdio, or streamable HTTP with --listen).
    Mcp(mcp::McpArgs),
    /// Serve a live web view of the colony home (its colonies, workers and events).
    Serve(serve::ServeArgs),
    /// Re-run a recorded worker offline, every model and tool answer from its recording;
    /// say where the guest diverges and whether its report matches.
    Replay(replay::ReplayArgs),
    /// Re-run a recorded worker from its recording up to a step, then live with this
    /// host's model and tools, as a new worker.
    Fork(replay::ForkArgs),
    /// Write a recorded worker's model answers as a script for the scripted provider.
    Export(replay::ExportArgs),
}

/// Where `make guests` puts the guest components, relative to the workspace.
pub(crate) fn default_plugin_dir() -> PathBuf {
    std::env::var_os("COLONY_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/wasm32-wasip2/guest"))
}

/// A plugin from a component (`.wasm`) or a manifest (`.toml`), loaded and checked now.
pub(crate) async fn load_plugin(runtime: &Runtime, path: &Path) -> anyhow::Result<Plugin> {
    if path.extension().is_some_and(|e| e == "toml") {
        return Ok(runtime.load_manifest(path).await?);
    }
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .to_owned();
    Ok(runtime.load_plugin(name, path).await?)
}

/// The settings every command shares.
pub(crate) struct Env {
    pub json: bool,
    pub home: PathBuf,
    /// Whether the home was given (`--home` / `$COLONY_HOME`) rather than defaulted.
    pub home_given: bool,
    pub runtime: Runtime,
    /// The NATS server of a distributed colony.
    pub nats: Option<String>,
    /// Copies of the streams on a JetStream cluster, if set.
    pub nats_replicas: Option<usize>,
    /// When the journal's commits reach the disk.
    pub journal_sync: colony::JournalSync,
}

impl Env {
    /// Opens the colony in the home folder, configured by `configure`.
    /// With `--nats`, its fanned-out workers run on the nodes of that server.
    pub(crate) async fn colony(
        &self,
        configure: impl FnOnce(&mut ColonyConfig),
    ) -> anyhow::Result<Colony> {
        let mut config = ColonyConfig::new("cli", &self.home);
        config.nats = self.nats.clone();
        config.nats_replicas = self.nats_replicas;
        config.journal_sync = self.journal_sync;
        configure(&mut config);
        Ok(Colony::connect(self.runtime.clone(), config).await?)
    }

    /// Opens the home's journal, marking workers of dead processes as interrupted.
    pub(crate) fn journal(&self) -> anyhow::Result<colony::Journal> {
        let path = self.home.join("journal.db");
        anyhow::ensure!(path.is_file(), "no colony journal at {}", path.display());
        let journal = colony::Journal::open(&path)?;
        journal.recover()?;
        Ok(journal)
    }
}

/// The error and its causes on one line, leaving out causes its message already quotes.
fn one_line(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

fn main() -> ExitCode {
    // Backtraces on every dropped guest future cost microseconds per worker.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: set before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,colony_guest=off")),
        )
        .with_writer(|| print::InertStderr)
        .with_ansi(false)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("colony: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let mut config = match &cli.config {
            Some(path) => colony::RuntimeConfig::load(path)?,
            None => colony::RuntimeConfig::default(),
        };
        if let Some(file) = &cli.trace_file {
            config.telemetry.file = Some(file.clone());
        }
        if cli.no_cache {
            config.cache_dir = None;
        } else if config.cache_dir.is_none() {
            // As wasmtime's and Spin's CLIs do: a plugin is compiled once per machine,
            // not once per command (a JavaScript guest takes seconds to compile).
            config.cache_dir = dirs::cache_dir().map(|dir| dir.join("colony"));
        }
        let runtime = Runtime::with_config(config).context("cannot start the wasm runtime")?;
        let telemetry = runtime.telemetry().cloned();
        let env = Env {
            json: cli.json,
            home: cli.home.clone().unwrap_or_else(ColonyConfig::default_home),
            home_given: cli.home.is_some(),
            runtime,
            nats: cli.nats.clone(),
            nats_replicas: cli.nats_replicas.map(usize::from),
            journal_sync: if cli.fsync {
                colony::JournalSync::EveryBatch
            } else {
                colony::JournalSync::Os
            },
        };
        let outcome = match cli.command {
            Command::Demo(args) => demo::demo(args, env).await,
            Command::Run(args) => run::run(args, env).await,
            Command::Chat(args) => chat::chat(args, env).await,
            Command::Resume(args) => chat::resume(args, env).await,
            // On a runtime thread: awaited on this (`block_on`) thread, every report
            // would wake it from its park, a tenth of what a worker costs.
            Command::Fanout(args) => tokio::spawn(fanout::fanout(args, env))
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("the fan-out stopped: {e}"))),
            Command::Ps => inspect::ps(env),
            Command::Inspect(args) => inspect::inspect(args, env),
            Command::Events(args) => inspect::events(args, env).await,
            Command::Node(args) => node::node(args, env).await,
            Command::Mcp(args) => mcp::mcp(args, env).await,
            Command::Serve(args) => serve::serve(args, env).await,
            Command::Replay(args) => replay::replay(args, env).await,
            Command::Fork(args) => replay::fork(args, env).await,
            Command::Export(args) => replay::export(args, env),
        };
        // The last spans (the colony's own ends last) are exported before the exit.
        if let Some(telemetry) = telemetry {
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        }
        outcome
    });
    // A blocking read of stdin (`colony mcp` over stdio) must not keep the process up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("colony: {}", colony::text::inert(&one_line(&e)));
            ExitCode::FAILURE
        }
    }
}

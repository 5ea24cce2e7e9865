//! `colony`: the command line of the Colony host.
//!
//! `colony demo` runs a small colony (a persistent overseer plus fanned-out workers)
//! and prints every event as it happens; `colony run` runs one ephemeral worker. Errors
//! are reported as one line on stderr with a non-zero exit code.

mod demo;
mod print;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a demo colony: a persistent overseer and a fan-out of workers, printing every event.
    Demo(demo::DemoArgs),
    /// Run one ephemeral worker and print its report (exit code 0 on success).
    Run(run::RunArgs),
}

/// Where `make guests` puts the guest components, relative to the workspace.
pub(crate) fn default_plugin_dir() -> PathBuf {
    std::env::var_os("COLONY_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/wasm32-wasip2/guest"))
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
        .with_writer(std::io::stderr)
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
        let config = match &cli.config {
            Some(path) => colony::RuntimeConfig::load(path)?,
            None => colony::RuntimeConfig::default(),
        };
        let colony = colony::Runtime::with_config(config)?;
        match cli.command {
            Command::Demo(args) => demo::demo(args, colony, cli.json).await,
            Command::Run(args) => run::run(args, colony, cli.json).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("colony: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `colony --nats URL node --plugin P…`: a worker node. It serves the given plugins (by
//! their sha256) to every colony on that NATS server until interrupted (Ctrl-C or
//! SIGTERM), then stops its workers and hands their tasks back to the queue.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use colony::cluster::{Cluster, Node, NodeConfig, StreamSettings};

use crate::Env;
use crate::interrupt::Interrupt;
use crate::print::say;

#[derive(Args)]
pub(crate) struct NodeArgs {
    /// A plugin to serve: a component (.wasm) or a manifest (.toml, with its grants,
    /// limits and sha256 pin). Repeat for several.
    #[arg(long = "plugin", required = true)]
    plugins: Vec<PathBuf>,
    /// The node's name in reports and logs (letters, digits, '-', '_').
    #[arg(long, default_value_t = default_name())]
    name: String,
    /// Workers running at once on this node.
    #[arg(long, default_value_t = 4)]
    slots: usize,
    /// How long a task may go unacknowledged before it moves to another node (a dead
    /// node's tasks wait this long). Set by the first node that serves a plugin.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    ack_wait: Duration,
    /// A task delivered more often than this fails instead of running again.
    #[arg(long, default_value_t = 5)]
    max_deliveries: i64,
}

fn default_name() -> String {
    format!("node-{}", std::process::id())
}

pub(crate) async fn node(args: NodeArgs, env: Env) -> anyhow::Result<ExitCode> {
    let url = env
        .nats
        .clone()
        .context("a node needs a NATS server: --nats URL (or $COLONY_NATS)")?;
    let mut plugins = Vec::new();
    for path in &args.plugins {
        plugins.push(crate::load_plugin(&env.runtime, path).await?);
    }
    let settings = StreamSettings {
        replicas: env.nats_replicas,
    };
    let cluster = Cluster::connect_with(&url, &args.name, settings).await?;
    let mut config = NodeConfig::new(&args.name, env.home.join("nodes").join(&args.name));
    config.slots = args.slots;
    config.ack_wait = args.ack_wait;
    config.max_deliveries = args.max_deliveries;
    let node = Node::new(cluster, plugins, config).await?;
    let served = node.plugins();
    if env.json {
        let plugins: Vec<_> = served
            .iter()
            .map(|(name, sha)| serde_json::json!({"name": name, "sha256": sha}))
            .collect();
        let line = serde_json::json!({"node": args.name, "nats": url, "plugins": plugins});
        crate::print::line(&colony::text::json_line(&line)?);
    } else {
        for (name, sha) in &served {
            say!("node {} serving {name} (sha256 {sha}) on {url}", args.name);
        }
    }
    // The first Ctrl-C or SIGTERM stops its workers and hands their tasks back; a
    // second exits at once.
    let interrupt = Interrupt::listen();
    node.run(interrupt.token()).await;
    Ok(ExitCode::SUCCESS)
}

//! `colony mcp --plugin P…`: each plugin served as one MCP tool, over stdio or (with
//! `--listen`) streamable HTTP, through the official Rust SDK (rmcp).
//!
//! A call runs one ephemeral worker of a journaled colony (id `mcp`, in `--home`) with
//! the call's arguments as its input, under the colony's concurrency cap; its report is
//! the call's result. Why a colony and not bare workers: calls from an MCP client are
//! work like any fan-out — journaled, bounded in how many run at once, stopped together.

mod handler;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::Env;
use crate::interrupt::Interrupt;
use handler::{Offered, PluginTools};

#[derive(Args)]
pub(crate) struct McpArgs {
    /// A plugin to serve as a tool: a component (.wasm) or a manifest (.toml, whose
    /// `[tool]` table names and describes the tool). Repeat for more tools.
    #[arg(long = "plugin", required = true)]
    plugins: Vec<PathBuf>,
    /// Serve streamable HTTP at http://ADDR/mcp instead of stdio. Loopback unless a
    /// token is set.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The bearer token HTTP clients must send (`Authorization: Bearer …`); required to
    /// listen on a non-loopback address.
    #[arg(long, env = "COLONY_MCP_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Calls whose workers run at once; the others wait.
    #[arg(long, default_value_t = 4)]
    max_concurrency: usize,
}

pub(crate) async fn mcp(args: McpArgs, env: Env) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.token.as_deref().is_none_or(|t| !t.trim().is_empty()),
        "the token is empty: an empty token would let anyone in"
    );
    if let Some(addr) = args.listen
        && !addr.ip().is_loopback()
        && args.token.is_none()
    {
        anyhow::bail!(
            "refusing to listen on {addr} without a token: pass --token (or COLONY_MCP_TOKEN), \
             or listen on a loopback address"
        );
    }
    let mut offered = Vec::new();
    for path in &args.plugins {
        offered.push(Offered::load(&env.runtime, path).await?);
    }
    let colony = env
        .colony(|config| {
            config.id = "mcp".into();
            config.max_concurrent_workers = args.max_concurrency.max(1);
            config.max_batch = 1;
        })
        .await?;
    let tools = PluginTools::new(colony.clone(), offered)?;
    let interrupt = Interrupt::listen();
    // A signal stops the calls' workers at once (their calls then answer `stopped`).
    let stopper = {
        let (colony, interrupt) = (colony.clone(), interrupt.clone());
        tokio::spawn(async move {
            interrupt.fired().await;
            colony.stop_all().await;
        })
    };
    let served = match args.listen {
        None => serve_stdio(tools, &interrupt).await,
        Some(addr) => serve_http(tools, addr, args.token, &interrupt).await,
    };
    stopper.abort();
    colony.stop_all().await;
    served?;
    Ok(interrupt.exit_code())
}

/// Serves one client over stdin/stdout until it closes them (or a signal comes).
async fn serve_stdio(tools: PluginTools, interrupt: &Interrupt) -> anyhow::Result<()> {
    let running = tools
        .serve(rmcp::transport::stdio())
        .await
        .context("MCP handshake over stdio")?;
    tokio::select! {
        quit = running.waiting() => { quit.context("MCP session")?; }
        () = interrupt.fired() => {}
    }
    Ok(())
}

/// Serves streamable HTTP at `/mcp` until a signal comes.
async fn serve_http(
    tools: PluginTools,
    addr: SocketAddr,
    token: Option<String>,
    interrupt: &Interrupt,
) -> anyhow::Result<()> {
    let stop = interrupt.token();
    let mut config = StreamableHttpServerConfig::default();
    // Open SSE streams and calls in flight end with the server, not hold it up.
    config.cancellation_token = stop.child_token();
    config = if addr.ip().is_loopback() {
        // DNS rebinding: only the names of this machine's loopback reach it.
        let ip = addr.ip().to_string();
        config.with_allowed_hosts([
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            ip,
        ])
    } else {
        // Reached by whatever name clients use; the token guards it.
        config.disable_allowed_hosts()
    };
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mut app = axum::Router::new().nest_service("/mcp", service);
    if let Some(token) = token {
        app = app.layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(token),
            crate::bearer::require_bearer,
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    crate::print::line(&format!("colony mcp: listening on http://{bound}/mcp"));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled_owned().await })
        .await
        .context("HTTP server")?;
    Ok(())
}

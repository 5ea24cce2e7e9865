//! `colony serve`: a live web view of a colony home — its colonies, their workers, each
//! worker's events, conversation and report — with controls to stop a worker, inject a
//! message into one, or stop them all.
//!
//! Why it reads the journal rather than a colony's bus: the workers on view are usually
//! run by other processes (`colony fanout`, `chat`, a Python program) sharing the home,
//! and the journal is what they share. Live updates are the journal's changes, polled
//! cheaply (SQLite's `data_version`, every [`WATCH_EVERY`]) and sent over Server-Sent
//! Events; controls are filed in the journal for the process holding the worker
//! ([`colony::Control`]).
//!
//! Secure defaults: loopback only unless `--listen` says otherwise (then every request
//! needs the token); every state-changing request needs the token printed at start, in
//! an `Authorization` header (so a page of another site cannot forge one); requests
//! must name this server in `Host` (no DNS rebinding) and in `Origin` when they carry
//! one; no CORS; a Content-Security-Policy that allows only this server's own script;
//! guest text is rendered as text, never HTML; connections, live streams, request bodies
//! and pages are bounded ([`MAX_CONNECTIONS`], [`MAX_LIVE_STREAMS`], [`MAX_BODY`],
//! [`colony::MAX_PAGE`]), and a connection the server has written nothing to for the
//! idle timeout (`--idle-timeout`, [`DEFAULT_IDLE`]) while it waits to read is closed.

mod api;
mod assets;
mod connections;
mod controls;
mod error;
mod extract;
mod guard;
mod live;
mod view;

use std::io::Read as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use clap::Args;
use colony::Journal;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use crate::Env;
use crate::interrupt::Interrupt;

/// Live streams (browser tabs) served at once; more are answered 503.
const MAX_LIVE_STREAMS: usize = 64;
/// Connections open at once; more wait for one to close.
const MAX_CONNECTIONS: usize = 256;
/// The largest request body (an injected message and its JSON).
const MAX_BODY: usize = 64 * 1024;
/// How often the journal is asked whether anything changed.
const WATCH_EVERY: Duration = Duration::from_millis(200);
/// The workers of one page of the list when the page does not say.
const DEFAULT_PAGE: u64 = 50;
/// How long a connection may wait to read with nothing written to it (longer than the
/// slowest answer: a stop-all waits up to 30 s).
const DEFAULT_IDLE: &str = "60s";
/// The shortest idle timeout: live streams' keep-alives come at half of it.
const MIN_IDLE: Duration = Duration::from_secs(1);

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The address to serve on. Loopback by default; on any other address every
    /// request, reads too, needs the token.
    #[arg(long, default_value = "127.0.0.1:8450")]
    listen: SocketAddr,
    /// The token of controls (stop, inject); by default a random one, printed at start.
    #[arg(long, env = "COLONY_SERVE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Closes a connection that has been waiting for a request this long with nothing
    /// written to it: a client sending a request slowly, or nothing, holds no
    /// connection slot past it. Live streams send keep-alives well within it.
    #[arg(long, default_value = DEFAULT_IDLE, value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
}

/// What every handler shares.
#[derive(Clone)]
struct App {
    journal: Arc<Journal>,
    /// The colonies counted, anew whenever the journal changes.
    changes: watch::Receiver<live::Census>,
    /// Permits for live streams.
    streams: Arc<Semaphore>,
    /// Cancelled at shutdown: live streams end so the server can.
    stop: CancellationToken,
    /// How often an idle live stream sends a keep-alive comment.
    keep_alive: Duration,
}

pub(crate) async fn serve(args: ServeArgs, env: Env) -> anyhow::Result<ExitCode> {
    let token = match args.token {
        Some(token) => {
            anyhow::ensure!(
                token.len() >= 16
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
                "the token must be 16 characters or more of A-Z, a-z, 0-9 and -._~ \
                 (it travels in URLs as it is)"
            );
            token
        }
        None => random_token()?,
    };
    anyhow::ensure!(
        args.idle_timeout >= MIN_IDLE,
        "--idle-timeout must be {} or more",
        humantime::format_duration(MIN_IDLE)
    );
    std::fs::create_dir_all(&env.home)
        .with_context(|| format!("cannot create the colony home {}", env.home.display()))?;
    let journal = Arc::new(Journal::open(env.home.join("journal.db"))?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let interrupt = Interrupt::listen();
    let stop = interrupt.token();
    let (census, changes) = watch::channel(live::Census::default());
    tokio::spawn(live::watch_journal(journal.clone(), census, stop.clone()));
    let app = App {
        journal,
        changes,
        streams: Arc::new(Semaphore::new(MAX_LIVE_STREAMS)),
        stop: stop.clone(),
        keep_alive: live::keep_alive(args.idle_timeout),
    };
    let token: Arc<str> = token.into();
    let router = routes(app, guard::Guard::new(bound, token.clone()), token.clone());
    crate::print::line(&format!("colony serve: http://{bound}/?token={token}"));
    axum::serve(
        connections::Bounded::new(listener, args.idle_timeout),
        router,
    )
    .with_graceful_shutdown(async move { stop.cancelled_owned().await })
    .await
    .context("HTTP server")?;
    Ok(interrupt.exit_code())
}

fn routes(app: App, guard: guard::Guard, token: Arc<str>) -> Router {
    let guard = Arc::new(guard);
    let controls = Router::new()
        .route("/api/workers/{id}/stop", post(controls::stop))
        .route("/api/workers/{id}/inject", post(controls::inject))
        .route("/api/stop-all", post(controls::stop_all))
        // The token in an `Authorization` header — never from the URL, which a page of
        // another site could make a browser send.
        .route_layer(axum::middleware::from_fn_with_state(
            token,
            crate::bearer::require_bearer,
        ));
    Router::new()
        .route("/", get(assets::index))
        .route("/workers/{id}", get(assets::worker))
        .route("/assets/{name}", get(assets::asset))
        .route("/api/colonies", get(api::colonies))
        .route("/api/workers", get(api::workers))
        .route("/api/workers/{id}", get(api::worker))
        .route("/api/workers/{id}/events", get(api::events))
        .route("/api/live", get(live::index))
        .route("/api/workers/{id}/live", get(live::worker))
        .merge(controls)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
        .with_state(app)
}

impl App {
    /// Runs `read` on the journal on a blocking thread (SQLite blocks).
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Journal) -> Result<T, error::ApiError> + Send + 'static,
    ) -> Result<T, error::ApiError> {
        let journal = self.journal.clone();
        tokio::task::spawn_blocking(move || read(&journal))
            .await
            .map_err(|_| error::ApiError::ShuttingDown)?
    }
}

/// 128 random bits from the kernel, in hex.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

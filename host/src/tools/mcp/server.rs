//! One MCP server, supervised: started on first use, restarted after it dies or fails
//! (with backoff), its stderr read line by line into the host's log.
//!
//! Why lazily and one lock per server: a server that hangs at start holds up only the
//! calls to it (each bounded by its start timeout), never the host or another server;
//! one that crashed is started again by a later call rather than by a loop of its own.
//! A start runs in a task of its own that records its outcome, so a caller that gives
//! up (its tool timeout, a stopped worker) never leaves a half-started server behind or
//! skips the backoff.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ContentBlock, PaginatedRequestParams};
use rmcp::service::RunningService;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::{RoleClient, ServiceError, ServiceExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};

use super::McpToolInfo;
use super::config::McpServerConfig;
use crate::tools::ToolError;

/// Backoff after a failed start or a failure in use: 0.5 s, doubling, at most 30 s.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection up this long has its backoff forgotten.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// The longest stderr line logged whole.
const STDERR_LINE_BYTES: usize = 4096;
/// How many stderr lines of one server start are logged.
const STDERR_LINES: usize = 1000;
/// Bounds on a server's tool list: pages read, tools kept, bytes of their descriptions
/// and schemas together. A server's list is copied into every granted guest's view.
const MAX_PAGES: usize = 50;
const MAX_TOOLS: usize = 500;
const MAX_LIST_BYTES: usize = 1 << 20;
/// Calls in flight to one server at once; more wait (within their tool timeout).
const MAX_IN_FLIGHT: usize = 8;
/// The most of a server's error text a guest hears.
const MAX_ERROR_BYTES: usize = 4096;
/// Variables of the host's environment a spawned server inherits (plus its `env`):
/// model keys and tokens stay with the host.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];

/// A running connection: the client, the tools it listed, and the child it owns.
struct Connection {
    client: RunningService<RoleClient, ()>,
    tools: Arc<Vec<McpToolInfo>>,
    since: Instant,
    /// The spawned server (stdio), killed with its group when the connection is dropped.
    child: Option<std::sync::Mutex<ProcessGroup>>,
}

impl Connection {
    fn is_alive(&self) -> bool {
        if self.client.peer().is_transport_closed() {
            return false;
        }
        match &self.child {
            Some(child) => child
                .lock()
                .map(|mut c| matches!(c.0.try_wait(), Ok(None)))
                .unwrap_or(false),
            None => true,
        }
    }
}

enum State {
    Up(Arc<Connection>),
    /// Not started yet (`retry_at` now), failed to start, or failed in use.
    Down {
        retry_at: Instant,
        backoff: Duration,
    },
}

/// One configured server.
pub struct McpServer {
    name: String,
    config: Arc<McpServerConfig>,
    state: Arc<Mutex<State>>,
    in_flight: Semaphore,
}

impl McpServer {
    pub fn new(name: String, config: McpServerConfig) -> Self {
        Self {
            name,
            config: Arc::new(config),
            state: Arc::new(Mutex::new(State::Down {
                retry_at: Instant::now(),
                backoff: Duration::ZERO,
            })),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// The server's tools, starting it if needed.
    pub async fn tools(&self) -> Result<Arc<Vec<McpToolInfo>>, ToolError> {
        Ok(self.connection().await?.tools.clone())
    }

    /// Calls `tool` with `arguments` (an object). Dropping the future tells the server
    /// the call is cancelled.
    pub async fn call(&self, tool: &str, arguments: Value) -> Result<Value, ToolError> {
        let Value::Object(arguments) = arguments else {
            return Err(ToolError::InvalidArguments(
                "arguments must be an object".into(),
            ));
        };
        let _slot = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| self.unavailable())?;
        let connection = self.connection().await?;
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let result = match connection.client.call_tool(params).await {
            Ok(result) => result,
            Err(ServiceError::McpError(e)) => {
                return Err(ToolError::Failed(crate::text::truncated(
                    format!("MCP server '{}' refused the call: {}", self.name, e.message),
                    MAX_ERROR_BYTES,
                )));
            }
            Err(e) => {
                tracing::warn!(server = %self.name, tool, error = %e, "MCP call failed; the server is restarted");
                self.discard(&connection).await;
                return Err(ToolError::Failed(format!(
                    "MCP server '{}' failed during the call (it is restarted)",
                    self.name
                )));
            }
        };
        let text: Vec<&str> = result
            .content
            .iter()
            .filter_map(ContentBlock::as_text)
            .map(|t| t.text.as_str())
            .collect();
        if result.is_error.unwrap_or(false) {
            return Err(ToolError::Failed(crate::text::truncated(
                text.join("\n"),
                MAX_ERROR_BYTES,
            )));
        }
        Ok(match result.structured_content {
            Some(structured) => structured,
            None => Value::String(text.join("\n")),
        })
    }

    /// Replaces `connection`, if it is still the current one, by a restart after the
    /// backoff.
    async fn discard(&self, connection: &Arc<Connection>) {
        let mut state = self.state.lock().await;
        if let State::Up(current) = &*state
            && Arc::ptr_eq(current, connection)
        {
            *state = down_after(connection.since.elapsed(), Duration::ZERO);
        }
    }

    /// The live connection, started (or restarted) now if there is none and the
    /// backoff allows.
    async fn connection(&self) -> Result<Arc<Connection>, ToolError> {
        let state = self.state.clone().lock_owned().await;
        let backoff = match &*state {
            State::Up(connection) if connection.is_alive() => return Ok(connection.clone()),
            State::Up(connection) => {
                tracing::warn!(server = %self.name, "MCP server is gone; restarting it");
                if connection.since.elapsed() < STABLE_AFTER {
                    FIRST_BACKOFF
                } else {
                    Duration::ZERO
                }
            }
            State::Down { retry_at, backoff } => {
                if Instant::now() < *retry_at {
                    return Err(self.unavailable());
                }
                *backoff
            }
        };
        // The start owns the lock and records its outcome even if this caller is
        // dropped meanwhile.
        let starting = tokio::spawn(start_holding(
            state,
            self.name.clone(),
            self.config.clone(),
            backoff,
        ));
        match starting.await {
            Ok(Some(connection)) => Ok(connection),
            _ => Err(self.unavailable()),
        }
    }

    /// What the guest hears: no command, URL, token or cause (those are in the log).
    fn unavailable(&self) -> ToolError {
        ToolError::Failed(format!("MCP server '{}' is unavailable", self.name))
    }
}

/// The state after a failure: the next try waits the backoff (0.5 s at least after a
/// failed start), doubling each time.
fn down_after(up_for: Duration, backoff: Duration) -> State {
    let wait = if up_for >= STABLE_AFTER {
        Duration::ZERO
    } else {
        backoff.max(FIRST_BACKOFF)
    };
    State::Down {
        retry_at: Instant::now() + wait,
        backoff: (wait * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF),
    }
}

/// Starts the server within its start timeout, holding its state's lock, and records
/// the outcome there.
async fn start_holding(
    mut state: OwnedMutexGuard<State>,
    name: String,
    config: Arc<McpServerConfig>,
    backoff: Duration,
) -> Option<Arc<Connection>> {
    match tokio::time::timeout(config.start_timeout, start(&name, &config)).await {
        Ok(Ok(connection)) => {
            let connection = Arc::new(connection);
            *state = State::Up(connection.clone());
            Some(connection)
        }
        outcome => {
            let why = match outcome {
                Ok(Err(e)) => e,
                _ => format!("did not start within {:?}", config.start_timeout),
            };
            tracing::warn!(server = %name, reason = %crate::text::inert(&why), "MCP server failed to start");
            *state = down_after(Duration::ZERO, backoff);
            None
        }
    }
}

async fn start(name: &str, config: &McpServerConfig) -> Result<Connection, String> {
    let (client, child) = match (&config.command, &config.url) {
        (Some(command), _) => {
            let mut command = tokio::process::Command::new(command);
            command
                .args(&config.args)
                .env_clear()
                .envs(
                    INHERITED_ENV
                        .iter()
                        .filter_map(|k| Some((*k, std::env::var_os(k)?))),
                )
                .envs(&config.env)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .process_group(0);
            die_with_host(&mut command);
            let mut child = command.spawn().map_err(|e| {
                format!(
                    "cannot spawn {}: {e}",
                    config
                        .command
                        .as_ref()
                        .map_or("?".into(), |c| c.display().to_string())
                )
            })?;
            let pipes = (child.stdout.take(), child.stdin.take(), child.stderr.take());
            // From here on the whole group dies with this value, whatever happens next.
            let child = ProcessGroup(child);
            let (Some(stdout), Some(stdin), Some(stderr)) = pipes else {
                return Err("no stdio pipes".into());
            };
            tokio::spawn(log_stderr(name.to_owned(), stderr));
            let transport = AsyncRwTransport::new_client(stdout, stdin)
                .with_max_line_length(config.max_message_bytes);
            let client = ().serve(transport).await.map_err(|e| e.to_string())?;
            (client, Some(std::sync::Mutex::new(child)))
        }
        (None, Some(url)) => (super::http::connect(url, config).await?, None),
        (None, None) => return Err("no transport configured".into()),
    };
    let tools = list_tools(name, &client).await?;
    tracing::info!(server = %name, tools = tools.len(), "MCP server started");
    Ok(Connection {
        client,
        tools: Arc::new(tools),
        since: Instant::now(),
        child,
    })
}

/// The server's tools, page by page within the bounds above: a repeated cursor ends the
/// list, and a tool with a name guests could not call (empty, long, odd characters, or
/// a duplicate) is left out.
async fn list_tools(
    server: &str,
    client: &RunningService<RoleClient, ()>,
) -> Result<Vec<McpToolInfo>, String> {
    let mut tools: Vec<McpToolInfo> = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut cursors = std::collections::HashSet::new();
    let mut bytes = 0;
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .list_tools(Some(
                PaginatedRequestParams::default().with_cursor(cursor.clone()),
            ))
            .await
            .map_err(|e| e.to_string())?;
        for tool in page.tools {
            let valid = !tool.name.is_empty()
                && tool.name.len() <= 128
                && tool
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
            if !valid || !names.insert(tool.name.to_string()) {
                tracing::warn!(server, tool = %crate::text::inert(&tool.name), "MCP tool left out: unusable or repeated name");
                continue;
            }
            let info = McpToolInfo {
                name: format!("{}{server}/{}", super::PREFIX, tool.name),
                description: tool.description.as_deref().unwrap_or("").to_owned(),
                parameters: Value::Object((*tool.input_schema).clone()),
            };
            bytes += info.name.len() + info.description.len() + info.parameters.to_string().len();
            if bytes > MAX_LIST_BYTES || tools.len() >= MAX_TOOLS {
                tracing::warn!(
                    server,
                    kept = tools.len(),
                    "MCP tool list too large: the rest left out"
                );
                return Ok(tools);
            }
            tools.push(info);
        }
        match page.next_cursor {
            Some(next) if cursors.insert(next.clone()) => cursor = Some(next),
            _ => return Ok(tools),
        }
    }
    tracing::warn!(
        server,
        pages = MAX_PAGES,
        "MCP tool list has more pages: the rest left out"
    );
    Ok(tools)
}

/// Has the kernel kill the server if this host dies without dropping its
/// [`ProcessGroup`] (`kill -9`, a crash): `PR_SET_PDEATHSIG`, set in the child between
/// fork and exec. It reaches the server process itself, not processes it starts.
#[cfg(target_os = "linux")]
fn die_with_host(command: &mut tokio::process::Command) {
    let host = std::process::id();
    // SAFETY: the closure runs in the forked child before exec; it calls only prctl(2),
    // getppid(2) and _exit(2), which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The host died before the line above: nobody would ever kill it.
            if u32::try_from(libc::getppid()).ok() != Some(host) {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_host(_: &mut tokio::process::Command) {}

/// A spawned server in its own process group: dropped, the whole group is killed (a
/// server started through a shell or a launcher leaves nothing behind).
struct ProcessGroup(tokio::process::Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) on the group this host created for the child; no memory
            // is touched.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// Logs a server's stderr line by line, as inert text (never raw to a terminal), each
/// line bounded, the first [`STDERR_LINES`] lines only (the rest is read and dropped, so
/// the server never blocks on a full pipe).
async fn log_stderr(server: String, stderr: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut logged = 0;
    loop {
        line.clear();
        match (&mut lines)
            .take(STDERR_LINE_BYTES as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) if logged > STDERR_LINES => {}
            Ok(_) if logged == STDERR_LINES => {
                logged += 1;
                tracing::info!(server = %server, "MCP server: further stderr not logged");
            }
            Ok(_) => {
                logged += 1;
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches('\n');
                tracing::info!(server = %server, stderr = %crate::text::inert(text), "MCP server");
            }
        }
    }
}

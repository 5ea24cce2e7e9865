//! One MCP server, supervised: started on first use, restarted after it dies (with
//! backoff), its stderr read line by line into the host's log.
//!
//! Why lazily and one lock per server: a server that hangs at start holds up only the
//! calls to it (each bounded by its start timeout), never the host or another server;
//! one that crashed is started again by the next call rather than by a loop of its own.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ContentBlock, Tool as McpTool};
use rmcp::service::RunningService;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::{RoleClient, ServiceError, ServiceExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use super::config::McpServerConfig;
use crate::tools::ToolError;

/// Backoff after a failed start or a crash: 0.5 s, doubling, at most 30 s.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest stderr line logged whole.
const STDERR_LINE_BYTES: usize = 4096;
/// How many stderr lines of one server start are logged.
const STDERR_LINES: usize = 1000;

/// A running connection: the client, the tools it listed, and the child it owns.
struct Connection {
    client: RunningService<RoleClient, ()>,
    tools: Arc<Vec<McpTool>>,
    /// The spawned server (stdio), killed when the connection is dropped.
    _child: Option<ProcessGroup>,
}

enum State {
    /// Never started.
    Idle,
    Up(Arc<Connection>),
    /// Failed to start or died; not tried again before `retry_at`.
    Down {
        retry_at: Instant,
        backoff: Duration,
    },
}

/// One configured server.
pub struct McpServer {
    name: String,
    config: McpServerConfig,
    state: tokio::sync::Mutex<State>,
}

impl McpServer {
    pub fn new(name: String, config: McpServerConfig) -> Self {
        Self {
            name,
            config,
            state: tokio::sync::Mutex::new(State::Idle),
        }
    }

    /// The server's tools, starting it if needed.
    pub async fn tools(&self) -> Result<Arc<Vec<McpTool>>, ToolError> {
        Ok(self.connection().await?.tools.clone())
    }

    /// Calls `tool` with `arguments` (an object). Dropping the future tells the server
    /// the call is cancelled.
    pub async fn call(&self, tool: &str, arguments: Value) -> Result<Value, ToolError> {
        let connection = self.connection().await?;
        let Value::Object(arguments) = arguments else {
            return Err(ToolError::InvalidArguments(
                "arguments must be an object".into(),
            ));
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let result = match connection.client.call_tool(params).await {
            Ok(result) => result,
            Err(ServiceError::McpError(e)) => {
                return Err(ToolError::Failed(format!(
                    "MCP server '{}' refused the call: {}",
                    self.name, e.message
                )));
            }
            Err(e) => {
                tracing::warn!(server = %self.name, tool, error = %e, "MCP call failed");
                return Err(ToolError::Failed(format!(
                    "MCP server '{}' failed during the call (it is restarted on the next one)",
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
            return Err(ToolError::Failed(text.join("\n")));
        }
        Ok(match result.structured_content {
            Some(structured) => structured,
            None => Value::String(text.join("\n")),
        })
    }

    /// The live connection, started (or restarted) now if there is none and the
    /// backoff allows.
    async fn connection(&self) -> Result<Arc<Connection>, ToolError> {
        let mut state = self.state.lock().await;
        let backoff = match &*state {
            State::Up(connection) if !connection.client.peer().is_transport_closed() => {
                return Ok(connection.clone());
            }
            State::Up(_) => {
                tracing::warn!(server = %self.name, "MCP server is gone; restarting it");
                Duration::ZERO
            }
            State::Idle => Duration::ZERO,
            State::Down { retry_at, backoff } => {
                if Instant::now() < *retry_at {
                    return Err(self.unavailable());
                }
                *backoff
            }
        };
        match tokio::time::timeout(self.config.start_timeout, self.start()).await {
            Ok(Ok(connection)) => {
                let connection = Arc::new(connection);
                *state = State::Up(connection.clone());
                Ok(connection)
            }
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e,
                    _ => format!("did not start within {:?}", self.config.start_timeout),
                };
                tracing::warn!(server = %self.name, reason = %crate::text::inert(&why), "MCP server failed to start");
                // A crashed server is started again at once; one that fails to start
                // waits 0.5 s before the next try, then twice as long each time.
                let wait = backoff.max(FIRST_BACKOFF);
                *state = State::Down {
                    retry_at: Instant::now() + wait,
                    backoff: (wait * 2).min(MAX_BACKOFF),
                };
                Err(self.unavailable())
            }
        }
    }

    /// What the guest hears: no command, URL, token or cause (those are in the log).
    fn unavailable(&self) -> ToolError {
        ToolError::Failed(format!("MCP server '{}' is unavailable", self.name))
    }

    async fn start(&self) -> Result<Connection, String> {
        let (client, child) = match (&self.config.command, &self.config.url) {
            (Some(command), _) => {
                let mut child = tokio::process::Command::new(command)
                    .args(&self.config.args)
                    .envs(&self.config.env)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .process_group(0)
                    .spawn()
                    .map_err(|e| format!("cannot spawn {}: {e}", command.display()))?;
                let (Some(stdout), Some(stdin), Some(stderr)) =
                    (child.stdout.take(), child.stdin.take(), child.stderr.take())
                else {
                    return Err("no stdio pipes".into());
                };
                tokio::spawn(log_stderr(self.name.clone(), stderr));
                let transport = AsyncRwTransport::new_client(stdout, stdin)
                    .with_max_line_length(self.config.max_message_bytes);
                let client = ().serve(transport).await.map_err(|e| e.to_string())?;
                (client, Some(ProcessGroup(child)))
            }
            (None, Some(url)) => (super::http::connect(url, &self.config).await?, None),
            (None, None) => return Err("no transport configured".into()),
        };
        let tools = client.list_all_tools().await.map_err(|e| e.to_string())?;
        tracing::info!(server = %self.name, tools = tools.len(), "MCP server started");
        Ok(Connection {
            client,
            tools: Arc::new(tools),
            _child: child,
        })
    }
}

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

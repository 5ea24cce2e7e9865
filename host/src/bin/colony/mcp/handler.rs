//! The MCP side of `colony mcp`: one tool per plugin; a call is one worker.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use colony::{
    Colony, EventFilter, EventType, Manifest, Plugin, RecvError, ReportStatus, Runtime, Task,
};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

/// How long a call waits for its worker's report: the colony's hard timeout ends the
/// worker long before.
const REPORT_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A plugin offered as a tool.
pub(crate) struct Offered {
    tool: Tool,
    plugin: Plugin,
}

impl Offered {
    /// The plugin at `path`, loaded, with its tool description from its manifest's
    /// `[tool]` table (else its name and an object schema).
    pub(crate) async fn load(runtime: &Runtime, path: &Path) -> anyhow::Result<Self> {
        let (plugin, description) = if path.extension().is_some_and(|e| e == "toml") {
            let manifest = Manifest::load(path)?;
            let description = manifest.tool.clone();
            let plugin = runtime.plugin_from_manifest(manifest)?;
            plugin.load().await?;
            (plugin, description)
        } else {
            (crate::load_plugin(runtime, path).await?, None)
        };
        let description = description.unwrap_or(colony::ToolDescription {
            name: None,
            description: String::new(),
            input_schema: None,
        });
        let name = description.name.unwrap_or_else(|| plugin.name().to_owned());
        let schema: JsonObject = match description.input_schema {
            Some(Value::Object(schema)) => schema,
            _ => json!({"type": "object"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        Ok(Self {
            tool: Tool::new(name, description.description, Arc::new(schema)),
            plugin,
        })
    }
}

/// The server: the colony the calls run in, and the tools.
#[derive(Clone)]
pub(crate) struct PluginTools {
    colony: Colony,
    tools: Arc<Vec<Offered>>,
}

impl PluginTools {
    pub(crate) fn new(colony: Colony, tools: Vec<Offered>) -> anyhow::Result<Self> {
        let mut names = std::collections::HashSet::new();
        for offered in &tools {
            anyhow::ensure!(
                names.insert(offered.tool.name.clone()),
                "two plugins are offered as the tool '{}': name one in its manifest's [tool] table",
                offered.tool.name
            );
        }
        Ok(Self {
            colony,
            tools: Arc::new(tools),
        })
    }

    fn find(&self, name: &str) -> Option<&Offered> {
        self.tools.iter().find(|o| o.tool.name == name)
    }
}

impl ServerHandler for PluginTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("colony", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.tools.iter().map(|o| o.tool.clone()).collect(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.find(name).map(|o| o.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let offered = self.find(&request.name).ok_or_else(|| {
            ErrorData::invalid_params(format!("no tool named '{}'", request.name), None)
        })?;
        let input = Value::Object(request.arguments.unwrap_or_default());
        let task = match input.get("task") {
            Some(Value::String(task)) => task.clone(),
            _ => offered.tool.name.to_string(),
        };
        // Subscribed before the worker exists: no event of it is missed.
        let mut events = self.colony.bus().subscribe(EventFilter::all());
        let id = self
            .colony
            .run_parallel(&offered.plugin, vec![Task::new(task).with_input(input)])
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .remove(0);
        let report = self
            .colony
            .wait_for_reports(std::slice::from_ref(&id), REPORT_WAIT);
        tokio::pin!(report);
        let mut progress = Progress::new(&id, &context);
        let mut bus_open = true;
        let report = loop {
            tokio::select! {
                () = context.ct.cancelled() => {
                    let _ = self.colony.stop_worker(&id).await;
                    self.colony.forget(&id);
                    return Err(ErrorData::internal_error("the call was cancelled", None));
                }
                report = &mut report => break report,
                event = events.recv(), if bus_open => match event {
                    Ok(event) => progress.note(&event).await,
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => bus_open = false,
                },
            }
        };
        // What the worker published before its report and is still queued.
        while let Ok(Some(event)) = events.try_recv() {
            progress.note(&event).await;
        }
        // The journal keeps the worker; a long-running server need not.
        self.colony.forget(&id);
        let report = report
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .remove(0);
        let structured = json!({
            "worker_id": report.worker_id,
            "status": report.status,
            "summary": report.summary,
            "data": report.data,
            "error": report.error,
        });
        let text = vec![ContentBlock::text(report.summary.clone())];
        let mut result = if report.status == ReportStatus::Success {
            CallToolResult::success(text)
        } else {
            CallToolResult::error(text)
        };
        result.structured_content = Some(structured);
        Ok(result.into())
    }
}

/// Progress notifications a call may send at once, and how many more each second after
/// that: a guest may publish up to its event rate (1,000/s by default), and the client
/// should not hear every one.
const PROGRESS_BURST: f64 = 32.0;
const PROGRESS_PER_SECOND: f64 = 20.0;

/// A call's progress notifications: one per event its worker publishes (its report
/// excepted), when the client asked for progress — as many as [`PROGRESS_BURST`] at once,
/// then [`PROGRESS_PER_SECOND`]; the progress value counts every event, sent or not.
struct Progress<'a> {
    worker: &'a str,
    token: Option<rmcp::model::ProgressToken>,
    context: &'a RequestContext<RoleServer>,
    seen: u32,
    /// Notifications it may still send now, and when that was last worked out.
    allowance: (f64, tokio::time::Instant),
}

impl<'a> Progress<'a> {
    fn new(worker: &'a str, context: &'a RequestContext<RoleServer>) -> Self {
        Self {
            worker,
            token: context.meta.get_progress_token(),
            context,
            seen: 0,
            allowance: (PROGRESS_BURST, tokio::time::Instant::now()),
        }
    }

    /// Whether one more notification may go now (and, if so, spends it).
    fn allowed(&mut self) -> bool {
        let (left, since) = &mut self.allowance;
        let now = tokio::time::Instant::now();
        let earned = now.duration_since(*since).as_secs_f64() * PROGRESS_PER_SECOND;
        *left = (*left + earned).min(PROGRESS_BURST);
        *since = now;
        if *left < 1.0 {
            return false;
        }
        *left -= 1.0;
        true
    }

    async fn note(&mut self, event: &colony::AgentEvent) {
        if event.worker_id != self.worker || event.event_type == EventType::SubagentReport {
            return;
        }
        self.seen += 1;
        let Some(token) = self.token.clone() else {
            return;
        };
        if !self.allowed() {
            return;
        }
        let note = ProgressNotificationParam::new(token, f64::from(self.seen))
            .with_message(event.event_type.as_str().to_owned());
        let _ = self.context.peer.notify_progress(note).await;
    }
}

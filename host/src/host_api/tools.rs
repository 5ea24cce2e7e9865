//! `colony:agent/tools`: host tools, granted by name, within the worker's tool-call budget
//! and the tool timeout.

use std::sync::Arc;

use serde_json::{Value, json};

use super::HostState;
use super::taped::{Source, taped};
use crate::bindings::colony::agent::tools as wit;
use crate::replay::StepKind;
use crate::sandbox::{Held, HostMemory, OverBudget};
use crate::tools::{ToolContext, ToolError};

impl wit::Host for HostState {
    async fn granted(&mut self) -> wasmtime::Result<Vec<wit::ToolInfo>> {
        let worker = self.worker.clone();
        let live = async { Ok(self.granted_live().await) };
        Ok(taped(&worker, StepKind::ToolList, || json!({}), live)
            .await?
            .0)
    }

    async fn call(
        &mut self,
        name: String,
        arguments: String,
    ) -> wasmtime::Result<Result<String, wit::ToolError>> {
        #[cfg(feature = "telemetry")]
        if let Some(trace) = self.worker.trace() {
            let span = trace.tool(&name, None);
            let answer = self.call_untraced(name, arguments).await;
            span.finish(tool_outcome(&answer));
            return answer;
        }
        self.call_untraced(name, arguments).await
    }
}

impl HostState {
    /// `tools.granted`, from the registry and the MCP servers.
    async fn granted_live(&mut self) -> Vec<wit::ToolInfo> {
        let registry = &self.worker.services().tools;
        let grants = &self.worker.grants().tools;
        #[allow(unused_mut)]
        let mut granted: Vec<wit::ToolInfo> = grants
            .iter()
            .filter_map(|name| registry.get(name))
            .map(|tool| wit::ToolInfo {
                name: tool.name().to_owned(),
                description: tool.description().to_owned(),
                parameters: tool.parameters().to_string(),
            })
            .collect();
        #[cfg(feature = "mcp")]
        {
            let services = self.worker.services();
            let limit = self.worker.limits().tool_timeout;
            let listed = services.mcp.granted(grants, limit).await;
            let mut held = self.worker.memory.stream();
            for tool in listed {
                let parameters = tool.parameters.to_string();
                let size = tool.name.len() + tool.description.len() + parameters.len();
                // What the guest is handed is charged like any result: a server with a
                // large list shows a granted guest what fits, not all of it.
                if held.grow(size, "the MCP tool list").is_err() {
                    tracing::warn!(
                        worker = self.worker.id(),
                        "MCP tool list cut at the host memory budget"
                    );
                    break;
                }
                granted.push(wit::ToolInfo {
                    name: tool.name,
                    description: tool.description,
                    parameters,
                });
            }
        }
        granted
    }
}

/// How a tool call went, for its span.
#[cfg(feature = "telemetry")]
fn tool_outcome(answer: &wasmtime::Result<Result<String, wit::ToolError>>) -> Result<(), &str> {
    match answer {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(match e {
            wit::ToolError::UnknownTool(why)
            | wit::ToolError::NotGranted(why)
            | wit::ToolError::InvalidArguments(why)
            | wit::ToolError::Failed(why)
            | wit::ToolError::BudgetExhausted(why)
            | wit::ToolError::Timeout(why) => why.as_str(),
        }),
        Err(_) => Err("trap"),
    }
}

impl HostState {
    /// `tools.call`, untraced, on the worker's recording if it has one.
    async fn call_untraced(
        &mut self,
        name: String,
        arguments: String,
    ) -> wasmtime::Result<Result<String, wit::ToolError>> {
        let worker = self.worker.clone();
        let asked = worker
            .tape()
            .filter(|tape| tape.wants_calls())
            .map(|_| json!({"name": name, "arguments": arguments}));
        let live = self.call_live(name, arguments);
        let (answer, source) =
            taped(&worker, StepKind::Tool, || asked.unwrap_or_default(), live).await?;
        // A replayed call counts against the budget as the recorded one did.
        if source == Source::Recording
            && !matches!(
                answer,
                Err(wit::ToolError::UnknownTool(_) | wit::ToolError::NotGranted(_))
            )
        {
            let _ = worker.take_tool_call();
        }
        Ok(answer)
    }

    /// `tools.call`, calling the tool.
    async fn call_live(
        &mut self,
        name: String,
        arguments: String,
    ) -> wasmtime::Result<Result<String, wit::ToolError>> {
        let worker = self.worker.clone();
        let tool = match self.resolve(&name) {
            Ok(tool) => tool,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(budget) = worker.take_tool_call() {
            return Ok(Err(wit::ToolError::BudgetExhausted(format!(
                "tool-call budget of {budget} spent"
            ))));
        }
        let arguments = match self.parse_guest_json("tool arguments", &arguments) {
            Ok(value) => value,
            Err(e) => return Ok(Err(wit::ToolError::InvalidArguments(e))),
        };
        let ctx = ToolContext {
            worker_id: worker.id().to_owned(),
            data_dir: worker.storage.as_ref().map(|s| s.root().join("data")),
            dirs: worker.grants().dirs.clone(),
            network: worker.grants().network_patterns(),
            max_result_bytes: worker.memory.available(),
            disk: worker.disk.clone(),
        };
        let limit = worker.limits().tool_timeout;
        let called = async {
            match tool {
                Resolved::Host(tool) => tool.call(&ctx, arguments).await,
                #[cfg(feature = "mcp")]
                Resolved::Mcp => worker.services().mcp.call(&name, arguments).await,
            }
        };
        Ok(match tokio::time::timeout(limit, called).await {
            Err(_) => Err(wit::ToolError::Timeout(format!(
                "tool '{name}' took longer than {}",
                humantime::format_duration(limit)
            ))),
            Ok(Err(ToolError::InvalidArguments(e))) => Err(wit::ToolError::InvalidArguments(e)),
            Ok(Err(ToolError::Failed(e))) => Err(wit::ToolError::Failed(e)),
            Ok(Ok(value)) => encode_result(&name, &value, &worker.memory),
        })
    }
}

/// Where a granted tool's calls go.
enum Resolved {
    /// A tool of the runtime's registry.
    Host(Arc<dyn crate::tools::Tool>),
    /// A tool of an MCP server (`mcp:SERVER/TOOL`).
    #[cfg(feature = "mcp")]
    Mcp,
}

impl HostState {
    /// The tool `name`, if it exists and the plugin is granted it.
    fn resolve(&self, name: &str) -> Result<Resolved, wit::ToolError> {
        let worker = &self.worker;
        let not_granted = || {
            wit::ToolError::NotGranted(format!(
                "tool '{name}' is not granted to plugin '{}'",
                worker.plugin_name()
            ))
        };
        #[cfg(feature = "mcp")]
        if crate::tools::mcp::split(name).is_some() {
            return if crate::tools::mcp::is_granted(&worker.grants().tools, name) {
                Ok(Resolved::Mcp)
            } else {
                Err(not_granted())
            };
        }
        let Some(tool) = worker.services().tools.get(name).cloned() else {
            return Err(wit::ToolError::UnknownTool(format!(
                "no tool named '{name}'"
            )));
        };
        if !worker.grants().tools.iter().any(|g| g == name) {
            return Err(not_granted());
        }
        Ok(Resolved::Host(tool))
    }
}

/// The tool's result as JSON text, written into a buffer charged to the worker's host
/// memory budget as it grows: a result over the budget is refused, not built first.
fn encode_result(
    name: &str,
    value: &Value,
    memory: &Arc<HostMemory>,
) -> Result<String, wit::ToolError> {
    let mut out = Charged {
        bytes: Vec::new(),
        held: memory.stream(),
        what: format!("the result of tool '{name}'"),
        over: None,
    };
    if serde_json::to_writer(&mut out, value).is_err() {
        let reason = out
            .over
            .map_or_else(|| "cannot encode the result".to_owned(), |e| e.to_string());
        return Err(wit::ToolError::Failed(reason));
    }
    Ok(String::from_utf8(out.bytes).unwrap_or_default())
}

/// A byte buffer whose growth is charged to a host memory budget first.
struct Charged {
    bytes: Vec<u8>,
    held: Held,
    what: String,
    over: Option<OverBudget>,
}

impl std::io::Write for Charged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let spare = self.held.bytes() - self.bytes.len();
        if buf.len() > spare
            && let Err(e) = self.held.grow(buf.len() - spare, &self.what)
        {
            self.over = Some(e);
            return Err(std::io::Error::other("over the host memory budget"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

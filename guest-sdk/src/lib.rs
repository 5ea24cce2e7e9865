//! # Colony guest SDK
//!
//! Write a Colony agent worker in Rust: implement [`Agent`] on a type, export it with
//! [`export_agent!`], and build with `cargo build --release --target wasm32-wasip2`. The
//! output (`target/wasm32-wasip2/release/<crate>.wasm`) is a component the Colony host
//! loads directly.
//!
//! ```ignore
//! use colony_guest_sdk::{Agent, Context, json, report, Status, Value};
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! impl Agent for Echo {
//!     fn run(&mut self, ctx: Context) -> Result<Value, String> {
//!         report::to_parent(Status::Success, &format!("echoed {}", ctx.task), json!({}))?;
//!         Ok(json!({ "echo": ctx.task }))
//!     }
//! }
//!
//! colony_guest_sdk::export_agent!(Echo);
//! ```
//!
//! One value of the agent type lives as long as the instance: `run` and every later
//! `on_message` turn of a persistent worker get the same `&mut self`, so state kept in
//! fields survives across turns.

extern crate self as colony_guest_sdk;

use std::cell::RefCell;

pub use serde_json::{self, Map, Value, json};

/// The bindings generated from `wit/agent.wit`. Prefer the helpers below.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "agent",
        pub_export_macro: true,
        export_macro_name: "__export_agent_world",
        default_bindings_module: "colony_guest_sdk::bindings",
        runtime_path: "colony_guest_sdk::__private::wit_bindgen::rt",
    });
}

use bindings::colony::agent::{
    conversation as wit_conversation, events as wit_events, inbox as wit_inbox, llm as wit_llm,
    peers as wit_peers, report as wit_report, tools as wit_tools, types,
};

pub use types::{LogLevel, MessagePart, NewPart, ReportStatus as Status};

/// What one execution is about (the WIT `run-context`, with `input` parsed).
#[derive(Debug, Clone)]
pub struct Context {
    pub worker_id: String,
    pub colony_id: String,
    pub task: String,
    pub stream_id: String,
    pub execution_id: String,
    pub persistent: bool,
    /// The task's input: a JSON object (`{}` when there is none).
    pub input: Value,
}

/// A Colony agent. One value lives as long as the guest instance.
pub trait Agent: Default + 'static {
    /// One execution. `Ok` carries the outputs (a JSON object; anything else is wrapped
    /// as `{"value": …}`), `Err` why the run failed.
    fn run(&mut self, ctx: Context) -> Result<Value, String>;

    /// One turn of a persistent worker, with the injected message. The default refuses:
    /// override it for an agent that serves turns.
    fn on_message(&mut self, message: String) -> Result<Value, String> {
        let _ = message;
        Err("this agent does not take messages".to_owned())
    }
}

/// The report to the parent.
pub mod report {
    use super::*;

    /// Files the report the parent gets when this worker ends; the last call wins.
    /// `data` should be a JSON object. Errors when the host refuses it (too large).
    pub fn to_parent(status: Status, summary: &str, data: Value) -> Result<(), String> {
        wit_report::report_to_parent(status, summary, &data.to_string())
    }
}

/// Progress events and logs.
pub mod events {
    use super::*;

    /// Publishes a progress event of type `event_type` (1–64 chars of `[A-Za-z0-9_.-]`,
    /// not one of the host's own types) with a JSON object as data.
    pub fn emit(event_type: &str, data: Value) -> Result<(), String> {
        wit_events::emit(event_type, &data.to_string())
    }

    /// Writes a log line at `level`.
    pub fn log(level: LogLevel, message: &str) {
        wit_events::log(level, message)
    }

    /// Writes an info log line.
    pub fn info(message: &str) {
        log(LogLevel::Info, message)
    }

    /// Writes a warning log line.
    pub fn warn(message: &str) {
        log(LogLevel::Warn, message)
    }
}

/// Messages injected while the worker runs.
pub mod inbox {
    use super::*;
    use std::time::Duration;

    /// Every message injected and not yet delivered, oldest first; never blocks.
    pub fn drain() -> Vec<String> {
        wit_inbox::drain()
    }

    /// The next injected message, waiting up to `timeout` (capped by the host).
    pub fn wait(timeout: Duration) -> Option<String> {
        wit_inbox::wait(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX))
    }
}

/// The worker's conversation (seeded parts first).
pub mod conversation {
    use super::*;

    /// Every part, in ascending `seq`, read page by page.
    pub fn read() -> Result<Vec<MessagePart>, String> {
        let mut parts = Vec::new();
        let mut start = Some(0);
        while let Some(from) = start {
            let page = read_page(from, 0)?;
            parts.extend(page.parts);
            start = page.next;
        }
        Ok(parts)
    }

    /// One page: parts with `seq` ≥ `start`, at most `max_bytes` of text (`0`: as much
    /// as the host allows), and where the next page starts.
    pub fn read_page(start: u64, max_bytes: u32) -> Result<wit_conversation::Page, String> {
        wit_conversation::read(start, max_bytes)
    }

    /// Appends a message with `role` and `content`; returns its `seq`.
    pub fn append(role: &str, content: &str) -> Result<u64, String> {
        append_part(&NewPart {
            role: role.to_owned(),
            content: content.to_owned(),
            tool_calls: None,
            tool_use_id: None,
            phase: None,
        })
    }

    /// Appends a full part; returns its `seq`.
    pub fn append_part(part: &NewPart) -> Result<u64, String> {
        wit_conversation::append(part)
    }
}

/// Other workers of the same colony.
pub mod peers {
    use super::wit_peers;

    /// Sends `message` to worker `to` (a sibling's id, or `"overseer"`) through the host.
    pub fn send(to: &str, message: &str) -> Result<(), String> {
        wit_peers::send(to, message)
    }
}

/// The language model, through the host (which picks the provider and holds the key).
pub mod llm {
    pub use super::wit_llm::{
        LlmError, Message, Request, Response, Role, StopReason, ToolCall, ToolSpec, Usage,
    };

    /// One chat completion.
    pub fn complete(request: &Request) -> Result<Response, LlmError> {
        super::wit_llm::complete(request)
    }

    /// A message with just a role and text.
    pub fn message(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    impl LlmError {
        /// The error as one line: its kind, then the host's message.
        pub fn describe(&self) -> String {
            match self {
                LlmError::BudgetExhausted(m) => format!("token budget exhausted: {m}"),
                LlmError::Unavailable(m) => format!("model unavailable: {m}"),
                LlmError::InvalidRequest(m) => format!("invalid request: {m}"),
                LlmError::Timeout(m) => format!("model timeout: {m}"),
                LlmError::NotConfigured(m) => format!("no model: {m}"),
            }
        }
    }
}

/// Host tools granted to this plugin.
pub mod tools {
    pub use super::wit_tools::{ToolError, ToolInfo};

    /// The tools this plugin may call.
    pub fn granted() -> Vec<ToolInfo> {
        super::wit_tools::granted()
    }

    /// Calls tool `name` with a JSON object of arguments; returns its JSON result.
    pub fn call(name: &str, arguments: &super::Value) -> Result<super::Value, ToolError> {
        let text = super::wit_tools::call(name, &arguments.to_string())?;
        Ok(serde_json::from_str(&text).unwrap_or(super::Value::String(text)))
    }

    impl ToolError {
        /// The host's message.
        pub fn describe(&self) -> &str {
            match self {
                ToolError::UnknownTool(m)
                | ToolError::NotGranted(m)
                | ToolError::InvalidArguments(m)
                | ToolError::Failed(m)
                | ToolError::Timeout(m)
                | ToolError::BudgetExhausted(m) => m,
            }
        }
    }
}

/// Exports `$agent` (a type implementing [`Agent`]) as this component's `colony:agent`
/// world. Use it once per guest crate.
#[macro_export]
macro_rules! export_agent {
    ($agent:ty) => {
        struct __ColonyAgentExport;

        impl $crate::bindings::Guest for __ColonyAgentExport {
            fn run(
                context: $crate::bindings::colony::agent::types::RunContext,
            ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                $crate::__private::run::<$agent>(context)
            }

            fn on_message(
                message: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                $crate::__private::on_message::<$agent>(message)
            }
        }

        $crate::bindings::__export_agent_world!(__ColonyAgentExport);
    };
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use std::any::Any;

    pub use wit_bindgen;

    thread_local! {
        static AGENT: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    fn with_agent<A: Agent, R>(f: impl FnOnce(&mut A) -> R) -> R {
        AGENT.with(|cell| {
            let mut slot = cell.borrow_mut();
            let agent = slot
                .get_or_insert_with(|| Box::new(A::default()))
                .downcast_mut::<A>()
                .expect("one agent type per component");
            f(agent)
        })
    }

    fn encode(result: Result<Value, String>) -> Result<String, String> {
        result.map(|value| value.to_string())
    }

    pub fn run<A: Agent>(context: types::RunContext) -> Result<String, String> {
        let input = if context.input.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(&context.input).map_err(|e| format!("invalid input JSON: {e}"))?
        };
        let ctx = Context {
            worker_id: context.worker_id,
            colony_id: context.colony_id,
            task: context.task,
            stream_id: context.stream_id,
            execution_id: context.execution_id,
            persistent: context.persistent,
            input,
        };
        encode(with_agent::<A, _>(|agent| agent.run(ctx)))
    }

    pub fn on_message<A: Agent>(message: String) -> Result<String, String> {
        encode(with_agent::<A, _>(|agent| agent.on_message(message)))
    }
}

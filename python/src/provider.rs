//! A model provider written in Python: an object with an async `complete(request)`,
//! plugged in as the host's LLM provider, so a framework keeps its own model client while
//! its guests stay sandboxed.
//!
//! `request` is a dict: `worker`, `system`, `messages` (`role`, `content`, `tool_calls`,
//! `tool_call_id`), `tools` (`name`, `description`, `parameters`), `max_tokens`,
//! `temperature`. The answer is a dict: `text`, `tool_calls` (`id`, `name`,
//! `arguments`), `stop_reason` (`end_turn`, `tool_use`, `max_tokens`, `other`; default
//! `tool_use` when there are tool calls) and `usage` (`input_tokens`, `output_tokens`),
//! which counts against the worker's token budget like any provider's; the OpenAI names
//! (`prompt_tokens`, `stop`, `length`, arguments as a JSON string) are read too, unknown
//! keys ignored. An answer larger than the worker's host memory budget has room for is
//! refused before it is copied. An exception is the model being unavailable to the
//! guest, which learns only the exception's type (a model client's messages carry URLs
//! and keys); the host's log gets the traceback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use colony::llm::{
    CallContext, ChatRequest, ChatResponse, LlmError, LlmProvider, StopReason, ToolCall, Usage,
};
use pyo3::prelude::*;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event_loop::{self, CallError, LoopSlot};

/// The provider object and the loop it runs on.
pub struct PythonProvider {
    object: Arc<Py<PyAny>>,
    event_loop: Arc<LoopSlot>,
    /// Numbers the tool calls an answer gives no id, unique across the host.
    next_call: AtomicU64,
}

impl PythonProvider {
    /// `object` as the provider; it must have an async `complete` method.
    pub fn new(object: &Bound<'_, PyAny>, event_loop: Arc<LoopSlot>) -> PyResult<Self> {
        let py = object.py();
        let complete = object.getattr("complete").map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(
                "a model provider needs an async `complete(request)` method",
            )
        })?;
        let is_async: bool = py
            .import("inspect")?
            .call_method1("iscoroutinefunction", (&complete,))?
            .is_truthy()?;
        if !is_async {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "the model provider's `complete` must be an `async def`",
            ));
        }
        Ok(Self {
            object: Arc::new(object.clone().unbind()),
            event_loop,
            next_call: AtomicU64::new(0),
        })
    }
}

#[derive(Serialize)]
struct Request<'a> {
    worker: &'a str,
    #[serde(flatten)]
    request: &'a ChatRequest,
}

/// The answer, read leniently: unknown keys are ignored, and the OpenAI names of the
/// usage fields and stop reasons are accepted as well.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<AnswerCall>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<AnswerUsage>,
}

#[derive(Deserialize)]
struct AnswerCall {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize, Default)]
struct AnswerUsage {
    #[serde(default, alias = "prompt_tokens")]
    input_tokens: Option<u32>,
    #[serde(default, alias = "completion_tokens")]
    output_tokens: Option<u32>,
}

fn stop_reason(name: &str) -> StopReason {
    match name {
        "end_turn" | "stop" => StopReason::EndTurn,
        "tool_use" | "tool_calls" => StopReason::ToolUse,
        "max_tokens" | "length" => StopReason::MaxTokens,
        _ => StopReason::Other,
    }
}

/// Tool-call arguments as an object: a JSON string (the OpenAI wire form) is parsed,
/// anything else that is not an object is kept under `_raw`.
fn arguments(value: Value) -> Value {
    match value {
        Value::Null => Value::Object(Default::default()),
        Value::Object(_) => value,
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(parsed @ Value::Object(_)) => parsed,
            _ => serde_json::json!({ "_raw": text }),
        },
        other => serde_json::json!({ "_raw": other }),
    }
}

/// Most bytes of streamed text in one `LLM_TEXT_DELTA` event.
const DELTA_BYTES: usize = 4096;

#[async_trait::async_trait]
impl LlmProvider for PythonProvider {
    fn name(&self) -> &str {
        "python"
    }

    async fn complete(
        &self,
        call: &CallContext,
        request: &ChatRequest,
    ) -> Result<ChatResponse, LlmError> {
        let text = serde_json::to_string(&Request {
            worker: &call.worker,
            request,
        })
        .map_err(|e| LlmError::InvalidRequest(e.to_string()))?;
        let object = self.object.clone();
        let what = format!("the model provider (called by worker '{}')", call.worker);
        let json = event_loop::call(
            self.event_loop.clone(),
            what,
            call.max_response_bytes,
            move |py| {
                let request = crate::json::loads(py, &text)?;
                object.bind(py).call_method1("complete", (request,))
            },
        )
        .await
        .map_err(|e| match e {
            CallError::TooLarge(_) => call.too_large(),
            // The guest learns the kind of failure, not the message: a model client's
            // errors carry URLs and keys. The host's log has it all.
            CallError::Raised { kind, .. } => {
                LlmError::Unavailable(format!("the python provider raised {kind}"))
            }
            other => LlmError::Unavailable(format!("python provider: {other}")),
        })?;
        let answer: Answer = serde_json::from_str(&json).map_err(|e| {
            LlmError::Unavailable(format!("python provider: unreadable answer: {e}"))
        })?;
        let tool_calls: Vec<ToolCall> = answer
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|c| ToolCall {
                id: c.id.unwrap_or_else(|| {
                    format!("call-{}", self.next_call.fetch_add(1, Ordering::Relaxed))
                }),
                name: c.name,
                arguments: arguments(c.arguments),
            })
            .collect();
        let text = answer.text.unwrap_or_default();
        for piece in pieces(&text, DELTA_BYTES) {
            (call.on_delta)(piece);
        }
        let stop_reason = match answer.stop_reason.as_deref() {
            Some(name) => stop_reason(name),
            None if tool_calls.is_empty() => StopReason::EndTurn,
            None => StopReason::ToolUse,
        };
        let usage = answer.usage.unwrap_or_default();
        Ok(ChatResponse {
            text,
            tool_calls,
            stop_reason,
            usage: Usage {
                input_tokens: usage.input_tokens.unwrap_or(0),
                output_tokens: usage.output_tokens.unwrap_or(0),
            },
        })
    }
}

/// `text` in pieces of at most `bytes` bytes, cut at character boundaries.
fn pieces(text: &str, bytes: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(bytes);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

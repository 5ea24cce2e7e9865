//! A model provider written in Python: an object with an async `complete(request)`,
//! plugged in as the host's LLM provider, so a framework keeps its own model client while
//! its guests stay sandboxed.
//!
//! `request` is a dict: `worker`, `system`, `messages` (`role`, `content`, `tool_calls`,
//! `tool_call_id`), `tools` (`name`, `description`, `parameters`), `max_tokens`,
//! `temperature`. The answer is a dict: `text`, `tool_calls` (`id`, `name`,
//! `arguments`), `stop_reason` (`end_turn`, `tool_use`, `max_tokens`, `other`; default
//! `tool_use` when there are tool calls) and `usage` (`input_tokens`, `output_tokens`),
//! which counts against the worker's token budget like any provider's. An answer larger
//! than the worker's host memory budget has room for is refused; an exception is the
//! model being unavailable to the guest, with the exception's message.

use std::sync::Arc;

use colony::llm::{
    CallContext, ChatRequest, ChatResponse, LlmError, LlmProvider, StopReason, ToolCall, Usage,
};
use pyo3::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event_loop::{self, LoopSlot};

/// The provider object and the loop it runs on.
pub struct PythonProvider {
    object: Arc<Py<PyAny>>,
    event_loop: Arc<LoopSlot>,
}

impl PythonProvider {
    /// `object` as the provider; it must have a `complete` method.
    pub fn new(object: &Bound<'_, PyAny>, event_loop: Arc<LoopSlot>) -> PyResult<Self> {
        if !object.hasattr("complete")? {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "a model provider needs an async `complete(request)` method",
            ));
        }
        Ok(Self {
            object: Arc::new(object.clone().unbind()),
            event_loop,
        })
    }
}

#[derive(Serialize)]
struct Request<'a> {
    worker: &'a str,
    #[serde(flatten)]
    request: &'a ChatRequest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    #[serde(default)]
    text: String,
    #[serde(default)]
    tool_calls: Vec<AnswerCall>,
    #[serde(default)]
    stop_reason: Option<StopReason>,
    #[serde(default)]
    usage: Usage,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerCall {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    arguments: Value,
}

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
        let json = event_loop::call(self.event_loop.clone(), move |py| {
            let request = crate::json::loads(py, &text)?;
            object.bind(py).call_method1("complete", (request,))
        })
        .await
        .map_err(|e| LlmError::Unavailable(format!("python provider: {e}")))?;
        if json.len() > call.max_response_bytes {
            return Err(call.too_large());
        }
        let answer: Answer = serde_json::from_str(&json).map_err(|e| {
            LlmError::Unavailable(format!("python provider: unreadable answer: {e}"))
        })?;
        let tool_calls: Vec<ToolCall> = answer
            .tool_calls
            .into_iter()
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: c.id.unwrap_or_else(|| format!("call-{i}")),
                name: c.name,
                arguments: match c.arguments {
                    Value::Null => Value::Object(Default::default()),
                    other => other,
                },
            })
            .collect();
        if !answer.text.is_empty() {
            (call.on_delta)(&answer.text);
        }
        let stop_reason = answer.stop_reason.unwrap_or(if tool_calls.is_empty() {
            StopReason::EndTurn
        } else {
            StopReason::ToolUse
        });
        Ok(ChatResponse {
            text: answer.text,
            tool_calls,
            stop_reason,
            usage: answer.usage,
        })
    }
}

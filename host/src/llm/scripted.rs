//! [`ScriptedProvider`]: replays model responses from a JSON file, offline and
//! deterministic — for demos and tests.
//!
//! The script is a JSON array of steps. Each worker replays the steps without `when` in
//! order, from the first; a step with `when` is used instead whenever the latest user or
//! tool message contains its text (so a script can react to, say, "[SOFT TIMEOUT]").
//!
//! ```json
//! [
//!   {"tool_calls": [{"name": "time.now", "arguments": {}}]},
//!   {"text": "It is late; here is the summary."},
//!   {"when": "[SOFT TIMEOUT]", "text": "Stopping early as asked."}
//! ]
//! ```
//! `usage` may be given per step; otherwise it is estimated as a quarter token per byte.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;

use super::{
    CallContext, ChatRequest, ChatResponse, LlmError, LlmProvider, Role, StopReason, ToolCall,
    Usage,
};
use crate::error::ManifestError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(default)]
    when: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    tool_calls: Vec<ScriptedCall>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedCall {
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// Replays a script of responses, per worker.
pub struct ScriptedProvider {
    steps: Vec<Step>,
    cursors: Mutex<HashMap<String, usize>>,
}

impl ScriptedProvider {
    /// Reads a script file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        let text = crate::manifest::read_text(path)?;
        Self::parse(&text).map_err(|reason| ManifestError::Invalid {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses a script.
    pub fn parse(script: &str) -> Result<Self, String> {
        let steps: Vec<Step> = serde_json::from_str(script).map_err(|e| e.to_string())?;
        Ok(Self {
            steps,
            cursors: Mutex::new(HashMap::new()),
        })
    }

    fn next_step(&self, worker: &str, request: &ChatRequest) -> Option<Step> {
        let latest = request
            .messages
            .iter()
            .rev()
            .find(|m| matches!(m.role, Role::User | Role::Tool))
            .map_or("", |m| m.content.as_str());
        if let Some(step) = self
            .steps
            .iter()
            .find(|s| s.when.as_deref().is_some_and(|w| latest.contains(w)))
        {
            return Some(step.clone());
        }
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        let cursor = cursors.entry(worker.to_owned()).or_insert(0);
        let step = self
            .steps
            .iter()
            .filter(|s| s.when.is_none())
            .nth(*cursor)?
            .clone();
        *cursor += 1;
        Some(step)
    }
}

fn estimate(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(4)).unwrap_or(u32::MAX)
}

#[async_trait::async_trait]
impl LlmProvider for ScriptedProvider {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn complete(
        &self,
        call: &CallContext,
        request: &ChatRequest,
    ) -> Result<ChatResponse, LlmError> {
        let step = self
            .next_step(&call.worker, request)
            .ok_or_else(|| LlmError::Unavailable("the script has no more responses".into()))?;
        for (i, word) in step.text.split(' ').enumerate() {
            let delta = if i == 0 {
                word.to_owned()
            } else {
                format!(" {word}")
            };
            (call.on_delta)(&delta);
        }
        let tool_calls: Vec<ToolCall> = step
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: format!("call_{i}"),
                name: c.name.clone(),
                arguments: if c.arguments.is_null() {
                    Value::Object(Default::default())
                } else {
                    c.arguments.clone()
                },
            })
            .collect();
        let size = step.text.len()
            + tool_calls
                .iter()
                .map(|c| c.id.len() + c.name.len() + c.arguments.to_string().len())
                .sum::<usize>();
        if size > call.max_response_bytes {
            return Err(call.too_large());
        }
        let input_bytes: usize = request
            .messages
            .iter()
            .map(|m| m.content.len())
            .sum::<usize>()
            + request.system.as_ref().map_or(0, String::len);
        let usage = step.usage.unwrap_or(Usage {
            input_tokens: estimate(input_bytes),
            output_tokens: estimate(step.text.len()),
        });
        Ok(ChatResponse {
            stop_reason: if tool_calls.is_empty() {
                StopReason::EndTurn
            } else {
                StopReason::ToolUse
            },
            text: step.text,
            tool_calls,
            usage,
        })
    }
}

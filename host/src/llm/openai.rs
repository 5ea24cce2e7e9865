//! [`OpenAiProvider`]: an OpenAI-compatible `/chat/completions` endpoint, streamed.
//!
//! Works against OpenAI, vLLM, llama.cpp's server and Ollama. Each call streams
//! (`stream: true`, server-sent events), so text deltas reach the host as they come; tool
//! calls are assembled from their streamed fragments. A 429, a 5xx or a connection
//! failure is retried with exponential backoff (honouring `Retry-After`); the whole call,
//! retries included, is bounded by the caller's timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{
    ChatRequest, ChatResponse, DeltaSink, LlmConfig, LlmError, LlmProvider, Role, StopReason,
    ToolCall, Usage,
};

/// An OpenAI-compatible chat-completions client.
pub struct OpenAiProvider {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    max_retries: u32,
    backoff: Duration,
}

impl OpenAiProvider {
    /// A client for `base_url` (e.g. `http://localhost:8000/v1`) and `model`.
    pub fn new(base_url: &str, model: &str, api_key: Option<String>) -> Self {
        Self {
            client: reqwest::Client::new(),
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            api_key,
            max_retries: 3,
            backoff: Duration::from_millis(500),
        }
    }

    /// Sets the retry policy.
    pub fn with_retries(mut self, max_retries: u32, backoff: Duration) -> Self {
        self.max_retries = max_retries;
        self.backoff = backoff;
        self
    }

    pub(crate) fn from_config(config: &LlmConfig) -> Result<Self, String> {
        if config.model.is_empty() {
            return Err("the openai provider needs `model`".into());
        }
        let key = std::env::var(&config.api_key_env)
            .ok()
            .filter(|k| !k.is_empty());
        Ok(Self::new(&config.base_url, &config.model, key)
            .with_retries(config.max_retries, config.backoff))
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        for m in &request.messages {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => "tool",
            };
            let mut message = json!({"role": role, "content": m.content});
            if !m.tool_calls.is_empty() {
                message["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments.to_string()}})
                    })
                    .collect();
            }
            if let Some(id) = &m.tool_call_id {
                message["tool_call_id"] = json!(id);
            }
            messages.push(message);
        }
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
        }
        if let Some(max) = request.max_tokens {
            body["max_tokens"] = json!(max);
        }
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        body
    }

    /// One attempt. `Err((retryable, wait, error))`.
    async fn attempt(
        &self,
        body: &Value,
        on_delta: &DeltaSink,
    ) -> Result<ChatResponse, (bool, Option<Duration>, LlmError)> {
        let mut post = self.client.post(&self.url).json(body);
        if let Some(key) = &self.api_key {
            post = post.bearer_auth(key);
        }
        let response = post.send().await.map_err(|e| {
            (
                true,
                None,
                LlmError::Unavailable(format!("cannot reach the model: {e}")),
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(Duration::from_secs_f64);
            let text = response.text().await.unwrap_or_default();
            let detail: String = format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            );
            let retryable = status.as_u16() == 429 || status.is_server_error();
            let error = if retryable {
                LlmError::Unavailable(detail)
            } else {
                LlmError::InvalidRequest(detail)
            };
            return Err((retryable, retry_after, error));
        }
        let mut stream = Accumulator::default();
        let mut bytes = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|e| {
                (
                    true,
                    None,
                    LlmError::Unavailable(format!("stream broke: {e}")),
                )
            })?;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                if stream.line(line.trim(), on_delta) {
                    return Ok(stream.finish());
                }
            }
        }
        Ok(stream.finish())
    }
}

/// Assembles a streamed completion.
#[derive(Default)]
struct Accumulator {
    text: String,
    /// Tool-call fragments by index: (id, name, arguments text).
    calls: BTreeMap<u64, (String, String, String)>,
    finish: Option<String>,
    usage: Usage,
}

impl Accumulator {
    /// Takes one SSE line; true at `[DONE]`.
    fn line(&mut self, line: &str, on_delta: &DeltaSink) -> bool {
        let Some(data) = line.strip_prefix("data:") else {
            return false;
        };
        let data = data.trim();
        if data == "[DONE]" {
            return true;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return false;
        };
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            let get = |k: &str| {
                usage[k]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0)
            };
            self.usage = Usage {
                input_tokens: get("prompt_tokens"),
                output_tokens: get("completion_tokens"),
            };
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return false;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text.push_str(text);
            on_delta(text);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let entry = self
                .calls
                .entry(call["index"].as_u64().unwrap_or(0))
                .or_default();
            if let Some(id) = call["id"].as_str() {
                entry.0 = id.to_owned();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                entry.1.push_str(name);
            }
            if let Some(args) = call["function"]["arguments"].as_str() {
                entry.2.push_str(args);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish = Some(reason.to_owned());
        }
        false
    }

    fn finish(self) -> ChatResponse {
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_values()
            .map(|(id, name, args)| ToolCall {
                id,
                name,
                arguments: serde_json::from_str(&args).unwrap_or_else(|_| json!({"_raw": args})),
            })
            .collect();
        let stop_reason = match self.finish.as_deref() {
            Some("stop") | None if tool_calls.is_empty() => StopReason::EndTurn,
            Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
            _ if !tool_calls.is_empty() => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            _ => StopReason::Other,
        };
        ChatResponse {
            text: self.text,
            tool_calls,
            stop_reason,
            usage: self.usage,
        }
    }
}

#[async_trait::async_trait]
impl LlmProvider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai"
    }

    async fn complete(
        &self,
        _worker: &str,
        request: &ChatRequest,
        on_delta: &DeltaSink,
    ) -> Result<ChatResponse, LlmError> {
        let body = self.body(request);
        let mut attempt = 0;
        loop {
            match self.attempt(&body, on_delta).await {
                Ok(response) => return Ok(response),
                Err((true, wait, error)) if attempt < self.max_retries => {
                    let backoff = self.backoff * 2u32.saturating_pow(attempt);
                    let wait = wait.unwrap_or(backoff).min(Duration::from_secs(30));
                    tracing::info!(
                        "model call failed ({error}); retry {} in {wait:?}",
                        attempt + 1
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err((_, _, error)) => return Err(error),
            }
        }
    }
}

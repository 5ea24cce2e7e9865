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

use super::wire_names::WireNames;
use super::{
    CallContext, ChatRequest, ChatResponse, DeltaSink, LlmConfig, LlmError, LlmProvider, Role,
    StopReason, ToolCall, Usage,
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

    fn body(&self, request: &ChatRequest, names: &WireNames) -> Value {
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
                        "function": {"name": names.wire(&c.name), "arguments": c.arguments.to_string()}})
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
                    "name": names.wire(&t.name), "description": t.description, "parameters": t.parameters}})
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
        call: &CallContext,
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
                .and_then(retry_after);
            let text = error_body(response).await;
            let detail = format!("HTTP {status}: {text}");
            let retryable = status.as_u16() == 429 || status.is_server_error();
            let error = if retryable {
                LlmError::Unavailable(detail)
            } else {
                LlmError::InvalidRequest(detail)
            };
            return Err((retryable, retry_after, error));
        }
        let mut stream = Accumulator::new(call.max_response_bytes);
        let mut bytes = response.bytes_stream();
        // Raw bytes until a whole line is in: a character split across two chunks is
        // decoded once both halves are here.
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|e| {
                (
                    true,
                    None,
                    LlmError::Unavailable(format!("stream broke: {e}")),
                )
            })?;
            buffer.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(end) = buffer[start..].iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&buffer[start..start + end]);
                start += end + 1;
                match stream.line(line.trim(), &call.on_delta) {
                    Ok(true) => return Ok(stream.finish()),
                    Ok(false) => {}
                    Err(()) => return Err((false, None, call.too_large())),
                }
            }
            buffer.drain(..start);
            // One event line may not be longer than the whole answer may be.
            if buffer.len() > call.max_response_bytes {
                return Err((false, None, call.too_large()));
            }
        }
        Ok(stream.finish())
    }
}

/// The most of an error response's body kept for the error message.
const ERROR_BODY_BYTES: usize = 300;

/// The start of an error response's body, as text; the rest is never read.
async fn error_body(response: reqwest::Response) -> String {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while body.len() < ERROR_BODY_BYTES
        && let Some(Ok(chunk)) = stream.next().await
    {
        body.extend_from_slice(&chunk[..chunk.len().min(ERROR_BODY_BYTES - body.len())]);
    }
    crate::text::utf8_prefix(&body, ERROR_BODY_BYTES).0
}

/// The wait a `Retry-After` header asks for: delay-seconds (whole or, leniently,
/// fractional) or an HTTP date. `None` for anything else — negative, not a number,
/// infinite, unparsable — so no header value can panic or stall the caller.
pub(crate) fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// A tool call's cost beyond its text, in bytes: one entry of the map below.
const CALL_OVERHEAD: usize = 96;

/// Assembles a streamed completion, within a byte bound.
struct Accumulator {
    text: String,
    /// Tool-call fragments by index: (id, name, arguments text).
    calls: BTreeMap<u64, (String, String, String)>,
    finish: Option<String>,
    usage: Usage,
    /// Bytes the answer may still take.
    room: usize,
}

impl Accumulator {
    fn new(max_bytes: usize) -> Self {
        Self {
            text: String::new(),
            calls: BTreeMap::new(),
            finish: None,
            usage: Usage::default(),
            room: max_bytes,
        }
    }

    /// Takes `bytes` of room; `Err` when the answer would outgrow its bound.
    fn take(&mut self, bytes: usize) -> Result<(), ()> {
        self.room = self.room.checked_sub(bytes).ok_or(())?;
        Ok(())
    }

    /// Takes one SSE line; `Ok(true)` at `[DONE]`, `Err` past the byte bound.
    fn line(&mut self, line: &str, on_delta: &DeltaSink) -> Result<bool, ()> {
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(false);
        };
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        // The event's tree is built only if it fits in what the answer has left.
        if crate::text::json_tree_cost(data) > self.room {
            return Err(());
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return Ok(false);
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
            return Ok(false);
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.take(text.len())?;
            self.text.push_str(text);
            on_delta(text);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap_or(0);
            if !self.calls.contains_key(&index) {
                self.take(CALL_OVERHEAD)?;
            }
            let id = call["id"].as_str();
            let name = call["function"]["name"].as_str();
            let args = call["function"]["arguments"].as_str();
            self.take(
                id.map_or(0, str::len) + name.map_or(0, str::len) + args.map_or(0, str::len),
            )?;
            let entry = self.calls.entry(index).or_default();
            if let Some(id) = id {
                entry.0 = id.to_owned();
            }
            if let Some(name) = name {
                entry.1.push_str(name);
            }
            if let Some(args) = args {
                entry.2.push_str(args);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish = Some(reason.chars().take(64).collect());
        }
        Ok(false)
    }

    fn finish(self) -> ChatResponse {
        let mut room = self.room;
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_values()
            .map(|(id, name, args)| {
                // A tree of small values costs far more than its text: only build the
                // ones that fit, together, in what the answer had left.
                let cost = crate::text::json_tree_cost(&args);
                let arguments = if cost <= room {
                    room -= cost;
                    serde_json::from_str(&args).unwrap_or_else(|_| json!({"_raw": args}))
                } else {
                    json!({"_raw": args})
                };
                ToolCall {
                    id,
                    name,
                    arguments,
                }
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

    fn model(&self) -> &str {
        &self.model
    }

    async fn complete(
        &self,
        call: &CallContext,
        request: &ChatRequest,
    ) -> Result<ChatResponse, LlmError> {
        let names = WireNames::of(request);
        let body = self.body(request, &names);
        let mut attempt = 0;
        loop {
            match self.attempt(&body, call).await {
                Ok(mut response) => {
                    for tool_call in &mut response.tool_calls {
                        tool_call.name = names.host(std::mem::take(&mut tool_call.name));
                    }
                    return Ok(response);
                }
                Err((true, wait, error)) if attempt < self.max_retries => {
                    let backoff = self
                        .backoff
                        .checked_mul(2u32.saturating_pow(attempt))
                        .unwrap_or(Duration::MAX);
                    let wait = wait.unwrap_or(backoff).min(Duration::from_secs(30));
                    tracing::info!(
                        "model call failed ({error}); retry {} in {wait:?}",
                        attempt + 1
                    );
                    (call.on_retry)(attempt + 1, &error.to_string());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err((_, _, error)) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_total_over_any_header_value() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        for bad in [
            "-1",
            "NaN",
            "inf",
            "-inf",
            "1e400",
            "",
            "soon",
            "18446744073709551616",
        ] {
            let parsed = retry_after(bad);
            assert!(
                parsed.is_none() || bad == "18446744073709551616",
                "{bad:?} gave {parsed:?}"
            );
        }
        // An HTTP date in the past means "now"; one in the future, the time until then.
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let wait = retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90));
    }

    #[test]
    fn an_answer_stops_growing_at_its_bound() {
        const ROOM: usize = 64 * 1024;
        let sink: DeltaSink = std::sync::Arc::new(|_| {});
        let text = format!(
            "data: {}",
            json!({"choices": [{"delta": {"content": "t".repeat(1000)}}]})
        );
        let mut answer = Accumulator::new(ROOM);
        let lines = (0..100)
            .take_while(|_| answer.line(&text, &sink).is_ok())
            .count();
        assert!(lines < 100 && answer.text.len() <= ROOM, "{lines} lines");
        assert!(answer.text.len() > ROOM - 4096, "{}", answer.text.len());
        // Tool calls with new indices cost their bookkeeping too.
        let mut calls = Accumulator::new(ROOM);
        let call = |i: u64| {
            format!(
                "data: {}",
                json!({"choices": [{"delta": {"tool_calls": [{"index": i, "function": {"arguments": ""}}]}}]})
            )
        };
        let accepted = (0..10_000)
            .take_while(|&i| calls.line(&call(i), &sink).is_ok())
            .count();
        assert!(accepted * CALL_OVERHEAD <= ROOM, "{accepted} calls");
        assert!(accepted * CALL_OVERHEAD > ROOM - 4096, "{accepted} calls");
    }
}

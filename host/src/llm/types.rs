//! The provider-neutral shapes of a chat completion, and the [`LlmProvider`] trait.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// Input on the user's side of the conversation (a task or an incoming message).
    User,
    /// The model's own earlier answer, possibly with tool calls.
    Assistant,
    /// The result of a tool call, tied to it by `tool_call_id`.
    Tool,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call; the `Tool` message answering it carries it back.
    pub id: String,
    /// The name of the tool to call, as given in its [`ToolSpec`].
    pub name: String,
    /// A JSON object.
    pub arguments: Value,
}

/// One message sent to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// Its text (for a `Tool` message, the tool's result).
    pub content: String,
    /// For an `Assistant` message, the tool calls the model made in it.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// For a `Tool` message, the id of the [`ToolCall`] it answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, shown to the model.
    pub description: String,
    /// JSON schema of the arguments.
    pub parameters: Value,
}

/// One chat completion request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The system prompt, sent ahead of `messages`.
    pub system: Option<String>,
    /// The conversation so far, oldest first.
    pub messages: Vec<ChatMessage>,
    /// The tools the model may call in its answer (none: it can only answer in text).
    pub tools: Vec<ToolSpec>,
    /// The most tokens the answer may take; `None` leaves it to the provider.
    pub max_tokens: Option<u32>,
    /// Sampling temperature; `None` leaves it to the provider.
    pub temperature: Option<f32>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    #[default]
    EndTurn,
    /// The model stopped to have its tool calls run.
    ToolUse,
    /// The answer was cut off at the token limit.
    MaxTokens,
    /// Any other reason the provider gave (e.g. a content filter).
    Other,
}

/// Tokens one call used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt: system, messages and tool specs.
    pub input_tokens: u32,
    /// Tokens the model generated in its answer.
    pub output_tokens: u32,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        u64::from(self.input_tokens) + u64::from(self.output_tokens)
    }
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The answer's text (may be empty when the model only calls tools).
    pub text: String,
    /// The tools the model asks to have called, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why the model stopped.
    pub stop_reason: StopReason,
    /// Tokens the call used, as the provider reports them (the scripted one estimates).
    pub usage: Usage,
}

/// Why a provider could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// Unreachable, or failing after every retry.
    #[error("model unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request.
    #[error("request refused by the model provider: {0}")]
    InvalidRequest(String),
    /// The call took longer than the limit.
    #[error("model call timed out: {0}")]
    Timeout(String),
}

/// Where a provider sends streamed text as it arrives.
pub type DeltaSink = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// Where a provider tells of a failed attempt it will retry (its number, from 1, and
/// why it failed).
pub type RetrySink = std::sync::Arc<dyn Fn(u32, &str) + Send + Sync>;

/// What the host tells a provider about one call.
#[derive(Clone)]
pub struct CallContext {
    /// The calling worker (providers may use the id, e.g. to replay a script per worker;
    /// they must not leak one worker's data to another).
    pub worker: String,
    /// The most bytes the answer may hold — its text, tool-call ids, names and arguments
    /// together — the room left in the worker's host memory budget. A provider stops
    /// reading at it and fails the call, rather than hold more.
    pub max_response_bytes: usize,
    /// Called with each piece of text as it streams in (the host turns them into
    /// `LLM_TEXT_DELTA` events).
    pub on_delta: DeltaSink,
    /// Called before each retry (the host records them on the call's span).
    pub on_retry: RetrySink,
}

impl CallContext {
    /// A call for `worker` that may receive up to `max_response_bytes`, its deltas
    /// dropped.
    pub fn new(worker: impl Into<String>, max_response_bytes: usize) -> Self {
        Self {
            worker: worker.into(),
            max_response_bytes,
            on_delta: std::sync::Arc::new(|_| {}),
            on_retry: std::sync::Arc::new(|_, _| {}),
        }
    }

    /// The same call, its retries told to `on_retry`.
    pub fn with_retries(mut self, on_retry: RetrySink) -> Self {
        self.on_retry = on_retry;
        self
    }

    /// The same call, its deltas sent to `on_delta`.
    pub fn with_deltas(mut self, on_delta: DeltaSink) -> Self {
        self.on_delta = on_delta;
        self
    }

    /// The error for an answer past [`CallContext::max_response_bytes`].
    pub fn too_large(&self) -> LlmError {
        LlmError::Unavailable(format!(
            "the model's answer is larger than the {} bytes the worker's host memory budget \
             has room for",
            self.max_response_bytes
        ))
    }
}

/// Something that answers chat completion requests.
#[async_trait::async_trait]
pub trait LlmProvider: Send + Sync {
    /// A short name for logs (`openai`, `scripted`).
    fn name(&self) -> &str;

    /// The model it asks (traces name model calls `chat {model}`); by default its name.
    fn model(&self) -> &str {
        self.name()
    }

    /// Answers `request` for the call `call` describes, within its byte bound.
    async fn complete(
        &self,
        call: &CallContext,
        request: &ChatRequest,
    ) -> Result<ChatResponse, LlmError>;
}

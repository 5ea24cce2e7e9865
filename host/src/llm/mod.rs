//! Language models for guests, behind one host-side trait.
//!
//! The guest asks (`colony:agent/llm.complete`); the host decides who answers: a
//! provider chosen by host configuration ([`LlmConfig`]), never by the guest, which never
//! sees the provider's URL or key. Two providers ship:
//! * [`OpenAiProvider`]: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM,
//!   llama.cpp server, Ollama), streaming over server-sent events, with retries and
//!   backoff on 429/5xx and a per-call timeout;
//! * [`ScriptedProvider`]: replays responses from a file, so demos and tests run offline
//!   and deterministically.

mod config;
#[cfg(feature = "http")]
mod openai;
mod scripted;
mod types;
#[cfg(feature = "http")]
mod wire_names;

pub use config::{LlmConfig, ProviderKind};
#[cfg(feature = "http")]
pub use openai::OpenAiProvider;
pub use scripted::ScriptedProvider;
pub use types::{
    CallContext, ChatMessage, ChatRequest, ChatResponse, DeltaSink, LlmError, LlmProvider, Role,
    StopReason, ToolCall, ToolSpec, Usage,
};

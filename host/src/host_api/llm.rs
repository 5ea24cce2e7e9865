//! `colony:agent/llm`: model calls through the host's provider, within the worker's token
//! budget, with text deltas published as `LLM_TEXT_DELTA` events.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::HostState;
use super::taped::{Completion, Source, taped};
use crate::bindings::colony::agent::llm as wit;
use crate::events::EventType;
use crate::llm::{
    CallContext, ChatMessage, ChatRequest, LlmError, Role, StopReason, ToolCall, ToolSpec,
};
use crate::replay::StepKind;

fn parse_object(what: &str, text: &str) -> Result<Value, wit::LlmError> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(text)
        .map_err(|e| wit::LlmError::InvalidRequest(format!("{what} is not valid JSON: {e}")))
}

/// What building and sending `request` costs the host: the provider-neutral copy with
/// its JSON trees, the provider's request body, and its encoding.
fn request_cost(request: &wit::Request) -> usize {
    let json = |text: &str| crate::text::json_tree_cost(text);
    let messages: usize = request
        .messages
        .iter()
        .map(|m| {
            m.content.len()
                + m.tool_call_id.as_ref().map_or(0, String::len)
                + m.tool_calls
                    .iter()
                    .map(|c| c.id.len() + c.name.len() + json(&c.arguments))
                    .sum::<usize>()
                + 64
        })
        .sum();
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + json(&t.parameters) + 64)
        .sum();
    let system = request.system.as_ref().map_or(0, String::len);
    (messages + tools + system).saturating_mul(3)
}

fn to_call(call: wit::ToolCall) -> Result<ToolCall, wit::LlmError> {
    Ok(ToolCall {
        arguments: parse_object(
            &format!("arguments of tool call '{}'", call.id),
            &call.arguments,
        )?,
        id: call.id,
        name: call.name,
    })
}

fn to_request(request: wit::Request) -> Result<ChatRequest, wit::LlmError> {
    let messages = request
        .messages
        .into_iter()
        .map(|m| {
            Ok(ChatMessage {
                role: match m.role {
                    wit::Role::System => Role::System,
                    wit::Role::User => Role::User,
                    wit::Role::Assistant => Role::Assistant,
                    wit::Role::Tool => Role::Tool,
                },
                content: m.content,
                tool_calls: m
                    .tool_calls
                    .into_iter()
                    .map(to_call)
                    .collect::<Result<_, _>>()?,
                tool_call_id: m.tool_call_id,
            })
        })
        .collect::<Result<_, wit::LlmError>>()?;
    let tools = request
        .tools
        .into_iter()
        .map(|t| {
            Ok(ToolSpec {
                parameters: parse_object(
                    &format!("parameters of tool '{}'", t.name),
                    &t.parameters,
                )?,
                name: t.name,
                description: t.description,
            })
        })
        .collect::<Result<_, wit::LlmError>>()?;
    Ok(ChatRequest {
        system: request.system,
        messages,
        tools,
        max_tokens: request.max_tokens,
        temperature: request.temperature,
    })
}

/// The request as a recording's step hashes and keeps it.
fn request_json(request: &wit::Request) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| {
            json!({
                "role": match m.role {
                    wit::Role::System => "system",
                    wit::Role::User => "user",
                    wit::Role::Assistant => "assistant",
                    wit::Role::Tool => "tool",
                },
                "content": m.content,
                "tool_calls": m.tool_calls.iter()
                    .map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments}))
                    .collect::<Vec<_>>(),
                "tool_call_id": m.tool_call_id,
            })
        })
        .collect();
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
        .collect();
    json!({
        "system": request.system,
        "messages": messages,
        "tools": tools,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    })
}

impl wit::Host for HostState {
    async fn complete(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::LlmError>> {
        #[cfg(feature = "telemetry")]
        if self.worker.trace().is_some() {
            return self.complete_traced(request).await;
        }
        self.complete_untraced(request, None).await
    }
}

impl HostState {
    /// `llm.complete` in a `chat {model}` span: tokens, finish reason, retries, errors.
    #[cfg(feature = "telemetry")]
    async fn complete_traced(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::LlmError>> {
        let worker = self.worker.clone();
        let Some(trace) = worker.trace() else {
            return self.complete_untraced(request, None).await;
        };
        let (provider, model) = match &worker.services().llm {
            Some(llm) => (llm.name().to_owned(), llm.model().to_owned()),
            None => ("none".to_owned(), "none".to_owned()),
        };
        let span = Arc::new(trace.chat(&provider, &model));
        span.request(|| {
            serde_json::to_string(
                &request
                    .messages
                    .iter()
                    .map(|m| json!({"role": format!("{:?}", m.role), "content": m.content}))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default()
        });
        let answer = self.complete_untraced(request, Some(span.clone())).await;
        match &answer {
            Ok(Ok(response)) => span.answered(
                response.usage.input_tokens,
                response.usage.output_tokens,
                match response.stop_reason {
                    wit::StopReason::EndTurn => "stop",
                    wit::StopReason::ToolUse => "tool_calls",
                    wit::StopReason::MaxTokens => "length",
                    wit::StopReason::Other => "other",
                },
                &response.text,
            ),
            Ok(Err(e)) => {
                let (kind, why) = match e {
                    wit::LlmError::BudgetExhausted(why) => ("budget_exhausted", why),
                    wit::LlmError::Unavailable(why) => ("unavailable", why),
                    wit::LlmError::InvalidRequest(why) => ("invalid_request", why),
                    wit::LlmError::Timeout(why) => ("timeout", why),
                    wit::LlmError::NotConfigured(why) => ("not_configured", why),
                };
                span.failed(kind, why);
            }
            Err(trap) => span.failed("trap", &trap.to_string()),
        }
        answer
    }

    /// `llm.complete`, on the worker's recording if it has one; `span`: the call's span,
    /// if traced (it hears of retries).
    async fn complete_untraced(
        &mut self,
        request: wit::Request,
        span: Option<Arc<crate::telemetry::ChatSpan>>,
    ) -> wasmtime::Result<Result<wit::Response, wit::LlmError>> {
        let worker = self.worker.clone();
        let taped_request = worker.tape().filter(|tape| tape.wants_calls());
        // The recorded copy of the request (a JSON tree and its text) is the host's to
        // hold too.
        let _copy_held = match taped_request {
            Some(_) => match worker.memory.hold(
                request_cost(&request) / 3 * 2,
                "the request's copy for the recording",
            ) {
                Ok(held) => Some(held),
                Err(e) => return Ok(Err(wit::LlmError::InvalidRequest(e.to_string()))),
            },
            None => None,
        };
        let asked = taped_request.map(|_| request_json(&request));
        let deltas = asked.as_ref().map(|_| Arc::new(Mutex::new(Vec::new())));
        let live = async {
            let answer = self.complete_live(request, span, deltas.clone()).await?;
            let delta_lengths = deltas.map_or_else(Vec::new, |d| {
                std::mem::take(&mut *d.lock().unwrap_or_else(|e| e.into_inner()))
            });
            Ok(Completion {
                answer,
                delta_lengths,
            })
        };
        let asked = || asked.unwrap_or(Value::Null);
        let (completion, source) = taped(&worker, StepKind::Llm, asked, live).await?;
        if source == Source::Recording {
            // What the model call would have done besides answering.
            match &completion.answer {
                Ok(response) => {
                    let mut at = 0;
                    for length in &completion.delta_lengths {
                        let delta = response.text.get(at..at + length).unwrap_or_default();
                        at += length;
                        worker.publish(
                            EventType::LlmTextDelta,
                            json!({"worker_id": worker.id(), "delta": delta}),
                        );
                    }
                    worker.add_tokens(
                        u64::from(response.usage.input_tokens)
                            + u64::from(response.usage.output_tokens),
                    );
                }
                Err(wit::LlmError::BudgetExhausted(_)) => worker.mark_budget_limited(),
                Err(_) => {}
            }
        }
        Ok(completion.answer)
    }

    /// `llm.complete`, asking the model; `deltas` hears the byte length of each text
    /// delta, if given.
    async fn complete_live(
        &mut self,
        request: wit::Request,
        span: Option<Arc<crate::telemetry::ChatSpan>>,
        deltas: Option<Arc<Mutex<Vec<usize>>>>,
    ) -> wasmtime::Result<Result<wit::Response, wit::LlmError>> {
        let worker = self.worker.clone();
        let Some(provider) = worker.services().llm.clone() else {
            return Ok(Err(wit::LlmError::NotConfigured(
                "no model is configured on this host".into(),
            )));
        };
        let (used, budget) = (worker.tokens(), worker.token_budget());
        if used >= budget {
            worker.mark_budget_limited();
            return Ok(Err(wit::LlmError::BudgetExhausted(format!(
                "token budget of {budget} spent ({used} used)"
            ))));
        }
        let request_held = match worker
            .memory
            .hold(request_cost(&request), "the model request")
        {
            Ok(held) => held,
            Err(e) => return Ok(Err(wit::LlmError::InvalidRequest(e.to_string()))),
        };
        let request = match to_request(request) {
            Ok(request) => request,
            Err(e) => return Ok(Err(e)),
        };
        let publisher = worker.clone();
        let mut call = CallContext::new(worker.id(), worker.memory.available()).with_deltas(
            std::sync::Arc::new(move |delta: &str| {
                if let Some(deltas) = &deltas {
                    deltas
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(delta.len());
                }
                publisher.publish(
                    EventType::LlmTextDelta,
                    json!({"worker_id": publisher.id(), "delta": delta}),
                );
            }),
        );
        if let Some(span) = span {
            call = call.with_retries(Arc::new(move |attempt, error| span.retry(attempt, error)));
        }
        let limit = worker.limits().llm_timeout;
        let answer = tokio::time::timeout(limit, provider.complete(&call, &request)).await;
        drop(request_held);
        let response = match answer {
            Err(_) => {
                let limit = humantime::format_duration(limit);
                return Ok(Err(wit::LlmError::Timeout(format!(
                    "no answer within {limit}"
                ))));
            }
            Ok(Err(LlmError::Unavailable(e))) => return Ok(Err(wit::LlmError::Unavailable(e))),
            Ok(Err(LlmError::InvalidRequest(e))) => {
                return Ok(Err(wit::LlmError::InvalidRequest(e)));
            }
            Ok(Err(LlmError::Timeout(e))) => return Ok(Err(wit::LlmError::Timeout(e))),
            Ok(Ok(response)) => response,
        };
        worker.add_tokens(response.usage.total());
        // The answer, held until the guest has it (tool-call arguments become text again).
        let size = response.text.len()
            + response
                .tool_calls
                .iter()
                .map(|c| c.id.len() + c.name.len() + c.arguments.to_string().len())
                .sum::<usize>();
        let _held = match worker.memory.hold(size, "the model's answer") {
            Ok(held) => held,
            Err(e) => return Ok(Err(wit::LlmError::Unavailable(e.to_string()))),
        };
        Ok(Ok(wit::Response {
            text: response.text,
            tool_calls: response
                .tool_calls
                .into_iter()
                .map(|c| wit::ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments: c.arguments.to_string(),
                })
                .collect(),
            stop_reason: match response.stop_reason {
                StopReason::EndTurn => wit::StopReason::EndTurn,
                StopReason::ToolUse => wit::StopReason::ToolUse,
                StopReason::MaxTokens => wit::StopReason::MaxTokens,
                StopReason::Other => wit::StopReason::Other,
            },
            usage: wit::Usage {
                input_tokens: response.usage.input_tokens,
                output_tokens: response.usage.output_tokens,
            },
        }))
    }
}

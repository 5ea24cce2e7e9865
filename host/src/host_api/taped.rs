//! Host calls on a worker's recording: answered from it when replaying, written to it
//! when recording (see [`crate::replay`]). Here is how each call's WIT answer is written
//! as a step and read back.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::WorkerContext;
use crate::bindings::colony::agent::{llm, tools};
use crate::replay::{
    Divergence, ListedTool, ModelAnswer, ModelCall, Outcome, Served, StepKind, Tape,
};

/// A host call's answer as a recording keeps it.
pub(super) trait Taped: Sized {
    /// The answer as a step's JSON.
    fn to_answer(&self) -> Value;
    /// The answer a step holds (`Err`: why it cannot be read).
    fn from_answer(answer: Value) -> Result<Self, String>;
}

/// Whether an answer came from the recording or from the world.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Recording,
    World,
}

/// Answers the guest's `kind` call asking `request` (built only if the worker is taped):
/// from the recording when it is replayed there, else by `live` — recorded when
/// recording. A divergence traps the guest (with the [`Divergence`] as the error).
pub(super) async fn taped<T: Taped>(
    worker: &WorkerContext,
    kind: StepKind,
    request: impl FnOnce() -> Value,
    live: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<(T, Source)> {
    match look_up(worker, kind, request)? {
        Lookup::Served(value) => Ok((value, Source::Recording)),
        Lookup::Live(pending) => {
            let value = live.await?;
            keep(pending, kind, &value);
            Ok((value, Source::World))
        }
    }
}

/// [`taped`] for a call answered without waiting.
pub(super) fn taped_now<T: Taped>(
    worker: &WorkerContext,
    kind: StepKind,
    request: impl FnOnce() -> Value,
    live: impl FnOnce() -> T,
) -> wasmtime::Result<(T, Source)> {
    match look_up(worker, kind, request)? {
        Lookup::Served(value) => Ok((value, Source::Recording)),
        Lookup::Live(pending) => {
            let value = live();
            keep(pending, kind, &value);
            Ok((value, Source::World))
        }
    }
}

/// A call's answer from the recording, or: ask the world (and record it on this tape,
/// for this request, if any).
enum Lookup<'a, T> {
    Served(T),
    Live(Option<(&'a Tape, Value)>),
}

fn look_up<'a, T: Taped>(
    worker: &'a WorkerContext,
    kind: StepKind,
    request: impl FnOnce() -> Value,
) -> wasmtime::Result<Lookup<'a, T>> {
    let Some(tape) = worker.tape().filter(|tape| tape.wants_calls()) else {
        return Ok(Lookup::Live(None));
    };
    let mut request = request();
    match tape
        .serve(kind, &mut request)
        .map_err(wasmtime::Error::new)?
    {
        Served::Answer(answer) => T::from_answer(answer).map(Lookup::Served).map_err(|why| {
            let diverged = Divergence::unreadable(tape.steps(), kind, &why);
            tape.diverge(diverged.clone());
            wasmtime::Error::new(diverged)
        }),
        Served::Live => Ok(Lookup::Live(Some((tape, request)))),
    }
}

fn keep<T: Taped>(pending: Option<(&Tape, Value)>, kind: StepKind, value: &T) {
    if let Some((tape, request)) = pending {
        tape.record(kind, &request, value.to_answer());
    }
}

fn to_value(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn from_value<T: DeserializeOwned>(answer: Value) -> Result<T, String> {
    serde_json::from_value(answer).map_err(|e| e.to_string())
}

impl Taped for Vec<String> {
    fn to_answer(&self) -> Value {
        to_value(self)
    }
    fn from_answer(answer: Value) -> Result<Self, String> {
        from_value(answer)
    }
}

impl Taped for Option<String> {
    fn to_answer(&self) -> Value {
        to_value(self)
    }
    fn from_answer(answer: Value) -> Result<Self, String> {
        from_value(answer)
    }
}

impl Taped for Result<(), String> {
    fn to_answer(&self) -> Value {
        to_value(&match self {
            Ok(()) => Outcome::Ok(()),
            Err(message) => Outcome::Error {
                kind: "failed".into(),
                message: message.clone(),
            },
        })
    }
    fn from_answer(answer: Value) -> Result<Self, String> {
        Ok(match from_value::<Outcome<()>>(answer)? {
            Outcome::Ok(()) => Ok(()),
            Outcome::Error { message, .. } => Err(message),
        })
    }
}

impl Taped for Vec<tools::ToolInfo> {
    fn to_answer(&self) -> Value {
        to_value(
            &self
                .iter()
                .map(|t| ListedTool {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: t.parameters.clone(),
                })
                .collect::<Vec<_>>(),
        )
    }
    fn from_answer(answer: Value) -> Result<Self, String> {
        Ok(from_value::<Vec<ListedTool>>(answer)?
            .into_iter()
            .map(|t| tools::ToolInfo {
                name: t.name,
                description: t.description,
                parameters: t.parameters,
            })
            .collect())
    }
}

impl Taped for Result<String, tools::ToolError> {
    fn to_answer(&self) -> Value {
        use tools::ToolError as E;
        to_value(&match self {
            Ok(result) => Outcome::Ok(result.clone()),
            Err(e) => {
                let (kind, message) = match e {
                    E::UnknownTool(m) => ("unknown-tool", m),
                    E::NotGranted(m) => ("not-granted", m),
                    E::InvalidArguments(m) => ("invalid-arguments", m),
                    E::Failed(m) => ("failed", m),
                    E::BudgetExhausted(m) => ("budget-exhausted", m),
                    E::Timeout(m) => ("timeout", m),
                };
                Outcome::Error {
                    kind: kind.into(),
                    message: message.clone(),
                }
            }
        })
    }
    fn from_answer(answer: Value) -> Result<Self, String> {
        use tools::ToolError as E;
        Ok(match from_value::<Outcome<String>>(answer)? {
            Outcome::Ok(result) => Ok(result),
            Outcome::Error { kind, message } => Err(match kind.as_str() {
                "unknown-tool" => E::UnknownTool(message),
                "not-granted" => E::NotGranted(message),
                "invalid-arguments" => E::InvalidArguments(message),
                "budget-exhausted" => E::BudgetExhausted(message),
                "timeout" => E::Timeout(message),
                "failed" => E::Failed(message),
                other => return Err(format!("no tool error '{other}'")),
            }),
        })
    }
}

/// A model call's answer with how its text arrived (byte lengths of its deltas).
pub(super) struct Completion {
    pub answer: Result<llm::Response, llm::LlmError>,
    pub delta_lengths: Vec<usize>,
}

impl Taped for Completion {
    fn to_answer(&self) -> Value {
        use llm::LlmError as E;
        to_value(&match &self.answer {
            Ok(r) => Outcome::Ok(ModelAnswer {
                text: r.text.clone(),
                tool_calls: r
                    .tool_calls
                    .iter()
                    .map(|c| ModelCall {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                    })
                    .collect(),
                stop_reason: match r.stop_reason {
                    llm::StopReason::EndTurn => "end-turn",
                    llm::StopReason::ToolUse => "tool-use",
                    llm::StopReason::MaxTokens => "max-tokens",
                    llm::StopReason::Other => "other",
                }
                .into(),
                input_tokens: r.usage.input_tokens.into(),
                output_tokens: r.usage.output_tokens.into(),
                delta_lengths: self.delta_lengths.clone(),
            }),
            Err(e) => {
                let (kind, message) = match e {
                    E::BudgetExhausted(m) => ("budget-exhausted", m),
                    E::Unavailable(m) => ("unavailable", m),
                    E::InvalidRequest(m) => ("invalid-request", m),
                    E::Timeout(m) => ("timeout", m),
                    E::NotConfigured(m) => ("not-configured", m),
                };
                Outcome::Error {
                    kind: kind.into(),
                    message: message.clone(),
                }
            }
        })
    }
    fn from_answer(answer: Value) -> Result<Self, String> {
        use llm::LlmError as E;
        Ok(match from_value::<Outcome<ModelAnswer>>(answer)? {
            Outcome::Ok(a) => {
                let delta_lengths = a.deltas().iter().map(|d| d.len()).collect();
                let tokens = |n: u64| u32::try_from(n).map_err(|e| e.to_string());
                Completion {
                    answer: Ok(llm::Response {
                        usage: llm::Usage {
                            input_tokens: tokens(a.input_tokens)?,
                            output_tokens: tokens(a.output_tokens)?,
                        },
                        stop_reason: match a.stop_reason.as_str() {
                            "end-turn" => llm::StopReason::EndTurn,
                            "tool-use" => llm::StopReason::ToolUse,
                            "max-tokens" => llm::StopReason::MaxTokens,
                            _ => llm::StopReason::Other,
                        },
                        tool_calls: a
                            .tool_calls
                            .into_iter()
                            .map(|c| llm::ToolCall {
                                id: c.id,
                                name: c.name,
                                arguments: c.arguments,
                            })
                            .collect(),
                        text: a.text,
                    }),
                    delta_lengths,
                }
            }
            Outcome::Error { kind, message } => Completion {
                answer: Err(match kind.as_str() {
                    "budget-exhausted" => E::BudgetExhausted(message),
                    "unavailable" => E::Unavailable(message),
                    "invalid-request" => E::InvalidRequest(message),
                    "timeout" => E::Timeout(message),
                    "not-configured" => E::NotConfigured(message),
                    other => return Err(format!("no model error '{other}'")),
                }),
                delta_lengths: Vec::new(),
            },
        })
    }
}

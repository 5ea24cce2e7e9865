//! [`Recording`]: a worker's recorded steps, as read back from the journal.

use serde::Serialize;
use serde_json::{Value, json};

use super::answer::{ModelAnswer, Outcome};
use super::{Step, StepKind};

/// The steps a worker's run was answered with, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recording {
    /// The worker it was recorded from.
    pub worker_id: String,
    /// Its steps, from step 1.
    pub steps: Vec<Step>,
}

impl Recording {
    /// How many steps it has (a `cut` step included).
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether it has no step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether it was cut at its bound (its last step is `cut`).
    pub fn is_cut(&self) -> bool {
        self.steps.last().is_some_and(|s| s.kind == StepKind::Cut)
    }

    /// Bytes it takes (what the recording bound counts).
    pub fn bytes(&self) -> u64 {
        self.steps.iter().map(Step::size).sum()
    }

    /// Its model calls that failed (a timeout, a spent budget): a script leaves them out.
    pub fn failed_model_calls(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.kind == StepKind::Llm && s.answer.get("ok").is_none())
            .count()
    }

    /// The messages of its turns (a persistent worker's), in order.
    pub fn turns(&self) -> Vec<String> {
        self.turns_to(u64::MAX)
    }

    /// The messages of its turns up to step `last`, in order.
    pub fn turns_to(&self, last: u64) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.index <= last && s.kind == StepKind::Turn)
            .filter_map(|s| s.answer.as_str().map(str::to_owned))
            .collect()
    }

    /// Its model answers as a script for the scripted provider
    /// ([`ScriptedProvider`](crate::llm::ScriptedProvider)): one step per answered
    /// `llm.complete`, in order, with its text, tool calls and token usage — so a real
    /// run becomes an offline fixture. Calls that failed (a timeout, a spent budget) are
    /// left out: a script answers every call.
    pub fn to_script(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Llm)
            .filter_map(|s| match serde_json::from_value(s.answer.clone()) {
                Ok(Outcome::<ModelAnswer>::Ok(answer)) => Some(answer),
                _ => None,
            })
            .map(|answer| {
                let calls: Vec<Value> = answer
                    .tool_calls
                    .iter()
                    .map(|c| {
                        let arguments: Value =
                            serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                        json!({"name": c.name, "arguments": arguments})
                    })
                    .collect();
                let mut step = json!({
                    "text": answer.text,
                    "usage": {"input_tokens": answer.input_tokens,
                              "output_tokens": answer.output_tokens},
                });
                if !calls.is_empty() {
                    step["tool_calls"] = Value::Array(calls);
                }
                step
            })
            .collect();
        Value::Array(steps)
    }
}

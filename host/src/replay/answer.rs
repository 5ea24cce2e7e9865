//! How a recorded answer is written: the shapes the host's calls are recorded in.
//!
//! Plain serde types, apart from the WIT bindings: a recording outlives the build that
//! made it, and [`Recording::to_script`](super::Recording::to_script) reads model answers
//! without a guest.

use serde::{Deserialize, Serialize};

/// A call's outcome: its value, or the error the guest got (its WIT case, kebab-case,
/// and message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome<T> {
    /// It succeeded with this.
    Ok(T),
    /// It failed with this error case and message.
    Error {
        /// The error's case (`timeout`, `not-granted`, …).
        kind: String,
        /// Its message.
        message: String,
    },
}

/// A model's answer to `llm.complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ModelAnswer {
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<ModelCall>,
    /// `end-turn`, `tool-use`, `max-tokens` or `other`.
    pub stop_reason: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// How the text arrived as `LLM_TEXT_DELTA` events: the byte length of each piece
    /// (the pieces make up `text`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delta_lengths: Vec<usize>,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ModelCall {
    pub id: String,
    pub name: String,
    /// The arguments as the guest got them: JSON text.
    pub arguments: String,
}

impl ModelAnswer {
    /// The text deltas as they were published, rebuilt from `delta_lengths` (none if they
    /// do not fit the text).
    pub fn deltas(&self) -> Vec<&str> {
        let mut pieces = Vec::with_capacity(self.delta_lengths.len());
        let mut at: usize = 0;
        for &length in &self.delta_lengths {
            let end = at.saturating_add(length);
            match self.text.get(at..end) {
                Some(piece) => pieces.push(piece),
                None => return Vec::new(),
            }
            at = end;
        }
        pieces
    }
}

/// A tool as `tools.granted` listed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ListedTool {
    pub name: String,
    pub description: String,
    pub parameters: String,
}

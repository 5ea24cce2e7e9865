//! [`Step`]: one answer from the world to a guest, as recorded.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Which host call a step answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// `llm.complete`.
    Llm,
    /// `tools.call`.
    Tool,
    /// `tools.granted`.
    ToolList,
    /// `inbox.drain`.
    InboxDrain,
    /// `inbox.wait`.
    InboxWait,
    /// `peers.send`.
    PeerSend,
    /// A persistent worker's turn: the injected message `on-message` got.
    Turn,
    /// Where the recording was cut at its bound: nothing after it was recorded.
    Cut,
}

impl StepKind {
    /// The name it is stored under.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Llm => "llm",
            StepKind::Tool => "tool",
            StepKind::ToolList => "tool_list",
            StepKind::InboxDrain => "inbox_drain",
            StepKind::InboxWait => "inbox_wait",
            StepKind::PeerSend => "peer_send",
            StepKind::Turn => "turn",
            StepKind::Cut => "cut",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            StepKind::Llm,
            StepKind::Tool,
            StepKind::ToolList,
            StepKind::InboxDrain,
            StepKind::InboxWait,
            StepKind::PeerSend,
            StepKind::Turn,
            StepKind::Cut,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// Whether a call of this kind that got nothing (no injected message) is not a step:
    /// the inbox calls. Such a call's request is its ordinal among calls of its kind
    /// (`{"call": n}`), so a replay knows which of them got the recorded message.
    pub fn quiet_when_empty(self) -> bool {
        matches!(self, StepKind::InboxDrain | StepKind::InboxWait)
    }

    /// What a quiet call got: no message.
    pub(crate) fn empty_answer(self) -> serde_json::Value {
        match self {
            StepKind::InboxDrain => serde_json::Value::Array(Vec::new()),
            _ => serde_json::Value::Null,
        }
    }

    /// The call as a guest author knows it: `llm.complete`, `tools.call`, …
    pub fn call(self) -> &'static str {
        match self {
            StepKind::Llm => "llm.complete",
            StepKind::Tool => "tools.call",
            StepKind::ToolList => "tools.granted",
            StepKind::InboxDrain => "inbox.drain",
            StepKind::InboxWait => "inbox.wait",
            StepKind::PeerSend => "peers.send",
            StepKind::Turn => "a turn (on-message)",
            StepKind::Cut => "the end of a recording cut at its bound",
        }
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.call())
    }
}

/// One recorded host call: what the guest asked (hash, and the request if small) and
/// what it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Its place in the run, from 1.
    pub index: u64,
    /// Which call it answers.
    pub kind: StepKind,
    /// SHA-256 (hex) of the request as canonical JSON.
    pub request_hash: String,
    /// The request, unless it was larger than
    /// [`MAX_STORED_REQUEST_BYTES`](super::MAX_STORED_REQUEST_BYTES).
    pub request: Option<Value>,
    /// What the guest got.
    pub answer: Value,
}

impl Step {
    /// Bytes it takes in a recording (what the recording bound counts).
    pub fn size(&self) -> u64 {
        let request = self
            .request
            .as_ref()
            .map_or(0, |r| r.to_string().len() as u64);
        request + self.answer.to_string().len() as u64 + self.request_hash.len() as u64 + 32
    }
}

/// The request's canonical JSON (object keys sorted, as `serde_json`'s map keeps them)
/// and its SHA-256 in hex.
pub(crate) fn canonical(request: &Value) -> (String, String) {
    let text = request.to_string();
    let hash = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (text, hash)
}

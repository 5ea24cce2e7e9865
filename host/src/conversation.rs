//! A worker's conversation: the parts (messages) stored in its folder.
//!
//! The on-disk shape is the reference framework's: one JSON file per part,
//! `{storage}/conversations/parts/{seq:010}.json`, with the fields below. A seeded
//! conversation is exactly what the guest reads back through `conversation.read`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagePart {
    /// Position in the conversation. When seeding, `None` means "its index in the list".
    #[serde(default)]
    pub seq: Option<u64>,
    /// `user`, `assistant`, `system` or `tool`.
    pub role: String,
    /// The message text.
    #[serde(default)]
    pub content: String,
    /// The model's tool calls (a JSON array), if any.
    #[serde(default)]
    pub tool_calls: Option<Value>,
    /// For a tool result: the id of the call it answers.
    #[serde(default)]
    pub tool_use_id: Option<String>,
    /// When the part was created (any JSON value; the host writes RFC 3339 text).
    #[serde(default)]
    pub created_at: Option<Value>,
    /// The agent-loop phase, if the loop tracks one.
    #[serde(default)]
    pub phase: Option<String>,
    /// The worker the part belongs to. When seeding, `None` means "this worker".
    #[serde(default)]
    pub agent_id: Option<String>,
}

impl MessagePart {
    /// A part with just a role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            seq: None,
            role: role.into(),
            content: content.into(),
            tool_calls: None,
            tool_use_id: None,
            created_at: None,
            phase: None,
            agent_id: None,
        }
    }
}

/// A part as stored and as handed to a guest, read without building JSON trees: tool
/// calls and the creation time stay JSON text, so a part costs the host about its size
/// on disk whatever JSON a guest put in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RawPart {
    #[serde(default)]
    pub seq: Option<u64>,
    pub role: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub tool_calls: Option<Box<RawValue>>,
    #[serde(default)]
    pub tool_use_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<Box<RawValue>>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
}

impl RawPart {
    /// Bytes of text the part holds.
    pub(crate) fn text_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let raw = |r: &Option<Box<RawValue>>| r.as_ref().map_or(0, |r| r.get().len());
        self.role.len()
            + self.content.len()
            + raw(&self.tool_calls)
            + opt(&self.tool_use_id)
            + raw(&self.created_at)
            + opt(&self.phase)
            + opt(&self.agent_id)
    }

    /// `created_at` as text: a JSON string as its value, anything else as JSON.
    pub(crate) fn created_at_text(&self) -> Option<String> {
        self.created_at.as_ref().map(|raw| {
            serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_owned())
        })
    }
}

/// Keeps the conversation parts of workers that have no folder of their own for them:
/// a colony's journal keeps its ephemeral workers' parts, so that thousands of short
/// workers do not each make a folder and a file per part. Such a worker holds its
/// conversation in memory (charged to its host memory budget) and hands each part here
/// as it is appended.
pub trait ConversationLog: Send + Sync {
    /// Keeps part `seq` of worker `worker` (the part as JSON). Must not block.
    fn append(&self, worker: &str, seq: u64, part: &[u8]);
}

//! `colony:agent/conversation`: the worker's conversation parts.
//!
//! With a storage folder the parts live on disk (seeded ones included) and every append
//! is written atomically before it is acknowledged. Without one, the conversation lives
//! in memory for the lifetime of the instance.

use chrono::Utc;

use super::{HostState, parse_json, too_large};
use crate::bindings::colony::agent::conversation;
use crate::bindings::{NewPart, WitPart};
use crate::conversation::MessagePart;

/// Per-instance conversation state.
#[derive(Default)]
pub(crate) struct Conversation {
    /// The next `seq`, once known.
    next_seq: Option<u64>,
    /// Parts of a worker without a storage folder.
    memory: Vec<MessagePart>,
}

impl HostState {
    fn read_parts(&self) -> Result<Vec<MessagePart>, String> {
        match &self.worker.storage {
            Some(storage) => storage
                .read_parts()
                .map_err(|e| format!("cannot read the conversation: {e}")),
            None => Ok(self.conversation.memory.clone()),
        }
    }
}

fn to_wit(part: MessagePart) -> WitPart {
    WitPart {
        seq: part.seq.unwrap_or(0),
        created_at: part.created_at_text(),
        tool_calls: part.tool_calls.map(|v| v.to_string()),
        role: part.role,
        content: part.content,
        tool_use_id: part.tool_use_id,
        phase: part.phase,
    }
}

impl conversation::Host for HostState {
    fn read(&mut self) -> wasmtime::Result<Result<Vec<WitPart>, String>> {
        Ok(self
            .read_parts()
            .map(|parts| parts.into_iter().map(to_wit).collect()))
    }

    fn append(&mut self, part: NewPart) -> wasmtime::Result<Result<u64, String>> {
        let limit = self.worker.limits().max_part_bytes;
        let size = part.role.len()
            + part.content.len()
            + part.tool_calls.as_ref().map_or(0, String::len)
            + part.tool_use_id.as_ref().map_or(0, String::len)
            + part.phase.as_ref().map_or(0, String::len);
        if size > limit {
            return Ok(Err(too_large("conversation part", size, limit)));
        }
        let tool_calls = match part
            .tool_calls
            .as_deref()
            .map(|t| parse_json("tool-calls", t))
        {
            Some(Err(e)) => return Ok(Err(e)),
            Some(Ok(value)) => Some(value),
            None => None,
        };
        let seq = match self.conversation.next_seq {
            Some(seq) => seq,
            None => match self.read_parts() {
                Ok(parts) => parts
                    .iter()
                    .filter_map(|p| p.seq)
                    .max()
                    .map_or(0, |s| s + 1),
                Err(e) => return Ok(Err(e)),
            },
        };
        let stored = MessagePart {
            seq: Some(seq),
            role: part.role,
            content: part.content,
            tool_calls,
            tool_use_id: part.tool_use_id,
            created_at: Some(Utc::now().to_rfc3339().into()),
            phase: part.phase,
            agent_id: Some(self.worker.id().to_owned()),
        };
        match &self.worker.storage {
            Some(storage) => {
                if let Err(e) = storage.write_part(&stored) {
                    return Ok(Err(format!("cannot store the part: {e}")));
                }
            }
            None => self.conversation.memory.push(stored),
        }
        self.conversation.next_seq = Some(seq + 1);
        Ok(Ok(seq))
    }
}

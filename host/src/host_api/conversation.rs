//! `colony:agent/conversation`: the worker's conversation parts.
//!
//! With a storage folder the parts live on disk (seeded ones included) and every append
//! is written atomically before it is acknowledged, its bytes charged to the worker's
//! disk quota first. Without one — or with a [`ConversationLog`] (a colony's journal,
//! for its ephemeral workers) — the conversation lives in memory for the lifetime of the
//! instance, charged to the worker's host memory budget; a log also gets every part,
//! charged to the disk quota.
//!
//! [`ConversationLog`]: crate::conversation::ConversationLog
//!
//! Reads are paged: a page is built part by part, each part's size charged to the host
//! memory budget before it is read, so reading a conversation back never makes the host
//! hold more than the budget, however much the guest wrote.

use chrono::Utc;
use serde_json::value::RawValue;

use super::{HostState, too_large};
use crate::bindings::colony::agent::conversation::{self, Page};
use crate::bindings::{NewPart, WitPart};
use crate::conversation::RawPart;
use crate::sandbox::Held;

/// A part's cost in host memory beyond its text: the record and its strings' headers.
const PART_OVERHEAD: u64 = 128;

/// Per-instance conversation state.
#[derive(Default)]
pub(crate) struct Conversation {
    /// The next `seq`, once known.
    next_seq: Option<u64>,
    /// Parts of a worker without a storage folder, and their charge.
    memory: Vec<RawPart>,
    memory_held: Option<Held>,
}

fn to_wit(part: RawPart) -> WitPart {
    WitPart {
        seq: part.seq.unwrap_or(0),
        created_at: part.created_at_text(),
        tool_calls: part.tool_calls.map(|raw| raw.get().to_owned()),
        role: part.role,
        content: part.content,
        tool_use_id: part.tool_use_id,
        phase: part.phase,
    }
}

impl HostState {
    /// The page starting at `start`, at most `max_bytes` (0: no cap but the budget).
    fn read_page(&mut self, start: u64, max_bytes: u32) -> Result<Page, String> {
        let max = match u64::from(max_bytes) {
            0 => u64::MAX,
            n => n,
        };
        let memory = self.worker.memory.clone();
        let mut held = memory.stream();
        let mut parts = Vec::new();
        let mut used = 0u64;
        let seqs: Vec<u64> = match self.worker.part_files() {
            Some(storage) => storage
                .part_seqs()
                .map_err(|e| format!("cannot read the conversation: {e}"))?,
            None => self
                .conversation
                .memory
                .iter()
                .filter_map(|p| p.seq)
                .collect(),
        };
        for (index, &seq) in seqs.iter().enumerate().filter(|(_, s)| **s >= start) {
            // On disk: the file is read, then decoded; in memory: the part is copied.
            let (size, cost) = match self.worker.part_files() {
                Some(storage) => {
                    let size = storage
                        .part_size(seq)
                        .map_err(|e| format!("cannot read the conversation: {e}"))?;
                    (size, size.saturating_mul(2))
                }
                None => {
                    let size = self.conversation.memory[index].text_bytes() as u64;
                    (size, size)
                }
            };
            if !parts.is_empty() && used.saturating_add(size) > max {
                return Ok(Page {
                    parts,
                    next: Some(seq),
                });
            }
            let cost = usize::try_from(cost.saturating_add(PART_OVERHEAD)).unwrap_or(usize::MAX);
            if let Err(e) = held.grow(cost, &format!("conversation part {seq}")) {
                if parts.is_empty() {
                    return Err(format!(
                        "{e}; skip the part by reading from {}",
                        seq.saturating_add(1)
                    ));
                }
                return Ok(Page {
                    parts,
                    next: Some(seq),
                });
            }
            let part = match self.worker.part_files() {
                Some(storage) => storage
                    .read_raw_part(seq, size)
                    .map_err(|e| format!("cannot read the conversation: {e}"))?,
                None => self.conversation.memory[index].clone(),
            };
            used = used.saturating_add(size);
            parts.push(to_wit(part));
        }
        Ok(Page { parts, next: None })
    }

    /// The `seq` the next appended part gets.
    fn next_seq(&self) -> Result<u64, String> {
        if let Some(seq) = self.conversation.next_seq {
            return Ok(seq);
        }
        let last = match self.worker.part_files() {
            Some(storage) => storage
                .part_seqs()
                .map_err(|e| format!("cannot read the conversation: {e}"))?
                .last()
                .copied(),
            None => self.conversation.memory.last().and_then(|p| p.seq),
        };
        match last {
            None => Ok(0),
            Some(seq) => seq.checked_add(1).ok_or_else(|| {
                format!("the conversation's last part has seq {seq}: no part can follow it")
            }),
        }
    }
}

impl conversation::Host for HostState {
    fn read(&mut self, start: u64, max_bytes: u32) -> wasmtime::Result<Result<Page, String>> {
        Ok(self.read_page(start, max_bytes))
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
        // Validated as JSON without building a tree of it.
        let tool_calls = match part.tool_calls.filter(|t| !t.trim().is_empty()) {
            Some(text) => match RawValue::from_string(text) {
                Ok(raw) => Some(raw),
                Err(e) => return Ok(Err(format!("tool-calls is not valid JSON: {e}"))),
            },
            None => None,
        };
        let seq = match self.next_seq() {
            Ok(seq) => seq,
            Err(e) => return Ok(Err(e)),
        };
        let created_at = RawValue::from_string(
            serde_json::to_string(&Utc::now().to_rfc3339()).unwrap_or_default(),
        )
        .ok();
        let stored = RawPart {
            seq: Some(seq),
            role: part.role,
            content: part.content,
            tool_calls,
            tool_use_id: part.tool_use_id,
            created_at,
            phase: part.phase,
            agent_id: Some(self.worker.id().to_owned()),
        };
        let what = format!("conversation part {seq}");
        match self.worker.part_files() {
            Some(storage) => {
                let bytes = match serde_json::to_vec(&stored) {
                    Ok(bytes) => bytes,
                    Err(e) => return Ok(Err(format!("cannot encode the part: {e}"))),
                };
                // A part is a file of its own: it costs its bytes and an entry.
                let cost = bytes.len() as u64 + crate::sandbox::files::ENTRY_BYTES;
                if let Err(e) = self.worker.disk.charge(cost, &what) {
                    return Ok(Err(e.to_string()));
                }
                if let Err(e) = storage.write_part_bytes(seq, &bytes) {
                    self.worker.disk.refund(cost);
                    return Ok(Err(format!("cannot store the part: {e}")));
                }
            }
            None => {
                let cost = stored.text_bytes() + PART_OVERHEAD as usize;
                let memory = self.worker.memory.clone();
                let held = self
                    .conversation
                    .memory_held
                    .get_or_insert_with(|| memory.stream());
                if let Err(e) = held.grow(cost, &what) {
                    return Ok(Err(e.to_string()));
                }
                if let Some(log) = self.worker.conversation_log() {
                    let bytes = match serde_json::to_vec(&stored) {
                        Ok(bytes) => bytes,
                        Err(e) => return Ok(Err(format!("cannot encode the part: {e}"))),
                    };
                    if let Err(e) = self.worker.disk.charge(bytes.len() as u64, &what) {
                        return Ok(Err(e.to_string()));
                    }
                    log.append(self.worker.id(), seq, &bytes);
                }
                self.conversation.memory.push(stored);
            }
        }
        self.conversation.next_seq = seq.checked_add(1);
        Ok(Ok(seq))
    }
}

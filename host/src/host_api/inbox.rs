//! `colony:agent/inbox`: messages injected while the guest runs.
//!
//! Queued messages are charged to the worker's host memory budget by `inject`; what
//! `drain` hands over is therefore already within it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::HostState;
use super::taped::{taped, taped_now};
use crate::bindings::colony::agent::inbox;
use crate::replay::StepKind;
use crate::sandbox::{Held, HostMemory};

impl inbox::Host for HostState {
    fn drain(&mut self) -> wasmtime::Result<Vec<String>> {
        let worker = self.worker.clone();
        let live = || {
            let mut messages = Vec::new();
            while let Ok(message) = self.inbox.try_recv() {
                messages.push(message.text);
            }
            messages
        };
        let (messages, _) = taped_now(&worker, StepKind::InboxDrain, || json!({}), live)?;
        worker.note_taken(messages.len() as u64);
        Ok(messages)
    }

    async fn wait(&mut self, timeout_ms: u32) -> wasmtime::Result<Option<String>> {
        let worker = self.worker.clone();
        let cap = worker.limits().max_inbox_wait;
        let timeout = Duration::from_millis(timeout_ms.into()).min(cap);
        let live = async {
            Ok(tokio::time::timeout(timeout, self.inbox.recv())
                .await
                .ok()
                .flatten()
                .map(|message| message.text))
        };
        let asked = || json!({"timeout_ms": timeout_ms});
        let (message, _) = taped(&worker, StepKind::InboxWait, asked, live).await?;
        if message.is_some() {
            worker.note_taken(1);
        }
        Ok(message)
    }
}

/// A message waiting in a worker's inbox, its bytes charged to the worker's
/// [`HostMemory`] — and to the inbox's share of it — until it is delivered.
#[derive(Debug)]
pub(crate) struct InboxMessage {
    pub text: String,
    _held: [Held; 2],
}

impl InboxMessage {
    pub fn new(text: String, held: [Held; 2]) -> Self {
        Self { text, _held: held }
    }
}

/// The inbox's share of the host memory budget: what others can queue for a worker
/// leaves the rest for its own calls, so a sibling flooding it cannot starve it.
pub(crate) fn inbox_share(host_memory_bytes: usize) -> Arc<HostMemory> {
    HostMemory::named(
        host_memory_bytes / 2,
        "inbox's share of the host memory budget",
    )
}

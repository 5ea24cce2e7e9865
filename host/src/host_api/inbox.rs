//! `colony:agent/inbox`: messages injected while the guest runs.
//!
//! Queued messages are charged to the worker's host memory budget by `inject`; what
//! `drain` hands over is therefore already within it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::HostState;
use crate::bindings::colony::agent::inbox;

impl inbox::Host for HostState {
    fn drain(&mut self) -> wasmtime::Result<Vec<String>> {
        let mut messages = Vec::new();
        while let Ok(message) = self.inbox.try_recv() {
            messages.push(message.text);
        }
        self.worker
            .taken
            .fetch_add(messages.len() as u64, Ordering::AcqRel);
        Ok(messages)
    }

    async fn wait(&mut self, timeout_ms: u32) -> wasmtime::Result<Option<String>> {
        let cap = self.worker.limits().max_inbox_wait;
        let timeout = Duration::from_millis(timeout_ms.into()).min(cap);
        let message = tokio::time::timeout(timeout, self.inbox.recv())
            .await
            .ok()
            .flatten()
            .map(|message| message.text);
        if message.is_some() {
            self.worker.taken.fetch_add(1, Ordering::AcqRel);
        }
        Ok(message)
    }
}

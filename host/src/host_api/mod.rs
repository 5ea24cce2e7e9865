//! The host side of the `colony:agent` world: one module per imported interface.
//!
//! Each function validates what the guest hands it against the runtime's
//! [`Limits`](crate::Limits) and answers a guest mistake (invalid JSON, an oversized
//! payload, a reserved event type) with an `err` the guest can handle. Traps are kept for
//! what the guest cannot recover from.

mod conversation;
mod events;
mod inbox;
mod report;

use std::sync::Arc;

use tokio::sync::mpsc;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::colony::agent::types;
use crate::worker::WorkerShared;

pub(crate) use conversation::Conversation;

/// The data of one worker's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) worker: Arc<WorkerShared>,
    pub(crate) inbox: mpsc::Receiver<String>,
    pub(crate) stderr: MemoryOutputPipe,
    conversation: Conversation,
}

impl HostState {
    pub(crate) fn new(
        worker: Arc<WorkerShared>,
        wasi: WasiCtx,
        limits: StoreLimits,
        inbox: mpsc::Receiver<String>,
        stderr: MemoryOutputPipe,
    ) -> Self {
        Self {
            wasi,
            table: ResourceTable::new(),
            limits,
            worker,
            inbox,
            stderr,
            conversation: Conversation::default(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

/// `Err` naming a payload that is over its limit.
fn too_large(what: &str, size: usize, limit: usize) -> String {
    format!("{what} is {size} bytes, over the limit of {limit} bytes")
}

/// Parses guest JSON text; `""` counts as `{}` so C guests can pass an empty string.
fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|e| format!("{what} is not valid JSON: {e}"))
}

//! The host side of the `colony:agent` world: one module per imported interface.
//!
//! Each function validates what the guest hands it against the runtime's
//! [`Limits`](crate::Limits) and answers a guest mistake (invalid JSON, an oversized
//! payload, a reserved event type) with an `err` the guest can handle. Traps are kept for
//! what the guest cannot recover from.

mod conversation;
mod events;
mod inbox;
mod llm;
mod peers;
mod rate;
mod report;
mod tools;

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::colony::agent::types;
use crate::worker::{InstanceLimiter, NetworkPolicy, OutputBudget, WorkerShared};
use rate::EventRate;

pub(crate) use conversation::Conversation;

/// The data of one worker's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: InstanceLimiter,
    pub(crate) worker: Arc<WorkerShared>,
    pub(crate) inbox: mpsc::Receiver<String>,
    pub(crate) output: Arc<Mutex<OutputBudget>>,
    pub(crate) network: Arc<NetworkPolicy>,
    rate: EventRate,
    conversation: Conversation,
}

impl HostState {
    pub(crate) fn new(
        worker: Arc<WorkerShared>,
        wasi: WasiCtx,
        limiter: InstanceLimiter,
        inbox: mpsc::Receiver<String>,
        output: Arc<Mutex<OutputBudget>>,
        network: Arc<NetworkPolicy>,
    ) -> Self {
        let rate = EventRate::new(worker.limits().max_events_per_second);
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter,
            worker,
            inbox,
            output,
            network,
            rate,
            conversation: Conversation::default(),
        }
    }

    /// Charges one event to the guest's rate; a trap when it is exceeded.
    fn charge_event(&mut self) -> wasmtime::Result<()> {
        self.rate.take().map_err(wasmtime::Error::new)
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

//! The host side of the `colony:agent` world: one module per imported interface.
//!
//! Each function validates what the guest hands it against the runtime's
//! [`Limits`](crate::Limits) and answers a guest mistake (invalid JSON, an oversized
//! payload, a reserved event type) with an `err` the guest can handle. Traps are kept for
//! what the guest cannot recover from.

mod context;
mod conversation;
mod events;
mod inbox;
mod llm;
mod peers;
mod rate;
mod report;
mod taped;
mod tools;

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::colony::agent::types;
use crate::sandbox::handles::OpenHandles;
use crate::sandbox::limiter::InstanceLimiter;
use crate::sandbox::network::NetworkPolicy;
use crate::sandbox::output::OutputBudget;
use crate::sandbox::{DiskQuota, HostMemory, SandboxView};
use rate::EventRate;

pub(crate) use context::{HostServices, Identity, WorkerContext};
pub(crate) use conversation::Conversation;
pub(crate) use inbox::InboxMessage;
#[cfg(feature = "colony")]
pub(crate) use inbox::inbox_share;
pub(crate) use peers::MessageRouter;
#[cfg(feature = "colony")]
pub(crate) use peers::peer_message;
pub use report::ReportStatus;
pub(crate) use report::{ExplicitReport, into_object};

/// The data of one worker's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: InstanceLimiter,
    pub(crate) worker: Arc<WorkerContext>,
    pub(crate) inbox: mpsc::Receiver<InboxMessage>,
    pub(crate) output: Arc<Mutex<OutputBudget>>,
    pub(crate) network: Arc<NetworkPolicy>,
    rate: EventRate,
    conversation: Conversation,
    /// Files, listings and sockets the guest holds open.
    pub(crate) handles: OpenHandles,
}

impl HostState {
    pub(crate) fn new(
        worker: Arc<WorkerContext>,
        wasi: WasiCtx,
        limiter: InstanceLimiter,
        inbox: mpsc::Receiver<InboxMessage>,
        output: Arc<Mutex<OutputBudget>>,
        network: Arc<NetworkPolicy>,
    ) -> Self {
        let rate = EventRate::new(worker.limits().max_events_per_second);
        let handles = OpenHandles::new(worker.limits().open_handles);
        let mut table = ResourceTable::new();
        table.set_max_capacity(worker.limits().resource_entries.max(16));
        Self {
            wasi,
            table,
            limiter,
            worker,
            inbox,
            output,
            network,
            rate,
            conversation: Conversation::default(),
            handles,
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

impl SandboxView for HostState {
    fn disk(&self) -> &Arc<DiskQuota> {
        &self.worker.disk
    }

    fn memory(&self) -> &Arc<HostMemory> {
        &self.worker.memory
    }

    fn symlinks_granted(&self) -> bool {
        self.worker.grants().symlinks
    }

    fn network(&self) -> &Arc<NetworkPolicy> {
        &self.network
    }

    fn handles_have_room(&mut self) -> bool {
        self.handles.has_room(&self.table)
    }

    fn prune_handles(&mut self) {
        self.handles.prune(&self.table);
    }

    fn handles(&mut self) -> &mut OpenHandles {
        &mut self.handles
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

impl HostState {
    /// [`parse_json`], once the tree it would build fits in the worker's host memory
    /// budget (a guest's `[0,0,0,…]` costs many times its text as a tree).
    fn parse_guest_json(&self, what: &str, text: &str) -> Result<serde_json::Value, String> {
        let cost = crate::text::json_tree_cost(text);
        let _held = self
            .worker
            .memory
            .hold(cost, what)
            .map_err(|e| e.to_string())?;
        parse_json(what, text)
    }
}

//! One worker's wasmtime `Store`: the deny-by-default WASI context, resource limits and
//! the epoch deadline callback; and how a guest failure is put into words.

use std::sync::Arc;

use tokio::sync::mpsc;
use wasmtime::{Store, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::shared::WorkerShared;
use crate::host_api::HostState;
use crate::limits::human_bytes;

/// A fresh store for one worker's guest instance.
pub(crate) fn guest_store(
    shared: &Arc<WorkerShared>,
    inbox: mpsc::Receiver<String>,
) -> Store<HostState> {
    let limits = shared.limits();
    let stderr = MemoryOutputPipe::new(limits.stderr_capture_bytes);
    let wasi = WasiCtxBuilder::new()
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let store_limits = StoreLimitsBuilder::new()
        .memory_size(limits.memory_bytes)
        .table_elements(limits.table_elements)
        .instances(limits.instances)
        .tables(limits.tables)
        .memories(limits.memories)
        .trap_on_grow_failure(true)
        .build();
    let state = HostState::new(shared.clone(), wasi, store_limits, inbox, stderr);
    let mut store = Store::new(&shared.plugin.inner.runtime.inner.engine, state);
    store.limiter(|state| &mut state.limits);

    let slice = limits.cpu_slice_ticks.max(1);
    store.set_epoch_deadline(slice);
    let cancel = shared.cancel.clone();
    store.epoch_deadline_callback(move |_| {
        if cancel.is_cancelled() {
            Err(Trap::Interrupt.into())
        } else {
            Ok(UpdateDeadline::Yield(slice))
        }
    });
    store
}

/// Puts a guest failure into words: the kind of trap or limit, then the tail of what the
/// guest wrote to stderr (a Rust panic's message is there).
pub(crate) fn describe_failure(
    error: &wasmtime::Error,
    store: &Store<HostState>,
    what: &str,
) -> String {
    let limits = store.data().worker.limits();
    let text = format!("{error:#}");
    let cause = if let Some(trap) = error.downcast_ref::<Trap>() {
        match trap {
            Trap::StackOverflow => "stack overflow (the guest recursed too deep)".to_owned(),
            Trap::UnreachableCodeReached => {
                "guest trapped: unreachable instruction (a panic or abort in the guest)".to_owned()
            }
            Trap::Interrupt => "guest interrupted".to_owned(),
            other => format!("guest trapped: {other}"),
        }
    } else if text.contains("forcing trap when growing memory") {
        format!(
            "memory limit exceeded: {}",
            human_bytes(limits.memory_bytes)
        )
    } else if text.contains("forcing trap when growing table") {
        format!("table limit exceeded: {} elements", limits.table_elements)
    } else {
        text
    };
    let stderr = store.data().stderr.contents();
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    if stderr.is_empty() {
        format!("{what}: {cause}")
    } else {
        let tail: String = {
            let chars: Vec<char> = stderr.chars().collect();
            chars[chars.len().saturating_sub(500)..].iter().collect()
        };
        format!("{what}: {cause}; guest stderr: {tail}")
    }
}

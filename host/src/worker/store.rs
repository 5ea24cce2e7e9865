//! One worker's wasmtime `Store`: its sandbox (WASI context from the plugin's grants,
//! resource limiter, output capture) and the epoch deadline callback; and how a guest
//! failure is put into words.

use std::sync::Arc;

use tokio::sync::mpsc;
use wasmtime::component::ResourceTableError;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::shared::WorkerShared;
use crate::error::LimitExceeded;
use crate::host_api::{HostState, InboxMessage};
use crate::sandbox::limiter::InstanceLimiter;
use crate::sandbox::network::NetworkPolicy;
use crate::sandbox::output::{GuestOutput, OutputBudget, OutputSink};

/// A fresh store for one worker's guest instance.
/// `opens_files`: whether the guest can reach preopened folders at all (else it gets
/// no `/data`, and none is created for it).
pub(crate) fn guest_store(
    shared: &Arc<WorkerShared>,
    inbox: mpsc::Receiver<InboxMessage>,
    opens_files: bool,
) -> Result<Store<HostState>, String> {
    let limits = shared.limits();
    let world = shared.ctx.tape().map(|tape| tape.world());
    // A replay answers from its recording: it reaches no network.
    let network = match world.is_some_and(|w| w.isolated()) {
        true => NetworkPolicy::new(Vec::new()),
        false => NetworkPolicy::new(shared.plugin.grants().network_patterns()),
    };
    let budget = OutputBudget::new(limits.max_output_log_bytes, limits.stderr_capture_bytes);
    let sink: std::sync::Weak<dyn OutputSink> = Arc::downgrade(&shared.ctx) as _;
    let data_dir = shared
        .storage()
        .filter(|_| opens_files)
        .map(|s| s.root().join("data"));
    let wasi = crate::sandbox::wasi::context(
        shared.plugin.grants(),
        data_dir.as_deref(),
        &network,
        (
            GuestOutput::new("stdout", budget.clone(), sink.clone()),
            GuestOutput::new("stderr", budget.clone(), sink),
        ),
        world,
    )?;
    let limiter = InstanceLimiter::new(limits);
    let state = HostState::new(shared.ctx.clone(), wasi, limiter, inbox, budget, network);
    let mut store = Store::new(shared.plugin.engine(), state);
    store.limiter(|state| &mut state.limiter);

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
    Ok(store)
}

/// Puts a guest failure into words: the limit or the kind of trap, then the tail of what
/// the guest wrote to stderr (a Rust panic's message is there).
pub(crate) fn describe_failure(
    error: &wasmtime::Error,
    store: &Store<HostState>,
    what: &str,
) -> String {
    let cause = if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        limit.to_string()
    } else if let Some(ResourceTableError::Full) = error.downcast_ref::<ResourceTableError>() {
        LimitExceeded::Count {
            what: "WASI resource",
            limit: store.data().worker.limits().resource_entries,
        }
        .to_string()
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        match trap {
            Trap::StackOverflow => "stack overflow (the guest recursed too deep)".to_owned(),
            Trap::UnreachableCodeReached => {
                "guest trapped: unreachable instruction (a panic or abort in the guest)".to_owned()
            }
            Trap::Interrupt => "guest interrupted".to_owned(),
            Trap::MemoryOutOfBounds => {
                "guest trapped: out-of-bounds memory access (a bad pointer, \
                 or the guest's own stack overflowed into it)"
                    .to_owned()
            }
            other => format!("guest trapped: {other}"),
        }
    } else {
        format!("{error:#}")
    };
    let stderr = OutputBudget::stderr_tail(&store.data().output);
    if stderr.is_empty() {
        format!("{what}: {cause}")
    } else {
        let chars: Vec<char> = stderr.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(500)..].iter().collect();
        format!("{what}: {cause}; guest stderr: {tail}")
    }
}

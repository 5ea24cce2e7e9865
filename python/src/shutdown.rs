//! Colonies stopped when the interpreter exits.
//!
//! Why: a script that ends without `async with` (or `stop_all`) leaves its colonies'
//! workers running on the host's threads, which die with the process — the journal would
//! call them `interrupted` at the next open, with no reports. Python's `atexit` calls
//! [`stop_open_colonies`]: every colony still open is stopped (its workers end `stopped`,
//! with their reports journaled), and the stops that colonies dropped earlier started
//! are waited for; all of it bounded by [`EXIT_STOP_TIMEOUT`]. Then the traces of every
//! runtime that records them are exported (their last batch would be lost otherwise).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use colony::Colony;
use colony::telemetry::Telemetry;
use pyo3::prelude::*;
use tokio::task::JoinHandle;

use crate::host::tokio;

/// The longest the interpreter's exit waits for its colonies to stop (each worker's own
/// stop is bounded by its stop timeout; this bounds them all).
pub const EXIT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Colonies open in this process, by the token their Python object holds.
static OPEN: Mutex<Vec<(u64, Colony)>> = Mutex::new(Vec::new());
/// Stops started by colonies dropped without `stop_all`, not yet known to be done.
static STOPPING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(0);
/// The tracers of runtimes that record traces.
static TRACED: Mutex<Vec<std::sync::Weak<Telemetry>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Notes `colony` as open; the token for [`dropped`].
pub fn opened(colony: &Colony) -> u64 {
    let token = NEXT.fetch_add(1, Ordering::Relaxed);
    lock(&OPEN).push((token, colony.clone()));
    token
}

/// The colony of `token` was dropped: it is stopped in the background (waited for at
/// exit) and no longer counted as open.
pub fn dropped(token: u64) {
    let colony = {
        let mut open = lock(&OPEN);
        let Some(at) = open.iter().position(|(t, _)| *t == token) else {
            return;
        };
        open.swap_remove(at).1
    };
    let stop = tokio().spawn(async move {
        colony.stop_all().await;
    });
    let mut stopping = lock(&STOPPING);
    stopping.retain(|h| !h.is_finished());
    stopping.push(stop);
}

/// Notes a runtime's tracer, to export its last spans at exit.
pub fn traced(telemetry: Option<&std::sync::Arc<Telemetry>>) {
    if let Some(telemetry) = telemetry {
        let mut traced = lock(&TRACED);
        traced.retain(|t| t.strong_count() > 0);
        traced.push(std::sync::Arc::downgrade(telemetry));
    }
}

/// Stops every open colony, waits for the stops under way, and exports the last spans
/// (`atexit`).
#[pyfunction]
pub fn stop_open_colonies(py: Python<'_>) {
    stop_colonies(py);
    let tracers: Vec<_> = lock(&TRACED)
        .drain(..)
        .filter_map(|t| t.upgrade())
        .collect();
    if !tracers.is_empty() {
        py.detach(|| tracers.iter().for_each(|t| t.shutdown()));
    }
}

fn stop_colonies(py: Python<'_>) {
    let open: Vec<Colony> = lock(&OPEN).drain(..).map(|(_, c)| c).collect();
    let stopping: Vec<JoinHandle<()>> = lock(&STOPPING).drain(..).collect();
    if open.is_empty() && stopping.is_empty() {
        return;
    }
    py.detach(|| {
        tokio().block_on(async {
            let all = async {
                for colony in &open {
                    colony.stop_all().await;
                }
                for stop in stopping {
                    let _ = stop.await;
                }
            };
            // Past it the process exits anyway: what is still running is `interrupted`
            // at the journal's next open, as after a crash.
            let _ = tokio::time::timeout(EXIT_STOP_TIMEOUT, all).await;
        });
    });
}

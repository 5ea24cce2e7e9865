//! `colony._colony`: the native half of the Python package `colony`.
//!
//! Why a thin layer: every behaviour — sandbox, limits, lifecycle, journal, NATS — is the
//! Rust library's, so a Python host gets exactly what the `colony` command gets. This
//! crate only maps it to Python's shapes:
//! * every call that waits returns an asyncio awaitable backed by a tokio future
//!   ([`pyo3_async_runtimes`]): the event loop is never blocked, and cancelling the
//!   awaiting task drops the future (for `Worker.run`, that stops the worker);
//! * values cross as JSON ([`json`]): what a guest or a Python callable hands over is
//!   data, bounded by the host's budgets, never a live object;
//! * Python tools and model providers run as coroutines on the user's event loop
//!   ([`event_loop`]), called from the host's threads and cancelled when the host's
//!   timeout gives up on them;
//! * errors become one exception tree under `colony.ColonyError` ([`errors`]).

mod colony;
mod errors;
mod event_loop;
mod events;
mod host;
mod json;
mod provider;
mod runtime;
mod shutdown;
mod tool;
mod worker;

use pyo3::prelude::*;

/// The extension module. `colony/__init__.py` re-exports what users need.
#[pymodule]
fn _colony(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<runtime::PyRuntime>()?;
    m.add_class::<runtime::PyPlugin>()?;
    m.add_class::<worker::PyWorker>()?;
    m.add_class::<colony::PyColony>()?;
    m.add_class::<events::PyEventBus>()?;
    m.add_class::<events::PySubscription>()?;
    m.add_function(wrap_pyfunction!(shutdown::stop_open_colonies, m)?)?;
    errors::register(m)?;
    Ok(())
}

//! Running Python coroutines — tools and model providers written in Python — on the
//! user's asyncio event loop, from the host's tokio threads.
//!
//! Why on the user's loop: a framework's tool or model client is asyncio code bound to
//! its loop (its HTTP session, its locks); running it anywhere else breaks it. So the
//! host hands the coroutine to the loop with `asyncio.run_coroutine_threadsafe` and
//! waits for it without holding the GIL. The loop is the one the runtime was last used
//! from ([`LoopSlot::note`], called by every awaitable and by `Worker.start`).
//!
//! Why cancel on drop: the host bounds every tool and model call by a timeout, and stops
//! workers; when it gives up on a call the future is dropped, and the coroutine is then
//! cancelled on its loop, not left running unseen.
//!
//! No tokio worker thread waits for the GIL: the short GIL sections run on tokio's
//! blocking pool.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use tokio::sync::oneshot;

/// The event loop a runtime's Python callables run on.
#[derive(Default)]
pub struct LoopSlot(Mutex<Option<Py<PyAny>>>);

impl LoopSlot {
    /// Remembers the running loop, if the caller is on one.
    pub fn note(&self, py: Python<'_>) {
        if let Ok(running) = pyo3_async_runtimes::get_running_loop(py) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(running.unbind());
        }
    }

    fn current(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| l.clone_ref(py))
    }
}

/// Why a Python callable gave no value.
#[derive(Debug)]
pub enum CallError {
    /// No running event loop to run it on.
    NoLoop,
    /// It raised (or returned something that is not JSON); holds `Type: message`.
    Raised(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NoLoop => {
                f.write_str("the Python event loop this runtime was used from is not running")
            }
            CallError::Raised(message) => f.write_str(message),
        }
    }
}

/// What a Python exception says, as `Type: message`.
pub fn describe(py: Python<'_>, error: &PyErr) -> String {
    let name = error
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    format!("{name}: {}", error.value(py))
}

type Outcome = Result<String, CallError>;

/// Receives the coroutine's end on the loop's thread and sends its JSON to the host.
#[pyclass(frozen)]
struct Done {
    tx: Mutex<Option<oneshot::Sender<Outcome>>>,
}

#[pymethods]
impl Done {
    fn __call__(&self, future: &Bound<'_, PyAny>) {
        let py = future.py();
        let outcome = future
            .call_method0("result")
            .and_then(|value| crate::json::dumps(&value))
            .map_err(|e| CallError::Raised(describe(py, &e)));
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(outcome);
        }
    }
}

/// Cancels the coroutine on its loop if the host stops waiting for it.
struct CancelOnDrop(Option<Py<PyAny>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(future) = self.0.take() {
            tokio::task::spawn_blocking(move || {
                Python::attach(|py| {
                    let _ = future.bind(py).call_method0("cancel");
                })
            });
        }
    }
}

/// Calls `make` (which returns a coroutine) under the GIL, runs the coroutine on the
/// slot's loop, and returns its result as JSON text.
pub async fn call<F>(slot: Arc<LoopSlot>, make: F) -> Result<String, CallError>
where
    F: for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let submitted = tokio::task::spawn_blocking(move || {
        Python::attach(|py| -> Result<Py<PyAny>, CallError> {
            let event_loop = slot.current(py).ok_or(CallError::NoLoop)?;
            let event_loop = event_loop.bind(py);
            let running = event_loop
                .call_method0("is_running")
                .and_then(|r| r.is_truthy())
                .unwrap_or(false);
            if !running {
                return Err(CallError::NoLoop);
            }
            let raised = |e: PyErr| CallError::Raised(describe(py, &e));
            let coroutine = make(py).map_err(raised)?;
            let future = py
                .import("asyncio")
                .and_then(|asyncio| {
                    asyncio.call_method1("run_coroutine_threadsafe", (coroutine, event_loop))
                })
                .map_err(raised)?;
            let done = Done {
                tx: Mutex::new(Some(tx)),
            };
            future
                .call_method1("add_done_callback", (done,))
                .map_err(raised)?;
            Ok(future.unbind())
        })
    })
    .await
    .map_err(|e| CallError::Raised(format!("the call could not be made: {e}")))??;
    let mut guard = CancelOnDrop(Some(submitted));
    let outcome = rx
        .await
        .unwrap_or_else(|_| Err(CallError::Raised("the coroutine was dropped".into())));
    // It ended: nothing to cancel. (A reference dropped without the GIL is released by
    // PyO3 the next time the GIL is taken.)
    guard.0.take();
    outcome
}

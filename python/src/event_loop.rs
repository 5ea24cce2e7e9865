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
    /// Remembers the running loop, if the caller is on one — unless the loop already
    /// remembered still runs: a helper thread's loop awaiting something never takes the
    /// runtime's tools away from the main loop.
    pub fn note(&self, py: Python<'_>) {
        let Ok(running) = pyo3_async_runtimes::get_running_loop(py) else {
            return;
        };
        // No Python code runs under the lock: it may let another thread take the GIL,
        // which could then wait on this lock.
        let current = self.current(py);
        let keep = current
            .as_ref()
            .is_some_and(|current| !current.bind(py).is(&running) && is_running(current.bind(py)));
        if !keep {
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
    /// A tool's arguments do not fit its signature; holds why.
    InvalidArguments(String),
    /// It raised (logged with its traceback on the host); holds the exception's type
    /// and message.
    Raised { kind: String, message: String },
    /// Its JSON answer is larger than the limit; holds its size.
    TooLarge(usize),
    /// The host stopped waiting before it could be submitted.
    Abandoned,
}

impl CallError {
    fn raised(py: Python<'_>, error: &PyErr) -> Self {
        CallError::Raised {
            kind: error
                .get_type(py)
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "Exception".into()),
            message: error.value(py).to_string(),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NoLoop => {
                f.write_str("the Python event loop this runtime was used from is not running")
            }
            CallError::InvalidArguments(why) => write!(f, "invalid arguments: {why}"),
            CallError::Raised { kind, message } => write!(f, "{kind}: {message}"),
            CallError::TooLarge(size) => write!(f, "an answer of {size} bytes"),
            CallError::Abandoned => f.write_str("abandoned"),
        }
    }
}

type Outcome = Result<String, CallError>;

/// Receives the coroutine's end on the loop's thread and sends its JSON to the host.
#[pyclass(frozen)]
struct Done {
    tx: Mutex<Option<oneshot::Sender<Outcome>>>,
    /// What ran, for the host's log.
    what: String,
    /// The most bytes of JSON the answer may have.
    limit: usize,
}

#[pymethods]
impl Done {
    fn __call__(&self, future: &Bound<'_, PyAny>) {
        let py = future.py();
        let outcome = match future.call_method0("result") {
            Ok(value) => match crate::json::dumps_text(&value) {
                Ok(text) => match text.to_str() {
                    Ok(text) if text.len() > self.limit => Err(CallError::TooLarge(text.len())),
                    Ok(text) => Ok(text.to_owned()),
                    Err(e) => Err(CallError::raised(py, &e)),
                },
                Err(e) => Err(CallError::raised(py, &e)),
            },
            Err(e) if is_invalid_arguments(py, &e) => {
                Err(CallError::InvalidArguments(e.value(py).to_string()))
            }
            Err(e) => {
                if let Ok(log) = py.import("colony").and_then(|m| m.getattr("_log_failure")) {
                    let _ = log.call1((self.what.as_str(), e.value(py)));
                }
                Err(CallError::raised(py, &e))
            }
        };
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(outcome);
        }
    }
}

fn is_invalid_arguments(py: Python<'_>, error: &PyErr) -> bool {
    py.import("colony")
        .and_then(|m| m.getattr("_InvalidArguments"))
        .map(|kind| error.get_type(py).is(&kind))
        .unwrap_or(false)
}

/// The submitted coroutine's future, shared between the submitting closure and the
/// guard that cancels it when the host stops waiting.
#[derive(Default)]
struct Submitted {
    abandoned: bool,
    future: Option<Py<PyAny>>,
}

/// Cancels the coroutine on its loop if the host stops waiting for it — also when that
/// happens before it was submitted (then it never is).
struct CancelOnDrop(Arc<Mutex<Submitted>>);

impl CancelOnDrop {
    fn lock(&self) -> std::sync::MutexGuard<'_, Submitted> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let future = {
            let mut submitted = self.lock();
            submitted.abandoned = true;
            submitted.future.take()
        };
        if let Some(future) = future {
            crate::host::tokio().spawn_blocking(move || {
                Python::attach(|py| {
                    let _ = future.bind(py).call_method0("cancel");
                })
            });
        }
    }
}

/// Calls `make` (which returns an awaitable, e.g. a coroutine) under the GIL, runs it
/// on the slot's loop, and returns its result as JSON text of at most `limit` bytes.
/// `what` names it in the host's log if it raises.
pub async fn call<F>(slot: Arc<LoopSlot>, what: String, limit: usize, make: F) -> Outcome
where
    F: for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let guard = CancelOnDrop(Arc::new(Mutex::new(Submitted::default())));
    let shared = guard.0.clone();
    let submit = move || {
        Python::attach(|py| -> Result<(), CallError> {
            if shared.lock().unwrap_or_else(|e| e.into_inner()).abandoned {
                return Err(CallError::Abandoned);
            }
            let event_loop = slot.current(py).ok_or(CallError::NoLoop)?;
            let event_loop = event_loop.bind(py);
            if !is_running(event_loop) {
                return Err(CallError::NoLoop);
            }
            let raised = |e: PyErr| CallError::raised(py, &e);
            let awaitable = make(py).map_err(raised)?;
            let future = py
                .import("asyncio")
                .and_then(|asyncio| {
                    asyncio.call_method1("run_coroutine_threadsafe", (awaitable, event_loop))
                })
                .map_err(raised)?;
            let done = Done {
                tx: Mutex::new(Some(tx)),
                what,
                limit,
            };
            future
                .call_method1("add_done_callback", (done,))
                .map_err(raised)?;
            let abandoned = {
                let mut submitted = shared.lock().unwrap_or_else(|e| e.into_inner());
                if !submitted.abandoned {
                    submitted.future = Some(future.clone().unbind());
                }
                submitted.abandoned
            };
            if abandoned {
                let _ = future.call_method0("cancel");
            }
            Ok(())
        })
    };
    crate::host::tokio()
        .spawn_blocking(submit)
        .await
        .map_err(|e| CallError::Raised {
            kind: "RuntimeError".into(),
            message: format!("the call could not be made: {e}"),
        })??;
    let outcome = rx.await.unwrap_or(Err(CallError::Abandoned));
    // It ended: nothing to cancel.
    guard.lock().future.take();
    outcome
}

fn is_running(event_loop: &Bound<'_, PyAny>) -> bool {
    event_loop
        .call_method0("is_running")
        .and_then(|r| r.is_truthy())
        .unwrap_or(false)
}

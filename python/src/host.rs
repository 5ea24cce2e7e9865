//! [`Host`]: what every Python object made from one `Runtime` shares — the runtime and
//! the event loop its Python callables run on — and how a Rust future becomes something
//! Python can `await`.

use std::sync::Arc;

use colony::Runtime;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

use crate::event_loop::LoopSlot;

/// A runtime with its loop slot.
#[derive(Clone)]
pub struct Host {
    pub runtime: Runtime,
    pub event_loop: Arc<LoopSlot>,
}

static CALL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

impl Host {
    /// `fut` as a `colony._Call`: a coroutine, so `await`, `asyncio.create_task` and
    /// `asyncio.run` all take it. Nothing happens until it is first driven: then the
    /// caller's loop is noted and `fut` spawned on tokio; cancelling the driving task
    /// drops it. A call never driven never runs, as with any coroutine.
    pub fn awaitable<'py, F, T>(&self, py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: std::future::Future<Output = PyResult<T>> + Send + 'static,
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let pending = std::sync::Mutex::new(Some(fut));
        let event_loop = self.event_loop.clone();
        let start = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
            let py = args.py();
            let fut = pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("already awaited"))?;
            event_loop.note(py);
            pyo3_async_runtimes::tokio::future_into_py(py, fut).map(Bound::unbind)
        })?;
        let call = CALL.get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("colony")?.getattr("_Call")?.unbind())
        })?;
        call.bind(py).call1((start,))
    }
}

/// The tokio runtime behind every awaitable; sync calls that start tasks enter it.
pub fn tokio() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

//! [`Host`]: what every Python object made from one `Runtime` shares — the runtime and
//! the event loop its Python callables run on — and how a Rust future becomes something
//! Python can `await`.

use std::sync::Arc;

use colony::Runtime;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::event_loop::LoopSlot;

/// A runtime with its loop slot.
#[derive(Clone)]
pub struct Host {
    pub runtime: Runtime,
    pub event_loop: Arc<LoopSlot>,
}

static AWAITED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

impl Host {
    /// `fut` as a coroutine (so `asyncio.create_task` takes it as well as `await`),
    /// noting the caller's loop first. The future runs on tokio at once; cancelling the
    /// coroutine's task drops it.
    pub fn awaitable<'py, F, T>(&self, py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: std::future::Future<Output = PyResult<T>> + Send + 'static,
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        self.event_loop.note(py);
        let future = pyo3_async_runtimes::tokio::future_into_py(py, fut)?;
        let awaited = AWAITED.get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("colony")?.getattr("_Call")?.unbind())
        })?;
        awaited.bind(py).call1((future,))
    }
}

/// The tokio runtime behind every awaitable; sync calls that start tasks enter it.
pub fn tokio() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

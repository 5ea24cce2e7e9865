//! `Worker`: one agent loop in its sandbox, as the reference framework's `Worker`:
//! ephemeral (one run, one report) or persistent (one turn per injected message).

use std::path::PathBuf;

use colony::{MessagePart, StopOutcome, Worker, WorkerReport, WorkerSpec};
use pyo3::prelude::*;
use serde::Serialize;

use crate::events::PyEventBus;
use crate::host::{Host, tokio};
use crate::json::{self, Json};
use crate::runtime::PyPlugin;

/// A worker running a plugin's guest.
///
/// `input`: a dict handed to the guest. `event_bus`: where its events go. `persistent`:
/// one turn per injected message instead of one run. `storage_path`: its folder (needed
/// to seed a conversation). `token_budget` / `tool_call_budget`: instead of the
/// plugin's.
#[pyclass(name = "Worker", module = "colony", frozen)]
pub struct PyWorker {
    pub worker: Worker,
    pub host: Host,
}

/// What `stop` achieved.
#[derive(Serialize)]
pub struct Stopped<'a> {
    worker_id: &'a str,
    state: &'static str,
    clean: bool,
    elapsed_seconds: f64,
}

impl<'a> Stopped<'a> {
    pub fn new(worker_id: &'a str, outcome: &StopOutcome) -> Self {
        Self {
            worker_id,
            state: outcome.state.as_str(),
            clean: outcome.clean,
            elapsed_seconds: outcome.elapsed.as_secs_f64(),
        }
    }
}

/// Stops the worker if the awaiting task is cancelled before it ended.
struct StopIfDropped(Option<Worker>);

impl Drop for StopIfDropped {
    fn drop(&mut self) {
        if let Some(worker) = self.0.take().filter(|w| w.is_active()) {
            tokio().spawn(async move {
                worker.stop().await;
            });
        }
    }
}

#[pymethods]
impl PyWorker {
    #[new]
    #[pyo3(signature = (plugin, worker_id, task, *, input=None, event_bus=None, colony_id=None,
                        persistent=false, storage_path=None, token_budget=None, tool_call_budget=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        plugin: &PyPlugin,
        worker_id: String,
        task: String,
        input: Option<&Bound<'_, PyAny>>,
        event_bus: Option<&PyEventBus>,
        colony_id: Option<String>,
        persistent: bool,
        storage_path: Option<PathBuf>,
        token_budget: Option<u64>,
        tool_call_budget: Option<u32>,
    ) -> PyResult<Self> {
        let spec = if persistent {
            WorkerSpec::persistent(worker_id, task)
        } else {
            WorkerSpec::ephemeral(worker_id, task)
        };
        let mut spec = spec
            .with_input(json::object(input, "input")?)
            .with_budgets(token_budget, tool_call_budget);
        if let Some(colony_id) = colony_id {
            spec = spec.with_colony(colony_id);
        }
        if let Some(path) = storage_path {
            spec = spec.with_storage(path);
        }
        let worker = Worker::new(&plugin.plugin, spec, event_bus.map(|b| b.bus.clone()))
            .map_err(crate::errors::worker)?;
        Ok(Self {
            worker,
            host: plugin.host.clone(),
        })
    }

    /// Its id.
    #[getter]
    fn id(&self) -> &str {
        self.worker.id()
    }

    /// Its task.
    #[getter]
    fn task(&self) -> &str {
        &self.worker.spec().task
    }

    /// Its lifecycle state: pending, queued, running, completed, failed, stopped,
    /// interrupted.
    #[getter]
    fn state(&self) -> &'static str {
        self.worker.state().as_str()
    }

    /// The reference's name for `state`.
    #[getter]
    fn status(&self) -> &'static str {
        self.state()
    }

    /// Whether it is queued or running.
    #[getter]
    fn is_active(&self) -> bool {
        self.worker.is_active()
    }

    /// Whether it is persistent.
    #[getter]
    fn is_persistent(&self) -> bool {
        self.worker.is_persistent()
    }

    /// Its result (a dict) once it ended; for a persistent worker, its latest report's.
    #[getter]
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.worker
            .result()
            .map(|r| json::to_py(py, &r))
            .transpose()
    }

    /// Its report to its parent (the fields of its `SUBAGENT_REPORT` event), once it
    /// ended.
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let spec = self.worker.spec();
        self.worker
            .result()
            .map(|r| {
                let report = WorkerReport::from_result(
                    self.worker.id(),
                    &spec.colony_id,
                    &spec.task,
                    &r,
                    None,
                );
                json::to_py(py, &report)
            })
            .transpose()
    }

    /// A snapshot: id, task, plugin, mode, state, started_at, result.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json::to_py(py, &self.worker.info())
    }

    /// Writes `messages` (dicts with `role` and `content`) into its conversation before
    /// it starts. Returns how many were written.
    fn seed_conversation(&self, py: Python<'_>, messages: &Bound<'_, PyAny>) -> PyResult<usize> {
        let parts: Vec<MessagePart> = json::from_py(messages, "messages")?;
        py.detach(|| self.worker.seed_conversation(parts))
            .map_err(crate::errors::worker)
    }

    /// Starts it in the background.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.host.event_loop.note(py);
        let _tokio = tokio().enter();
        self.worker.start().map_err(crate::errors::worker)
    }

    /// Starts it and waits for its result (a persistent worker: until it is stopped).
    /// Cancelling the awaiting task stops the worker (in the background: `await
    /// worker.stop()` to wait for that).
    fn run<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let worker = self.worker.clone();
        self.host.awaitable(py, async move {
            worker.start().map_err(crate::errors::worker)?;
            let mut guard = StopIfDropped(Some(worker.clone()));
            let result = worker.wait().await;
            guard.0 = None;
            Json::of(&result)
        })
    }

    /// Waits for its result. Cancelling the wait leaves the worker running. A worker
    /// that was never started is a `WorkerError` (it would never end).
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.worker.state() == colony::WorkerState::Pending {
            return Err(crate::errors::WorkerError::new_err(format!(
                "worker '{}': cannot wait for a worker that was never started",
                self.worker.id()
            )));
        }
        let worker = self.worker.clone();
        self.host
            .awaitable(py, async move { Json::of(&worker.wait().await) })
    }

    /// Queues `message` for the guest (a persistent worker takes it as its next turn).
    fn inject(&self, message: String) -> PyResult<()> {
        self.worker.inject(message).map_err(crate::errors::worker)
    }

    /// Stops it (within its stop timeout) and returns `state`, `clean`,
    /// `elapsed_seconds`.
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let worker = self.worker.clone();
        self.host.awaitable(py, async move {
            let outcome = worker.stop().await;
            Json::of(&Stopped::new(worker.id(), &outcome))
        })
    }

    fn __repr__(&self) -> String {
        format!("<colony.Worker {:?} {}>", self.worker.id(), self.state())
    }
}

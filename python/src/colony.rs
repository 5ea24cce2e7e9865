//! `Colony`: an overseer and fanned-out ephemeral workers, journaled in a home folder,
//! in this process or on `colony node`s over NATS.

use std::path::PathBuf;
use std::time::Duration;

use colony::{Batch, Colony, ColonyConfig, JournalSync, MessagePart, Task, WorkerReport};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use serde::Serialize;
use serde_json::Value;

use crate::events::PyEventBus;
use crate::host::{Host, tokio};
use crate::json::{self, Json};
use crate::runtime::{PyPlugin, PyRuntime};
use crate::worker::{PyWorker, Stopped};

/// A colony. Open it with `await Colony.open(runtime, home)`; `async with colony:`
/// stops every worker on the way out.
#[pyclass(name = "Colony", module = "colony", frozen)]
pub struct PyColony {
    colony: Colony,
    host: Host,
    /// Its place among the colonies stopped at exit ([`crate::shutdown`]).
    token: u64,
}

/// A batch as Python sees it.
#[derive(Serialize)]
struct BatchView<'a> {
    id: &'a str,
    size: u64,
    started: Vec<&'a str>,
    reported: Vec<&'a WorkerReport>,
}

impl<'a> BatchView<'a> {
    fn of(batch: &'a Batch) -> Self {
        Self {
            id: &batch.id,
            size: batch.size,
            started: batch.started.iter().map(|(_, id)| id.as_str()).collect(),
            reported: batch.reported.iter().map(|(_, r)| r).collect(),
        }
    }
}

/// A replay's outcome as Python sees it.
#[derive(Serialize)]
struct OutcomeView {
    #[serde(flatten)]
    outcome: colony::ReplayOutcome,
    report_difference: Option<String>,
    matches: bool,
}

/// The tasks a Python caller gave: strings, or dicts with `task` and optionally
/// `input`, `token_budget`, `tool_call_budget`.
fn tasks(list: &Bound<'_, PyAny>) -> PyResult<Vec<Task>> {
    if list.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "tasks must be a list of tasks, not one string",
        ));
    }
    let mut tasks = Vec::new();
    for item in list.try_iter()? {
        let item = item?;
        if let Ok(text) = item.extract::<String>() {
            tasks.push(Task::new(text));
            continue;
        }
        let Value::Object(mut fields) = json::from_py::<Value>(&item, "task")? else {
            return Err(PyTypeError::new_err(
                "a task is a string or a dict with `task`",
            ));
        };
        let Some(Value::String(text)) = fields.remove("task") else {
            return Err(PyValueError::new_err("a task dict needs `task`, a string"));
        };
        let input = fields
            .remove("input")
            .unwrap_or(Value::Object(Default::default()));
        if !input.is_object() {
            return Err(PyTypeError::new_err("a task's `input` must be a dict"));
        }
        let number = |v: Option<Value>, what: &str| -> PyResult<Option<u64>> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
                Some(_) => Err(PyValueError::new_err(format!(
                    "a task's `{what}` must be a whole number"
                ))),
            }
        };
        let tokens = number(fields.remove("token_budget"), "token_budget")?;
        let tool_calls = number(fields.remove("tool_call_budget"), "tool_call_budget")?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        if let Some(key) = fields.keys().next() {
            return Err(PyValueError::new_err(format!(
                "a task dict has no field `{key}`"
            )));
        }
        tasks.push(
            Task::new(text)
                .with_input(input)
                .with_budgets(tokens, tool_calls),
        );
    }
    Ok(tasks)
}

fn seconds(value: Option<f64>, what: &str) -> PyResult<Option<Duration>> {
    value
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                PyValueError::new_err(format!("{what} must be a positive number of seconds"))
            })
        })
        .transpose()
}

#[pymethods]
impl PyColony {
    /// Opens (or creates) the colony `id` in `home`: its journal, the workers a killed
    /// process left active marked `interrupted`. With `nats` (a URL, or several
    /// comma-separated), its fanned-out workers run on `colony node`s there.
    /// `fsync=True` makes every journal commit reach the disk before it counts.
    #[staticmethod]
    #[pyo3(signature = (runtime, home, *, id="colony".to_owned(), max_concurrency=4, max_batch=8,
                        soft_timeout=None, hard_timeout=None, nats=None, nats_replicas=None, fsync=false))]
    #[allow(clippy::too_many_arguments)]
    fn open<'py>(
        py: Python<'py>,
        runtime: &PyRuntime,
        home: PathBuf,
        id: String,
        max_concurrency: usize,
        max_batch: usize,
        soft_timeout: Option<f64>,
        hard_timeout: Option<f64>,
        nats: Option<String>,
        nats_replicas: Option<usize>,
        fsync: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut config = ColonyConfig::new(id, home);
        config.max_concurrent_workers = max_concurrency;
        config.max_batch = max_batch;
        if let Some(soft) = seconds(soft_timeout, "soft_timeout")? {
            config.soft_timeout = soft;
        }
        config.hard_timeout = seconds(hard_timeout, "hard_timeout")?;
        config.nats = nats;
        config.nats_replicas = nats_replicas;
        if fsync {
            config.journal_sync = JournalSync::EveryBatch;
        }
        let host = runtime.host.clone();
        runtime.host.awaitable(py, async move {
            let runtime = host.runtime.clone();
            let colony = if config.nats.is_some() {
                Colony::connect(runtime, config).await
            } else {
                // Creating the home and opening and recovering the journal is blocking
                // I/O: not on tokio's worker threads.
                tokio::task::spawn_blocking(move || Colony::open(runtime, config))
                    .await
                    .map_err(|e| crate::errors::ColonyError::new_err(e.to_string()))?
            }
            .map_err(crate::errors::colony)?;
            let token = crate::shutdown::opened(&colony);
            Ok(PyColony {
                colony,
                host,
                token,
            })
        })
    }

    /// Its id.
    #[getter]
    fn id(&self) -> &str {
        self.colony.id()
    }

    /// Its home folder (a `pathlib.Path`).
    #[getter]
    fn home(&self) -> PathBuf {
        self.colony.config().home.clone()
    }

    /// The ids of workers an earlier process left active, marked `interrupted` on open.
    #[getter]
    fn interrupted(&self) -> Vec<String> {
        self.colony.interrupted().to_vec()
    }

    /// Whether its workers run on NATS nodes.
    #[getter]
    fn is_distributed(&self) -> bool {
        self.colony.is_distributed()
    }

    /// The bus every worker of the colony publishes on.
    #[getter]
    fn bus(&self) -> PyEventBus {
        PyEventBus {
            bus: self.colony.bus().clone(),
        }
    }

    /// A subscription to the colony's events (see `EventBus.subscribe`).
    #[pyo3(signature = (types=None, workers=None, capacity=None))]
    fn subscribe<'py>(
        &self,
        py: Python<'py>,
        types: Option<Vec<String>>,
        workers: Option<Vec<String>>,
        capacity: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::events::subscribe(py, self.colony.bus(), types, workers, capacity)
    }

    /// Fans `tasks` out to ephemeral workers of `plugin` (at most `max_batch`) and
    /// returns their ids at once; they start as concurrency slots free up.
    fn run_parallel(
        &self,
        py: Python<'_>,
        plugin: &PyPlugin,
        tasks: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<String>> {
        let tasks = self::tasks(tasks)?;
        self.host.event_loop.note(py);
        py.detach(|| {
            let _tokio = tokio().enter();
            self.colony.run_parallel(&plugin.plugin, tasks)
        })
        .map_err(crate::errors::colony)
    }

    /// One task (a string, or a dict as in `run_parallel`) to an ephemeral worker;
    /// returns its id.
    fn spawn(
        &self,
        py: Python<'_>,
        plugin: &PyPlugin,
        task: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        let list = pyo3::types::PyList::new(py, [task])?;
        let mut ids = self.run_parallel(py, plugin, list.as_any())?;
        Ok(ids.remove(0))
    }

    /// Fans `tasks` out as one journaled batch (no `max_batch` cap): returns `id`,
    /// `size`, `started` (worker ids in task order) and `reported` (empty).
    fn fan_out<'py>(
        &self,
        py: Python<'py>,
        plugin: &PyPlugin,
        tasks: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tasks = self::tasks(tasks)?;
        self.host.event_loop.note(py);
        let batch = py
            .detach(|| {
                let _tokio = tokio().enter();
                self.colony.fan_out(&plugin.plugin, tasks)
            })
            .map_err(crate::errors::colony)?;
        json::to_py(py, &BatchView::of(&batch))
    }

    /// Runs again exactly the tasks of batch `id` that have no report yet, once each;
    /// `reported` holds the reports of the others.
    fn resume_batch<'py>(
        &self,
        py: Python<'py>,
        plugin: &PyPlugin,
        id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.host.event_loop.note(py);
        let batch = py
            .detach(|| {
                let _tokio = tokio().enter();
                self.colony.resume_batch(&plugin.plugin, id)
            })
            .map_err(crate::errors::colony)?;
        json::to_py(py, &BatchView::of(&batch))
    }

    /// One report per id, in order: stored, arriving within `timeout` seconds, or a
    /// `timeout` report.
    #[pyo3(signature = (ids, timeout=600.0))]
    fn wait_for_reports<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<String>,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds(Some(timeout), "timeout")?.unwrap_or_default();
        let colony = self.colony.clone();
        self.host.awaitable(py, async move {
            let reports = colony
                .wait_for_reports(&ids, timeout)
                .await
                .map_err(crate::errors::colony)?;
            Json::of(&reports)
        })
    }

    /// Starts the colony's persistent overseer running `plugin` with `task`, seeded with
    /// `conversation` (dicts with `role` and `content`).
    #[pyo3(signature = (plugin, task, conversation=None))]
    fn start_overseer(
        &self,
        py: Python<'_>,
        plugin: &PyPlugin,
        task: String,
        conversation: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyWorker> {
        let parts: Vec<MessagePart> = match conversation {
            Some(c) if !c.is_none() => json::from_py(c, "conversation")?,
            _ => Vec::new(),
        };
        self.host.event_loop.note(py);
        let worker = py
            .detach(|| {
                let _tokio = tokio().enter();
                self.colony.start_overseer(&plugin.plugin, task, parts)
            })
            .map_err(crate::errors::colony)?;
        Ok(PyWorker {
            worker,
            host: self.host.clone(),
        })
    }

    /// Resumes the persistent worker `id` from the journal, its conversation as it was.
    fn resume_overseer(&self, py: Python<'_>, plugin: &PyPlugin, id: &str) -> PyResult<PyWorker> {
        self.host.event_loop.note(py);
        let worker = py
            .detach(|| {
                let _tokio = tokio().enter();
                self.colony.resume_overseer(&plugin.plugin, id)
            })
            .map_err(crate::errors::colony)?;
        Ok(PyWorker {
            worker,
            host: self.host.clone(),
        })
    }

    /// Replays worker `id`'s recorded run with `plugin` as a new worker, every model,
    /// tool, inbox and peer answer from the recording (none of them reached); `input`:
    /// a task input to give instead of the recorded one. Awaits its end; returns the
    /// outcome: `worker_id`, `recorded_worker`, `steps`, `recorded_steps`, `divergence`
    /// (`step`, `recorded`, `called`, `detail`, or None), `result`, `recorded_result`,
    /// `report_difference` (or None) and `matches`.
    #[pyo3(signature = (plugin, id, input=None))]
    fn replay<'py>(
        &self,
        py: Python<'py>,
        plugin: &PyPlugin,
        id: &str,
        input: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = match input {
            Some(input) if !input.is_none() => Some(json::object(Some(input), "input")?),
            _ => None,
        };
        self.host.event_loop.note(py);
        let replay = py
            .detach(|| {
                let _tokio = tokio().enter();
                self.colony.replay(&plugin.plugin, id, input)
            })
            .map_err(crate::errors::colony)?;
        self.host.awaitable(py, async move {
            let outcome = replay.finish().await;
            Json::of(&OutcomeView {
                report_difference: outcome.report_difference(),
                matches: outcome.matches(),
                outcome,
            })
        })
    }

    /// Forks worker `id`'s recorded run at step `at`: a new worker (returned, running)
    /// whose first `at` host calls are answered from the recording and the rest by this
    /// runtime's model and tools. A persistent one has had its recorded turns up to `at`.
    fn fork<'py>(
        &self,
        py: Python<'py>,
        plugin: &PyPlugin,
        id: String,
        at: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.host.event_loop.note(py);
        let (colony, plugin, host) = (
            self.colony.clone(),
            plugin.plugin.clone(),
            self.host.clone(),
        );
        self.host.awaitable(py, async move {
            let worker = colony
                .fork(&plugin, &id, at)
                .await
                .map_err(crate::errors::colony)?;
            Ok(PyWorker { worker, host })
        })
    }

    /// Worker `id`'s recording: `worker_id` and `steps` (each `index`, `kind`,
    /// `request_hash`, `request` or None, `answer`).
    fn recording<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        let recording = py
            .detach(|| self.colony.journal().recording(id))
            .map_err(|e| crate::errors::colony(e.into()))?;
        json::to_py(py, &recording)
    }

    /// Worker `id`'s recorded model answers as a script for the scripted provider (a
    /// list; write it as JSON and name it as the `[llm] script`).
    fn export_script<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        let recording = py
            .detach(|| self.colony.journal().recording(id))
            .map_err(|e| crate::errors::colony(e.into()))?;
        json::to_py(py, &recording.to_script())
    }

    /// The overseer, if one runs.
    #[getter]
    fn overseer(&self) -> Option<PyWorker> {
        self.colony.overseer().map(|worker| PyWorker {
            worker,
            host: self.host.clone(),
        })
    }

    /// The worker `id` of this process (not one on a NATS node), if any.
    fn worker(&self, id: &str) -> Option<PyWorker> {
        self.colony.worker(id).map(|worker| PyWorker {
            worker,
            host: self.host.clone(),
        })
    }

    /// A snapshot of every worker, in the order they were made.
    fn workers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json::to_py(py, &self.colony.workers())
    }

    /// A snapshot of worker `id`, or `None`.
    fn info<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        json::to_py(py, &self.colony.info(id))
    }

    /// Queues `message` for worker `id`.
    fn inject<'py>(
        &self,
        py: Python<'py>,
        id: String,
        message: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let colony = self.colony.clone();
        self.host.awaitable(py, async move {
            colony
                .inject(&id, message)
                .await
                .map_err(crate::errors::colony)
        })
    }

    /// Stops worker `id`.
    fn stop_worker<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let colony = self.colony.clone();
        self.host.awaitable(py, async move {
            let outcome = colony
                .stop_worker(&id)
                .await
                .map_err(crate::errors::colony)?;
            Json::of(&Stopped::new(&id, &outcome))
        })
    }

    /// Stops every worker and the overseer (queued ones never start); the colony takes
    /// no more work. Returns each worker's outcome.
    fn stop_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let colony = self.colony.clone();
        self.host.awaitable(py, async move {
            let outcomes = colony.stop_all().await;
            let stopped: Vec<Stopped<'_>> =
                outcomes.iter().map(|(id, o)| Stopped::new(id, o)).collect();
            Json::of(&stopped)
        })
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this: Py<Self> = slf.unbind();
        pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(this) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'_, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let colony = self.colony.clone();
        self.host.awaitable(py, async move {
            colony.stop_all().await;
            Ok(false)
        })
    }

    fn __repr__(&self) -> String {
        format!("<colony.Colony {:?}>", self.colony.id())
    }
}

impl Drop for PyColony {
    /// A colony dropped without `stop_all` (no `async with`) still stops its workers:
    /// nothing runs on unseen (and the interpreter's exit waits for that stop).
    fn drop(&mut self) {
        crate::shutdown::dropped(self.token);
    }
}

//! `EventBus` and subscriptions: the events of workers, filtered by type and worker, as
//! dicts with the reference framework's envelope (`type`, `stream_id`, `node_id`,
//! `execution_id`, `data`, `timestamp`).
//!
//! Why the split between `wait` and `drain`: an event taken from the bus by a read that
//! is then cancelled must not be lost. `wait` only moves the next event into the
//! subscription's stash (and may be cancelled at any point); `drain`, which cannot be
//! cancelled, hands the stash and whatever else is queued to Python. The Python class
//! `colony.Subscription` buffers what `drain` returns, so `async for` costs one
//! awaitable per burst of events, not per event.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use colony::{AgentEvent, EventBus, EventFilter, EventType, RecvError, Subscription};
use pyo3::prelude::*;

use crate::json;

/// Publish-subscribe for worker events.
#[pyclass(name = "EventBus", module = "colony", frozen)]
pub struct PyEventBus {
    pub bus: EventBus,
}

#[pymethods]
impl PyEventBus {
    #[new]
    fn new() -> Self {
        Self {
            bus: EventBus::new(),
        }
    }

    /// A subscription to the events matching `types` (event type names such as
    /// `SUBAGENT_REPORT`, or a guest's custom types) and `workers` (ids); `None` matches
    /// all. Up to `capacity` events wait unread; past that the oldest are dropped and
    /// counted in `missed`.
    #[pyo3(signature = (types=None, workers=None, capacity=None))]
    fn subscribe<'py>(
        &self,
        py: Python<'py>,
        types: Option<Vec<String>>,
        workers: Option<Vec<String>>,
        capacity: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        subscribe(py, &self.bus, types, workers, capacity)
    }
}

/// Subscribes to `bus` with the Python-side filter arguments; returns a
/// `colony.Subscription` (the Python class buffering this module's).
pub fn subscribe<'py>(
    py: Python<'py>,
    bus: &EventBus,
    types: Option<Vec<String>>,
    workers: Option<Vec<String>>,
    capacity: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut filter = EventFilter::all();
    if let Some(types) = types {
        filter = filter.types(types.iter().map(|t| {
            t.parse::<EventType>()
                .unwrap_or_else(|never| match never {})
        }));
    }
    if let Some(workers) = workers {
        filter = filter.workers(workers);
    }
    let subscription = match capacity {
        Some(capacity) => bus.subscribe_with_capacity(filter, capacity.max(1)),
        None => bus.subscribe(filter),
    };
    let native = PySubscription {
        inner: Arc::new(Inner {
            subscription: tokio::sync::Mutex::new(subscription),
            stash: Mutex::new(VecDeque::new()),
            missed: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            closing: tokio::sync::Notify::new(),
        }),
    };
    py.import("colony")?
        .getattr("Subscription")?
        .call1((native,))
}

struct Inner {
    subscription: tokio::sync::Mutex<Subscription>,
    /// Events taken from the bus by `wait`, not yet handed to Python.
    stash: Mutex<VecDeque<AgentEvent>>,
    missed: AtomicU64,
    closed: AtomicBool,
    closing: tokio::sync::Notify,
}

/// About the most JSON one `drain` hands to Python.
const DRAIN_BYTES: usize = 1 << 20;

/// Events gathered as one JSON array, up to a count and about [`DRAIN_BYTES`].
struct JsonArray {
    text: String,
    count: usize,
    limit: usize,
}

impl JsonArray {
    fn new(limit: usize) -> Self {
        Self {
            text: String::from("["),
            count: 0,
            limit,
        }
    }

    fn full(&self) -> bool {
        self.count >= self.limit || self.text.len() >= DRAIN_BYTES
    }

    fn push(&mut self, event: &AgentEvent) -> PyResult<()> {
        if self.count > 0 {
            self.text.push(',');
        }
        let json = serde_json::to_string(event)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        self.text.push_str(&json);
        self.count += 1;
        Ok(())
    }

    fn finish(mut self) -> String {
        self.text.push(']');
        self.text
    }
}

impl Inner {
    fn stash(&self) -> std::sync::MutexGuard<'_, VecDeque<AgentEvent>> {
        self.stash.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The native side of `colony.Subscription` (use that: it is an async iterator).
#[pyclass(name = "_Subscription", module = "colony", frozen)]
pub struct PySubscription {
    inner: Arc<Inner>,
}

#[pymethods]
impl PySubscription {
    /// Waits until an event is ready; `False` when the bus is gone or the subscription
    /// closed, and none will come. Takes nothing from Python's point of view: cancel it
    /// freely.
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let closing = inner.closing.notified();
            tokio::pin!(closing);
            closing.as_mut().enable();
            if inner.closed.load(Ordering::Acquire) {
                return Ok(!inner.stash().is_empty());
            }
            let mut subscription = inner.subscription.lock().await;
            loop {
                if !inner.stash().is_empty() {
                    return Ok(true);
                }
                tokio::select! {
                    received = subscription.recv() => match received {
                        Ok(event) => inner.stash().push_back(event),
                        Err(RecvError::Lagged(n)) => {
                            inner.missed.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(RecvError::Closed) => return Ok(false),
                    },
                    _ = &mut closing => return Ok(!inner.stash().is_empty()),
                }
            }
        })
    }

    /// Events ready now (dicts), without waiting: at most `limit` of them and about
    /// [`DRAIN_BYTES`] of JSON, so one call never stalls the event loop on a burst of
    /// large guest events.
    fn drain<'py>(&self, py: Python<'py>, limit: usize) -> PyResult<Bound<'py, PyAny>> {
        let mut batch = JsonArray::new(limit);
        {
            let mut stash = self.inner.stash();
            while !batch.full() {
                match stash.pop_front() {
                    Some(event) => batch.push(&event)?,
                    None => break,
                }
            }
        }
        if !batch.full()
            && let Ok(mut subscription) = self.inner.subscription.try_lock()
        {
            while !batch.full() {
                match subscription.try_recv() {
                    Ok(Some(event)) => batch.push(&event)?,
                    Ok(None) | Err(RecvError::Closed) => break,
                    Err(RecvError::Lagged(n)) => {
                        self.inner.missed.fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
        }
        json::loads(py, &batch.finish())
    }

    /// Ends the subscription: a pending or later `wait` returns `False` once what is
    /// already stashed is drained.
    fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.closing.notify_waiters();
    }

    /// Events dropped because the subscription's queue was full.
    #[getter]
    fn missed(&self) -> u64 {
        self.inner.missed.load(Ordering::Relaxed)
    }
}

//! What a worker is asked to do: [`WorkerSpec`] and its [`WorkerMode`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BatchPlace;

/// How a worker lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerMode {
    /// One `run` with a task, then the worker ends (fan-out workers).
    Ephemeral,
    /// The initial `run`, then one `on-message` turn per injected message on the same
    /// live instance, until stopped (the colony's overseer).
    Persistent,
}

impl WorkerMode {
    /// The lower-case name it is stored and serialized as.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerMode::Ephemeral => "ephemeral",
            WorkerMode::Persistent => "persistent",
        }
    }
}

impl std::fmt::Display for WorkerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The description of one worker. Build it with [`WorkerSpec::ephemeral`] or
/// [`WorkerSpec::persistent`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpec {
    /// Unique id within the colony; the `worker_id` (`node_id` on the wire) of every event
    /// the worker publishes.
    pub id: String,
    /// The task in natural language.
    pub task: String,
    /// The task's structured input: a JSON object.
    pub input: Value,
    /// The colony the worker belongs to (may be empty).
    pub colony_id: String,
    /// Ephemeral or persistent.
    pub mode: WorkerMode,
    /// The worker's own storage folder; without one nothing is written to disk and
    /// [`Worker::seed_conversation`](crate::Worker::seed_conversation) is refused.
    pub storage_path: Option<PathBuf>,
    /// The event stream; defaults to the worker id.
    pub stream_id: Option<String>,
    /// The execution id; defaults to the worker id.
    pub execution_id: Option<String>,
    /// This task's token budget, instead of the plugin's `token_budget` limit.
    pub token_budget: Option<u64>,
    /// This task's tool-call budget, instead of the plugin's `tool_call_budget` limit.
    pub tool_call_budget: Option<u32>,
    /// Its place in a fan-out, if it runs one of a batch's tasks: carried by its report.
    pub batch: Option<BatchPlace>,
    /// The W3C `traceparent` of the span its run's span is a child of (its colony's,
    /// here or on another machine), when traces are on.
    pub trace_parent: Option<String>,
}

impl WorkerSpec {
    /// An ephemeral worker: one run of `task`.
    pub fn ephemeral(id: impl Into<String>, task: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            task: task.into(),
            input: Value::Object(Default::default()),
            colony_id: String::new(),
            mode: WorkerMode::Ephemeral,
            storage_path: None,
            stream_id: None,
            execution_id: None,
            token_budget: None,
            tool_call_budget: None,
            batch: None,
            trace_parent: None,
        }
    }

    /// A persistent worker: an initial run of `task`, then one turn per injected message.
    pub fn persistent(id: impl Into<String>, task: impl Into<String>) -> Self {
        Self {
            mode: WorkerMode::Persistent,
            ..Self::ephemeral(id, task)
        }
    }

    /// Sets the structured input (must be a JSON object).
    pub fn with_input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    /// Sets the colony id.
    pub fn with_colony(mut self, colony_id: impl Into<String>) -> Self {
        self.colony_id = colony_id.into();
        self
    }

    /// Sets the worker's storage folder.
    pub fn with_storage(mut self, path: impl Into<PathBuf>) -> Self {
        self.storage_path = Some(path.into());
        self
    }

    /// Sets the event stream id.
    pub fn with_stream_id(mut self, stream_id: impl Into<String>) -> Self {
        self.stream_id = Some(stream_id.into());
        self
    }

    /// Sets the execution id.
    pub fn with_execution_id(mut self, execution_id: impl Into<String>) -> Self {
        self.execution_id = Some(execution_id.into());
        self
    }

    /// Sets this task's token and tool-call budgets.
    pub fn with_budgets(mut self, tokens: Option<u64>, tool_calls: Option<u32>) -> Self {
        self.token_budget = tokens;
        self.tool_call_budget = tool_calls;
        self
    }

    /// Places it in a batch: its reports carry the batch's id, its task's index and the
    /// batch's size.
    pub fn with_batch(mut self, place: Option<BatchPlace>) -> Self {
        self.batch = place;
        self
    }

    /// Makes its run's span a child of the span `traceparent` (W3C) names.
    pub fn with_trace_parent(mut self, traceparent: Option<String>) -> Self {
        self.trace_parent = traceparent;
        self
    }

    /// Whether the worker is persistent.
    pub fn is_persistent(&self) -> bool {
        self.mode == WorkerMode::Persistent
    }

    /// `stream_id`, or the worker id.
    pub fn effective_stream_id(&self) -> &str {
        self.stream_id.as_deref().unwrap_or(&self.id)
    }

    /// `execution_id`, or the worker id.
    pub fn effective_execution_id(&self) -> &str {
        self.execution_id.as_deref().unwrap_or(&self.id)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("the worker id is empty".into());
        }
        if !self.input.is_object() {
            return Err(format!("input must be a JSON object, got {}", self.input));
        }
        Ok(())
    }
}

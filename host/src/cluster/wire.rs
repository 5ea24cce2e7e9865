//! What travels over NATS: a task, a stored report, a control request and its reply. All
//! JSON, so any NATS client can read or drive a colony.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use chrono::Utc;

use crate::events::{AgentEvent, EventType};
use crate::worker::{BatchPlace, WorkerReport};
use crate::worker::{WorkerResult, WorkerState};

/// One task on the work queue: everything a node needs to run the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    /// The id of the worker to run, unique within the colony.
    pub worker_id: String,
    /// The colony the worker belongs to (where its report goes).
    pub colony_id: String,
    /// The plugin's name, for messages only.
    pub plugin: String,
    /// The sha256 of the plugin's component: only a node holding it runs the task.
    pub sha256: String,
    /// The task in natural language.
    pub task: String,
    /// The task's structured input: a JSON object.
    pub input: Value,
    /// This task's token budget; `None` keeps the node's plugin limit.
    pub token_budget: Option<u64>,
    /// This task's tool-call budget; `None` keeps the node's plugin limit.
    pub tool_call_budget: Option<u32>,
    /// The colony's soft timeout: after this long the worker gets a "[SOFT TIMEOUT] …"
    /// message. Both timeouts count from the moment the worker starts on the node.
    #[serde(with = "humantime_serde")]
    pub soft_timeout: Duration,
    /// The colony's hard timeout: after this long the node stops the worker.
    #[serde(with = "humantime_serde")]
    pub hard_timeout: Duration,
    /// Messages injected before the task was published, in order: the worker's inbox
    /// holds them when it starts.
    #[serde(default)]
    pub inbox: Vec<String>,
    /// The task's place in its batch, if it is one of a fan-out's: its report names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchPlace>,
    /// The W3C `traceparent` of the colony's span, when traces are on: the worker's span
    /// on the node joins the colony's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<String>,
}

/// A worker's end, as stored in the reports stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportMessage {
    /// The node that ran the worker (or `colony` when the colony itself ended it).
    pub node: String,
    /// The colony the worker belonged to.
    pub colony_id: String,
    /// The worker's terminal state.
    pub state: WorkerState,
    /// What the worker handed back.
    pub result: WorkerResult,
    /// The `SUBAGENT_REPORT` event, exactly as the node's worker published it.
    pub event: AgentEvent,
}

/// A request to whoever runs a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Control {
    /// Stop the worker; answered at once, its report follows when it has stopped.
    Stop,
    /// Queue a message in the worker's inbox, as [`Worker::inject`](crate::Worker::inject).
    Inject {
        /// The message text.
        message: String,
    },
    /// A `peers.send` from a worker on a node, to its colony, which routes it as it
    /// routes its own workers' (holding it for a worker that has not started yet).
    Peer {
        /// The sending worker.
        from: String,
        /// The target: a worker id, or `overseer`.
        to: String,
        /// The message text (the colony adds the "[MESSAGE from …]" envelope).
        message: String,
    },
}

/// The answer to a [`Control`] request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlReply {
    /// `None` when done.
    pub error: Option<String>,
}

/// The result of a task that was not run: refused, given up, or failed to start.
pub(crate) fn not_run(reason: String) -> WorkerResult {
    let mut result = crate::worker::crashed(reason, 0.0, Default::default());
    result.summary = format!("Not run: {}", result.error.as_deref().unwrap_or_default());
    result
}

impl TaskMessage {
    /// The report of this task's worker, ended with `result`.
    pub(crate) fn report(&self, result: &WorkerResult) -> WorkerReport {
        WorkerReport::from_result(
            &self.worker_id,
            &self.colony_id,
            &self.task,
            result,
            self.batch.as_ref(),
        )
    }
}

impl ReportMessage {
    /// The report of a worker that ended without running on a node (refused, given up,
    /// withdrawn while queued): `result` as the worker's own report would carry it.
    pub fn synthesised(
        node: &str,
        task: &TaskMessage,
        state: WorkerState,
        result: WorkerResult,
    ) -> Self {
        let report = task.report(&result);
        Self {
            node: node.to_owned(),
            colony_id: task.colony_id.clone(),
            state,
            event: AgentEvent {
                event_type: EventType::SubagentReport,
                stream_id: task.worker_id.clone(),
                worker_id: task.worker_id.clone(),
                execution_id: task.worker_id.clone(),
                data: serde_json::to_value(&report).unwrap_or_default(),
                timestamp: Utc::now(),
            },
            result,
        }
    }
}

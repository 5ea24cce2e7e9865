//! The state one worker shares between its handle ([`Worker`](super::Worker)), its
//! background task ([`driver`](super::driver)) and the host functions its guest calls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::report::WorkerReport;
use super::result::{ExplicitReport, RunOutcome, WorkerResult};
use super::{WorkerInfo, WorkerSpec, WorkerState};
use crate::events::{AgentEvent, EventBus, EventType};
use crate::limits::Limits;
use crate::plugin::Plugin;
use crate::sandbox::output::OutputSink;
use crate::sandbox::{DiskQuota, Held, HostMemory};
use crate::storage::WorkerStorage;

/// What watchers of a worker see change.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub state: WorkerState,
    pub result: Option<WorkerResult>,
    pub started: Option<Instant>,
    pub started_at: Option<DateTime<Utc>>,
    /// Set once the worker has ended *and* its terminal events are published: what
    /// `wait` and `stop` wait for, so a caller never sees the end before the report.
    pub ended: bool,
}

pub(crate) struct WorkerShared {
    pub spec: WorkerSpec,
    pub plugin: Plugin,
    pub bus: Option<EventBus>,
    pub storage: Option<WorkerStorage>,
    /// Set by `stop`; read by the driver and by the epoch callback.
    pub cancel: CancellationToken,
    pub status: watch::Sender<Status>,
    /// The guest's latest `report-to-parent`, not yet published.
    pub report: Mutex<Option<ExplicitReport>>,
    pub inbox: mpsc::Sender<InboxMessage>,
    /// The receiving end, handed to the guest's store when the worker starts.
    pub inbox_rx: Mutex<Option<mpsc::Receiver<InboxMessage>>>,
    /// Bytes the host holds for this worker (inbox, pages, results, streams).
    pub memory: Arc<HostMemory>,
    /// The inbox's share of `memory`.
    pub inbox_memory: Arc<HostMemory>,
    /// Injected messages the guest took itself (`inbox.drain` / `inbox.wait`): they
    /// never become turns.
    pub taken: AtomicU64,
    /// Bytes the host may still write to disk for it.
    pub disk: Arc<DiskQuota>,
    /// Bytes of its events `events.jsonl` may still take.
    pub event_disk: DiskQuota,
    /// Set once `events.jsonl` stopped taking the guest's events (quota spent).
    pub events_capped: AtomicBool,
    pub task: Mutex<Option<JoinHandle<()>>>,
    /// Serialises `start` against `seed_conversation`.
    pub lifecycle: Mutex<()>,
    pub tokens_used: AtomicU64,
    pub tool_calls: std::sync::atomic::AtomicU32,
    /// Set when a model or tool call was refused for a spent budget.
    pub budget_limited: AtomicBool,
    /// Claimed by the first `finish`, so a worker ends exactly once.
    pub finished: AtomicBool,
    /// Told of every state change and every event before it is published (the journal).
    pub observer: OnceLock<Arc<dyn WorkerObserver>>,
    /// Delivers `peers.send` messages (the worker's colony). Weak: a colony owns its
    /// workers, not the other way round.
    pub router: OnceLock<std::sync::Weak<dyn MessageRouter>>,
}

/// A message waiting in a worker's inbox, its bytes charged to the worker's
/// [`HostMemory`] — and to the inbox's share of it — until it is delivered.
#[derive(Debug)]
pub(crate) struct InboxMessage {
    pub text: String,
    _held: [Held; 2],
}

impl InboxMessage {
    pub fn new(text: String, held: [Held; 2]) -> Self {
        Self { text, _held: held }
    }
}

/// The inbox's share of the host memory budget: what others can queue for a worker
/// leaves the rest for its own calls, so a sibling flooding it cannot starve it.
pub(crate) fn inbox_share(host_memory_bytes: usize) -> Arc<HostMemory> {
    HostMemory::named(
        host_memory_bytes / 2,
        "inbox's share of the host memory budget",
    )
}

/// The message worker `to` receives when worker `from` sends it `message`.
pub(crate) fn peer_message(from: &str, message: &str) -> String {
    format!("[MESSAGE from {from}] {message}")
}

/// Delivers a message from one worker to another of the same colony.
#[async_trait::async_trait]
pub(crate) trait MessageRouter: Send + Sync {
    /// `Err` (shown to the sending guest) when the target is unknown or has ended.
    /// `in_flight` is the sender's charge for the message while it travels; a message
    /// to a worker on another node is answered once that node has it (or says why not).
    async fn route(
        &self,
        from: &str,
        to: &str,
        message: &str,
        in_flight: Held,
    ) -> Result<(), String>;
}

/// Hears what happens to a worker, synchronously, before anyone else does: a state
/// change before `wait` returns, a report before the worker's end is known and before
/// the bus delivers it. A [`Colony`](crate::Colony) journals through it, so a report is
/// durable before it is published.
pub trait WorkerObserver: Send + Sync {
    /// The worker changed state (`info` is a snapshot after the change).
    fn state_changed(&self, info: &WorkerInfo);
    /// The worker is about to publish `report` (a SUBAGENT_REPORT). `Err` (why it
    /// could not be recorded) fails closed: the report is withheld and the worker ends
    /// FAILED with that error, reported instead.
    fn reporting(&self, report: &AgentEvent) -> Result<(), String>;
}

impl WorkerShared {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn limits(&self) -> &Limits {
        self.plugin.limits()
    }

    /// "worker 'w-1' (plugin 'echo')": how errors name this worker.
    pub fn label(&self) -> String {
        format!(
            "worker '{}' (plugin '{}')",
            self.spec.id,
            self.plugin.name()
        )
    }

    pub fn state(&self) -> WorkerState {
        self.status.borrow().state
    }

    pub fn tokens(&self) -> u64 {
        self.tokens_used.load(Ordering::Relaxed)
    }

    /// The token budget in force (the task's, else the plugin's).
    pub fn token_budget(&self) -> u64 {
        self.spec.token_budget.unwrap_or(self.limits().token_budget)
    }

    /// The tool-call budget in force (the task's, else the plugin's).
    pub fn tool_call_budget(&self) -> u32 {
        self.spec
            .tool_call_budget
            .unwrap_or(self.limits().tool_call_budget)
    }

    pub fn elapsed_seconds(&self) -> f64 {
        self.status
            .borrow()
            .started
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    pub fn take_report(&self) -> Option<ExplicitReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Moves to `next` if the lifecycle allows it, applying `update` in the same step.
    /// Returns whether the transition happened.
    pub fn transition(&self, next: WorkerState, update: impl FnOnce(&mut Status)) -> bool {
        let changed = self.status.send_if_modified(|status| {
            if !status.state.can_become(next) {
                return false;
            }
            status.state = next;
            update(status);
            true
        });
        if changed && let Some(observer) = self.observer.get() {
            observer.state_changed(&self.info());
        }
        changed
    }

    /// A snapshot of the worker.
    pub fn info(&self) -> WorkerInfo {
        let status = self.status.borrow();
        WorkerInfo {
            id: self.spec.id.clone(),
            task: self.spec.task.clone(),
            plugin: self.plugin.name().to_owned(),
            mode: self.spec.mode,
            state: status.state,
            started_at: status.started_at,
            result: status.result.clone(),
        }
    }

    /// Ends the worker in `state` with `result`: stores it, writes `result.json`, then
    /// publishes the terminal events. Only the first call for a worker has any effect.
    pub fn finish(
        &self,
        state: WorkerState,
        mut result: WorkerResult,
        run: Option<&RunOutcome>,
    ) -> bool {
        if self.budget_limited.load(Ordering::Relaxed) {
            result
                .data
                .insert("budget_limited".into(), Value::Bool(true));
        }
        if !self.state().can_become(state) || self.finished.swap(true, Ordering::AcqRel) {
            return false;
        }
        // Stamped in the order they are published: the run's outcome, then the report.
        let outcome = run.map(|run| self.run_outcome_event(run));
        let (state, result, report) = self.make_durable(state, result);
        if !self.transition(state, |s| s.result = Some(result)) {
            return false;
        }
        if let Some(outcome) = outcome {
            self.send(outcome);
        }
        self.send(report);
        self.status.send_modify(|s| s.ended = true);
        true
    }

    /// Writes `result.json` and journals the report, before anyone hears of the end.
    /// Fails closed: a report that cannot be made durable is withheld, and the worker
    /// ends FAILED with an error saying why (that outcome is written where it still can
    /// be).
    fn make_durable(
        &self,
        state: WorkerState,
        result: WorkerResult,
    ) -> (WorkerState, WorkerResult, AgentEvent) {
        let written = match &self.storage {
            Some(storage) => storage
                .write_result(&result)
                .map_err(|e| format!("cannot write result.json: {e}")),
            None => Ok(()),
        };
        let report = self.report_event(&result);
        let Err(problem) = written.and_then(|()| self.journal(&report)) else {
            return (state, result, report);
        };
        let reason = format!("{}: {problem}; its own report is withheld", self.label());
        tracing::error!("{reason}");
        let failed = super::result::withheld(result, reason);
        if let Some(storage) = &self.storage {
            let _ = storage.write_result(&failed);
        }
        let report = self.report_event(&failed);
        if let Err(e) = self.journal(&report) {
            tracing::error!("{}: {e}", self.label());
        }
        (WorkerState::Failed, failed, report)
    }

    /// Tells the observer (the journal) of `report`; its refusal as text.
    fn journal(&self, report: &AgentEvent) -> Result<(), String> {
        match self.observer.get() {
            Some(observer) => observer.reporting(report),
            None => Ok(()),
        }
    }

    /// Publishes a report of a worker that goes on running (a persistent worker's first
    /// run): EXECUTION_COMPLETED / EXECUTION_FAILED, then SUBAGENT_REPORT once journaled.
    /// A report the journal refuses is withheld, as in [`WorkerShared::finish`].
    pub fn publish_terminal(&self, result: &WorkerResult, run: Option<&RunOutcome>) {
        if let Some(run) = run {
            self.send(self.run_outcome_event(run));
        }
        let report = self.report_event(result);
        match self.journal(&report) {
            Ok(()) => self.send(report),
            Err(problem) => {
                let reason = format!("{}: {problem}; its own report is withheld", self.label());
                tracing::error!("{reason}");
                let failed = super::result::withheld(result.clone(), reason);
                let report = self.report_event(&failed);
                let _ = self.journal(&report);
                self.status.send_modify(|s| s.result = Some(failed));
                self.send(report);
            }
        }
    }

    /// EXECUTION_COMPLETED / EXECUTION_FAILED for the run's result.
    fn run_outcome_event(&self, run: &RunOutcome) -> AgentEvent {
        let event_type = if run.success() {
            EventType::ExecutionCompleted
        } else {
            EventType::ExecutionFailed
        };
        self.event(
            event_type,
            json!({
                "worker_id": self.spec.id,
                "colony_id": self.spec.colony_id,
                "task": self.spec.task,
                "success": run.success(),
                "error": run.error,
                "output_keys": run.output_keys(),
            }),
        )
    }

    /// The SUBAGENT_REPORT for `result`, with the reference's payload fields.
    fn report_event(&self, result: &WorkerResult) -> AgentEvent {
        let report =
            WorkerReport::from_result(&self.spec.id, &self.spec.colony_id, &self.spec.task, result);
        // A struct of strings, numbers and a JSON map always serializes.
        let data = serde_json::to_value(report).unwrap_or_default();
        self.event(EventType::SubagentReport, data)
    }

    /// Appends `event` to `events.jsonl`. The worker's lifecycle events are always
    /// stored; the others (its own events, logs, model text, turns) are charged to its
    /// event log quota, and once that is spent they are no longer stored (one line says
    /// so) though still published.
    fn store_event(&self, storage: &WorkerStorage, event: &AgentEvent) {
        let always = matches!(
            event.event_type,
            EventType::ExecutionStarted
                | EventType::ExecutionCompleted
                | EventType::ExecutionFailed
                | EventType::SubagentReport
        );
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!("{}: cannot encode an event: {e}", self.label());
                return;
            }
        };
        line.push(b'\n');
        if !always {
            if self.events_capped.load(Ordering::Acquire) {
                return;
            }
            if let Err(e) = self
                .event_disk
                .charge(line.len() as u64, "an event in events.jsonl")
            {
                if self.events_capped.swap(true, Ordering::AcqRel) {
                    return;
                }
                let notice = AgentEvent {
                    event_type: EventType::WorkerLog,
                    data: json!({"worker_id": self.spec.id, "level": "warn",
                        "message": format!("further events are not stored: {e}")}),
                    ..event.clone()
                };
                line = serde_json::to_vec(&notice).unwrap_or_default();
                line.push(b'\n');
            }
        }
        if let Err(e) = storage.append_event_line(&line) {
            tracing::warn!("{}: cannot append to events.jsonl: {e}", self.label());
        }
    }

    /// An event from this worker, stamped now.
    fn event(&self, event_type: EventType, data: Value) -> AgentEvent {
        AgentEvent {
            event_type,
            stream_id: self.spec.effective_stream_id().to_owned(),
            node_id: self.spec.id.clone(),
            execution_id: self.spec.effective_execution_id().to_owned(),
            data,
            timestamp: Utc::now(),
        }
    }

    /// Publishes one event from this worker: to its `events.jsonl`, then to the bus.
    pub fn publish(&self, event_type: EventType, data: Value) {
        if self.bus.is_none() && self.storage.is_none() {
            return;
        }
        self.send(self.event(event_type, data));
    }

    fn send(&self, event: AgentEvent) {
        if let Some(storage) = &self.storage {
            self.store_event(storage, &event);
        }
        if let Some(bus) = &self.bus {
            bus.publish(event);
        }
    }
}

impl OutputSink for WorkerShared {
    fn line(&self, stream: &'static str, level: &'static str, message: String) {
        self.publish(
            EventType::WorkerLog,
            json!({"worker_id": self.id(), "level": level, "stream": stream, "message": message}),
        );
    }
}

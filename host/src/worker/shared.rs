//! The state one worker shares between its handle ([`Worker`](super::Worker)), its
//! background task ([`driver`](super::driver)) and the host functions its guest calls.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::report::WorkerReport;
use super::result::{ExplicitReport, RunOutcome, Usage, WorkerResult};
use super::{WorkerInfo, WorkerSpec, WorkerState};
use crate::events::{AgentEvent, EventType};
use crate::host_api::WorkerContext;
use crate::limits::Limits;
use crate::plugin::Plugin;
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
    /// Set once the guest is gone (its store dropped): what is left is journaling and
    /// publishing its end, which holds no sandbox resources.
    pub guest_gone: bool,
}

pub(crate) struct WorkerShared {
    pub spec: WorkerSpec,
    pub plugin: Plugin,
    /// What the guest's host functions see: budgets, counters, storage, events.
    pub ctx: Arc<WorkerContext>,
    /// Set by `stop`; read by the driver and by the epoch callback.
    pub cancel: CancellationToken,
    pub status: watch::Sender<Status>,
    /// Injected messages; its receiving end is handed to the guest's store at start.
    pub inbox: super::inbox::Inbox,
    pub task: Mutex<Option<JoinHandle<()>>>,
    /// Serialises `start` against `seed_conversation`.
    pub lifecycle: Mutex<()>,
    /// Claimed by the first `finish`, so a worker ends exactly once.
    pub finished: AtomicBool,
    /// Told of every state change and every event before it is published (the journal).
    pub observer: OnceLock<Arc<dyn WorkerObserver>>,
}

/// Hears what happens to a worker before anyone else does: a state change as it
/// happens, a report (with the worker's end, for a final one) before the worker's end is
/// known and before the bus delivers it. A [`Colony`](crate::Colony) journals through
/// it, so a report is durable before it is published. A worker with an observer writes
/// no `result.json`: the observer keeps its result.
pub trait WorkerObserver: Send + Sync {
    /// The worker changed state (`info` is a snapshot after the change). Must not block:
    /// the change is already made.
    fn state_changed(&self, info: &WorkerInfo);
    /// The worker is about to publish `report` (a SUBAGENT_REPORT) and, when `ended` is
    /// given, to end as it says (its terminal state and result). The report is published
    /// once the returned future resolves `Ok`; `Err` (why it could not be recorded) fails
    /// closed: the report is withheld and the worker ends FAILED with that error,
    /// reported instead.
    fn reporting(
        &self,
        report: &AgentEvent,
        ended: Option<&WorkerInfo>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
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
        self.ctx.label()
    }

    pub fn storage(&self) -> Option<&WorkerStorage> {
        self.ctx.storage.as_ref()
    }

    pub fn state(&self) -> WorkerState {
        self.status.borrow().state
    }

    pub fn usage(&self) -> Usage {
        Usage {
            tokens: self.ctx.tokens(),
            tool_calls: self.ctx.tool_calls_used(),
        }
    }

    pub fn elapsed_seconds(&self) -> f64 {
        self.status
            .borrow()
            .started
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    pub fn take_report(&self) -> Option<ExplicitReport> {
        self.ctx.take_report()
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
    pub async fn finish(
        &self,
        state: WorkerState,
        mut result: WorkerResult,
        run: Option<&RunOutcome>,
    ) -> bool {
        if self.ctx.budget_limited() {
            result
                .data
                .insert("budget_limited".into(), Value::Bool(true));
        }
        if !self.state().can_become(state) || self.finished.swap(true, Ordering::AcqRel) {
            return false;
        }
        // Stamped in the order they are published: the run's outcome, then the report.
        let outcome = run.map(|run| self.run_outcome_event(run));
        let (state, result, report) = self.make_durable(state, result).await;
        if !self.transition(state, |s| s.result = Some(result)) {
            return false;
        }
        if let Some(outcome) = outcome {
            self.send(outcome);
        }
        self.send(report);
        if let Some(trace) = self.ctx.trace()
            && let Some(result) = &self.status.borrow().result
        {
            trace.end(state.as_str(), result);
        }
        self.status.send_modify(|s| s.ended = true);
        true
    }

    /// Writes `result.json` and journals the report with the worker's end, before anyone
    /// hears of the end. Fails closed: a report that cannot be made durable is withheld,
    /// and the worker ends FAILED with an error saying why (that outcome is written where
    /// it still can be).
    async fn make_durable(
        &self,
        state: WorkerState,
        result: WorkerResult,
    ) -> (WorkerState, WorkerResult, AgentEvent) {
        let written = match self.result_file() {
            Some(storage) => storage
                .write_result(&result)
                .map_err(|e| format!("cannot write result.json: {e}")),
            None => Ok(()),
        };
        let report = self.report_event(&result);
        let journaled = match written {
            Ok(()) => self.journal(&report, Some((state, &result))).await,
            Err(problem) => Err(problem),
        };
        let Err(problem) = journaled else {
            return (state, result, report);
        };
        let reason = format!("{}: {problem}; its own report is withheld", self.label());
        tracing::error!("{reason}");
        let failed = super::result::withheld(result, reason);
        if let Some(storage) = self.result_file() {
            let _ = storage.write_result(&failed);
        }
        let report = self.report_event(&failed);
        if let Err(e) = self
            .journal(&report, Some((WorkerState::Failed, &failed)))
            .await
        {
            tracing::error!("{}: {e}", self.label());
        }
        (WorkerState::Failed, failed, report)
    }

    /// The folder to write `result.json` to: none for a worker with an observer, which
    /// keeps its result (a colony's journal).
    fn result_file(&self) -> Option<&WorkerStorage> {
        self.storage().filter(|_| self.observer.get().is_none())
    }

    /// Tells the observer (the journal) of `report`, and of the end it tells of; its
    /// refusal as text.
    async fn journal(
        &self,
        report: &AgentEvent,
        end: Option<(WorkerState, &WorkerResult)>,
    ) -> Result<(), String> {
        let Some(observer) = self.observer.get() else {
            return Ok(());
        };
        let ended = end.map(|(state, result)| WorkerInfo {
            state,
            result: Some(result.clone()),
            ..self.info()
        });
        observer.reporting(report, ended.as_ref()).await
    }

    /// Publishes a report of a worker that goes on running (a persistent worker's first
    /// run): EXECUTION_COMPLETED / EXECUTION_FAILED, then SUBAGENT_REPORT once journaled.
    /// A report the journal refuses is withheld, as in [`WorkerShared::finish`].
    pub async fn publish_terminal(&self, result: &WorkerResult, run: Option<&RunOutcome>) {
        if let Some(run) = run {
            self.send(self.run_outcome_event(run));
        }
        let report = self.report_event(result);
        match self.journal(&report, None).await {
            Ok(()) => self.send(report),
            Err(problem) => {
                let reason = format!("{}: {problem}; its own report is withheld", self.label());
                tracing::error!("{reason}");
                let failed = super::result::withheld(result.clone(), reason);
                let report = self.report_event(&failed);
                let _ = self.journal(&report, None).await;
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
        let data = WorkerReport::event_data(
            &self.spec.id,
            &self.spec.colony_id,
            &self.spec.task,
            result,
            self.spec.batch.as_ref(),
        );
        self.event(EventType::SubagentReport, data)
    }

    /// An event from this worker, stamped now.
    fn event(&self, event_type: EventType, data: Value) -> AgentEvent {
        self.ctx.event(event_type, data)
    }

    /// Starts tracing its run (its `invoke_agent` span), if the runtime traces.
    #[cfg(feature = "telemetry")]
    pub fn start_trace(&self) {
        let Some(telemetry) = &self.ctx.services().telemetry else {
            return;
        };
        let trace = telemetry.worker(
            self.spec.trace_parent.as_deref(),
            &crate::telemetry::AgentSpanInfo {
                plugin: self.ctx.plugin_name(),
                worker: &self.spec.id,
                colony: &self.spec.colony_id,
                sha256: self.plugin.sha256().unwrap_or_default(),
                mode: self.spec.mode.as_str(),
            },
        );
        self.ctx.set_trace(trace);
    }

    /// Publishes one event from this worker: to its `events.jsonl`, then to the bus.
    pub fn publish(&self, event_type: EventType, data: Value) {
        self.ctx.publish(event_type, data);
    }

    fn send(&self, event: AgentEvent) {
        self.ctx.send(event);
    }
}

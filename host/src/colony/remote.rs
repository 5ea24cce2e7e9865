//! The colony's side of the NATS backend ([`crate::cluster`]): workers that run on nodes.
//!
//! A [`RemoteWorker`] is the colony's record of one fanned-out task: queued here until the
//! dispatcher has a slot for it, then published, then running on some node, then ended
//! by its report. Its state moves only forward, under one lock, so a stop racing the
//! dispatcher either keeps the task from being published or finds it published and asks
//! the node. Reports come from the report stream (an ordered consumer from the start of
//! this colony's subject, so a colony that reconnects reads what it missed), are
//! deduplicated by worker id, journaled, then published on the bus — exactly like a local
//! worker's. Other events come over core NATS and are republished as they arrive.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;

use super::{ColonyError, ColonyInner};
use crate::cluster::{
    CONTROL_TIMEOUT, Cluster, ClusterError, Control, ReportMessage, STOP_POLL, TaskMessage,
    subjects,
};
use crate::error::WorkerError;
use crate::events::{AgentEvent, EventType};
use crate::limits::Limits;
use crate::sandbox::{Held, HostMemory};
use crate::worker::WorkerReport;
use crate::worker::{
    StopOutcome, WorkerInfo, WorkerMode, WorkerResult, WorkerState, inbox_share, stopped, withheld,
};

/// The colony's record of a worker that runs on a node.
pub(crate) struct RemoteWorker {
    pub task: TaskMessage,
    /// The connection its task, stop and inject requests go through.
    pub cluster: Cluster,
    /// Its plugin's message limits, for messages held here until it runs.
    max_message_bytes: usize,
    inbox_capacity: usize,
    memory: Arc<HostMemory>,
    status: Mutex<RemoteStatus>,
    ended: watch::Sender<bool>,
}

struct RemoteStatus {
    state: WorkerState,
    /// Handed to the dispatcher's publish (it may not be acknowledged yet).
    dispatched: bool,
    /// Its sequence in the task stream, once published.
    sequence: Option<u64>,
    started_at: Option<DateTime<Utc>>,
    result: Option<WorkerResult>,
    /// The colony's concurrency slot, held from publish to report.
    slot: Option<OwnedSemaphorePermit>,
    /// Messages injected before it runs: sent with its task, or to its node when it
    /// starts — as a local worker's inbox holds them until then.
    pending: Vec<String>,
    /// Their bytes, charged to the worker's host memory budget while held here.
    pending_held: Option<Held>,
}

impl RemoteWorker {
    pub fn new(task: TaskMessage, cluster: Cluster, limits: &Limits) -> Self {
        Self {
            task,
            cluster,
            max_message_bytes: limits.max_message_bytes,
            inbox_capacity: limits.inbox_capacity,
            memory: inbox_share(limits.host_memory_bytes),
            status: Mutex::new(RemoteStatus {
                state: WorkerState::Queued,
                dispatched: false,
                sequence: None,
                started_at: None,
                result: None,
                slot: None,
                pending: Vec::new(),
                pending_held: None,
            }),
            ended: watch::Sender::new(false),
        }
    }

    fn status(&self) -> std::sync::MutexGuard<'_, RemoteStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn id(&self) -> &str {
        &self.task.worker_id
    }

    pub fn state(&self) -> WorkerState {
        self.status().state
    }

    pub fn info(&self) -> WorkerInfo {
        let status = self.status();
        WorkerInfo {
            id: self.task.worker_id.clone(),
            task: self.task.task.clone(),
            plugin: self.task.plugin.clone(),
            mode: WorkerMode::Ephemeral,
            state: status.state,
            started_at: status.started_at,
            result: status.result.clone(),
        }
    }

    /// Its report, once it has ended.
    pub fn report(&self) -> Option<WorkerReport> {
        let status = self.status();
        let result = status.result.as_ref()?;
        Some(WorkerReport::from_result(
            &self.task.worker_id,
            &self.task.colony_id,
            &self.task.task,
            result,
        ))
    }

    /// Takes it for publishing with `slot`: the task to publish, with the messages
    /// injected so far; `None` when it was stopped meanwhile.
    fn claim(&self, slot: OwnedSemaphorePermit) -> Option<TaskMessage> {
        let mut status = self.status();
        if status.state != WorkerState::Queued || status.dispatched {
            return None;
        }
        status.dispatched = true;
        status.slot = Some(slot);
        let mut task = self.task.clone();
        task.inbox = std::mem::take(&mut status.pending);
        status.pending_held = None;
        Some(task)
    }

    /// Holds `message` until the worker (next) starts on a node: before it is published
    /// (`published` false: sent with the task), or after, while no node answers for it
    /// (on the queue, or between a dead node and the next). `Ok(false)` otherwise.
    fn hold(&self, message: &str, published: bool) -> Result<bool, WorkerError> {
        let mut status = self.status();
        let holds = if published {
            status.dispatched && !status.state.is_terminal()
        } else {
            status.state == WorkerState::Queued && !status.dispatched
        };
        if !holds {
            return Ok(false);
        }
        if status.pending.len() >= self.inbox_capacity {
            return Err(WorkerError::InboxFull {
                worker: self.id().to_owned(),
                capacity: self.inbox_capacity,
            });
        }
        let memory = self.memory.clone();
        status
            .pending_held
            .get_or_insert_with(|| memory.stream())
            .grow(message.len(), "an injected message")
            .map_err(|source| WorkerError::InboxOverBudget {
                worker: self.id().to_owned(),
                source,
            })?;
        status.pending.push(message.to_owned());
        Ok(true)
    }

    /// Takes it away from the dispatcher if it has not published it yet.
    fn take_undispatched(&self) -> bool {
        let mut status = self.status();
        let take = status.state == WorkerState::Queued && !status.dispatched;
        status.dispatched = true;
        take
    }

    /// Marks it running (an `EXECUTION_STARTED`, the first or a redelivered run's) and
    /// returns whether that is new, with the messages held for it meanwhile; `None` once
    /// it has ended.
    fn started(&self, at: DateTime<Utc>) -> Option<(bool, Vec<String>)> {
        let mut status = self.status();
        if status.state.is_terminal() {
            return None;
        }
        let first = status.state == WorkerState::Queued;
        if first {
            status.state = WorkerState::Running;
            status.started_at = Some(at);
        }
        status.pending_held = None;
        Some((first, std::mem::take(&mut status.pending)))
    }

    /// Ends it with `result` at `ended_at`; false when it had ended already (a duplicate
    /// report). A report can overtake its worker's `EXECUTION_STARTED` event (they travel
    /// apart): the start is then dated from the report.
    fn finish(&self, state: WorkerState, result: WorkerResult, ended_at: DateTime<Utc>) -> bool {
        let mut status = self.status();
        if status.state.is_terminal() {
            return false;
        }
        if status.started_at.is_none() && result.duration_seconds > 0.0 {
            let ran = chrono::Duration::milliseconds((result.duration_seconds * 1e3) as i64);
            status.started_at = ended_at.checked_sub_signed(ran);
        }
        status.state = if state.is_terminal() {
            state
        } else {
            WorkerState::Failed
        };
        status.result = Some(result);
        status.slot = None;
        drop(status);
        self.ended.send_replace(true);
        true
    }
}

/// Connects the colony's listeners: reports, events and the overseer's inbox.
pub(crate) struct RemoteFeeds {
    cluster: Cluster,
    reports: pull::Ordered,
    events: async_nats::Subscriber,
    overseer: async_nats::Subscriber,
}

impl RemoteFeeds {
    pub async fn open(cluster: &Cluster, colony: &str) -> Result<Self, ClusterError> {
        subjects::check_token("colony id", colony)?;
        let stream = cluster
            .jetstream()
            .get_stream(subjects::REPORTS_STREAM)
            .await
            .map_err(|e| ClusterError::js("open the report stream", e))?;
        let reports = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: subjects::reports(colony),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::js("read the colony's reports", e))?
            .messages()
            .await
            .map_err(|e| ClusterError::js("read the colony's reports", e))?;
        let subscribe = |subject: String| async move {
            cluster
                .client()
                .subscribe(subject.clone())
                .await
                .map_err(|e| ClusterError::js(format!("subscribe to {subject}"), e))
        };
        let events = subscribe(subjects::events(colony)).await?;
        let overseer = subscribe(subjects::control(colony, "overseer")).await?;
        cluster
            .client()
            .flush()
            .await
            .map_err(|e| ClusterError::js("flush subscriptions", e))?;
        Ok(Self {
            cluster: cluster.clone(),
            reports,
            events,
            overseer,
        })
    }

    /// Spawns the three listeners; each ends when the colony is dropped or stopped.
    pub fn spawn(self, inner: &Arc<ColonyInner>) {
        tokio::spawn(read_reports(Arc::downgrade(inner), self.reports));
        tokio::spawn(read_events(Arc::downgrade(inner), self.events));
        tokio::spawn(serve_overseer(
            Arc::downgrade(inner),
            self.cluster,
            self.overseer,
        ));
    }
}

async fn read_reports(inner: Weak<ColonyInner>, mut reports: pull::Ordered) {
    while let Some(message) = reports.next().await {
        let Some(inner) = inner.upgrade() else { return };
        match message {
            Ok(message) => match serde_json::from_slice::<ReportMessage>(&message.payload) {
                Ok(report) => deliver(&inner, report),
                Err(e) => tracing::warn!("unreadable report on {}: {e}", message.subject),
            },
            Err(e) => tracing::warn!("reading reports: {e}"),
        }
    }
}

async fn read_events(inner: Weak<ColonyInner>, mut events: async_nats::Subscriber) {
    while let Some(message) = events.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let Ok(event) = serde_json::from_slice::<AgentEvent>(&message.payload) else {
            continue;
        };
        // Reports come from the report stream, once each.
        if event.event_type == EventType::SubagentReport {
            continue;
        }
        let Some(worker) = inner.find_remote(&event.node_id) else {
            continue;
        };
        if worker.state().is_terminal() {
            continue;
        }
        if event.event_type == EventType::ExecutionStarted
            && let Some((first, held)) = worker.started(event.timestamp)
        {
            if first && let Err(e) = inner.journal.set_state(&worker.info()) {
                tracing::error!("worker '{}': {e}", worker.id());
            }
            if !held.is_empty() {
                tokio::spawn(send_held(worker.clone(), held));
            }
        }
        inner.bus.publish(event);
    }
}

/// `peers.send(\"overseer\", …)` from workers on nodes.
async fn serve_overseer(
    inner: Weak<ColonyInner>,
    cluster: Cluster,
    mut requests: async_nats::Subscriber,
) {
    while let Some(request) = requests.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let error = match serde_json::from_slice::<Control>(&request.payload) {
            Ok(Control::Inject { message }) => match inner.overseer() {
                Some(overseer) => overseer.inject(message).err().map(|e| e.to_string()),
                None => Some(format!("colony '{}' has no overseer", inner.config.id)),
            },
            Ok(Control::Stop) => Some("the overseer cannot be stopped by a worker".to_owned()),
            Err(e) => Some(format!("not a control request: {e}")),
        };
        if let (Some(reply), Ok(payload)) = (
            request.reply,
            serde_json::to_vec(&crate::cluster::ControlReply { error }),
        ) {
            let _ = cluster.client().publish(reply, payload.into()).await;
        }
    }
}

/// Ends a remote worker with its report: journaled, then published. A worker that has
/// a report already (a redelivered task, the stream replayed) keeps its first one.
fn deliver(inner: &ColonyInner, report: ReportMessage) {
    let Some(worker) = inner.find_remote(&report.event.node_id) else {
        return deliver_missed(inner, report);
    };
    if worker.state().is_terminal() {
        return;
    }
    let report = journaled_or_withheld(inner, report);
    if !worker.finish(report.state, report.result, report.event.timestamp) {
        return;
    }
    if let Err(e) = inner.journal.set_state(&worker.info()) {
        tracing::error!("worker '{}': {e}", worker.id());
    }
    inner.bus.publish(report.event);
}

/// `report`, once journaled; or, failing closed, a FAILED report saying it could not be
/// (journaled where it still can be) — so that the journal, `wait` and the bus all tell
/// the same outcome.
fn journaled_or_withheld(inner: &ColonyInner, mut report: ReportMessage) -> ReportMessage {
    let Err(e) = inner.journal.add_report(&report.event) else {
        return report;
    };
    let reason = format!(
        "worker '{}': cannot journal the report: {e}; its own report is withheld",
        report.event.node_id
    );
    tracing::error!("{reason}");
    report.state = WorkerState::Failed;
    report.result = withheld(report.result, reason);
    let data = &mut report.event.data;
    data["status"] = serde_json::json!(report.result.status);
    data["summary"] = serde_json::json!(report.result.summary);
    data["error"] = serde_json::json!(report.result.error);
    data["data"] = serde_json::json!({});
    let _ = inner.journal.add_report(&report.event);
    report
}

/// A report for a worker this process did not create: one a previous process of the
/// colony (same id and home) fanned out before it ended. The journal gets its outcome.
fn deliver_missed(inner: &ColonyInner, report: ReportMessage) {
    let id = report.event.node_id.clone();
    let record = match inner.journal.worker(&id) {
        Ok(Some(record)) => record,
        Ok(None) => return,
        Err(e) => return tracing::error!("worker '{id}': {e}"),
    };
    if record.state.has_ended() || record.colony_id != inner.config.id {
        return;
    }
    let report = journaled_or_withheld(inner, report);
    let info = WorkerInfo {
        id: record.id,
        task: record.task,
        plugin: record.plugin,
        mode: WorkerMode::Ephemeral,
        state: report.state,
        started_at: record.started_at,
        result: Some(report.result),
    };
    if let Err(e) = inner.journal.set_state(&info) {
        tracing::error!("worker '{id}': {e}");
    }
    inner.bus.publish(report.event);
}

/// Ends a remote worker here, without a node: its report is stored in the report
/// stream first (so a node that holds the task does not run it), then delivered — unless
/// the stream already had the worker's own report, which then arrives and wins.
async fn end_here(
    inner: &ColonyInner,
    worker: &RemoteWorker,
    state: WorkerState,
    result: WorkerResult,
) {
    let report = ReportMessage::synthesised("colony", &worker.task, state, result);
    match worker.cluster.store_report(&report).await {
        Ok(false) => {}
        Ok(true) => deliver(inner, report),
        Err(e) => {
            tracing::warn!("{e}; the report is kept in this colony only");
            deliver(inner, report);
        }
    }
}

/// Publishes a claimed worker's task (the dispatcher's part: it awaits the send, so
/// tasks queue in FIFO order, not the storage acknowledgement).
pub(crate) async fn launch(
    inner: Arc<ColonyInner>,
    worker: Arc<RemoteWorker>,
    slot: OwnedSemaphorePermit,
) {
    let Some(task) = worker.claim(slot) else {
        return;
    };
    let cluster = worker.cluster.clone();
    let sent = match cluster.is_served(&task.sha256).await {
        Ok(true) => cluster.publish_task(&task).await,
        Ok(false) => Err(ClusterError::NoNodeForPlugin {
            plugin: worker.task.plugin.clone(),
            sha256: worker.task.sha256.clone(),
        }),
        Err(e) => Err(e),
    };
    tokio::spawn(async move {
        let stored = match sent {
            Ok(stored) => stored.await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(sequence) => worker.status().sequence = Some(sequence),
            Err(e) => {
                tracing::warn!("worker '{}': {e}", worker.id());
                let result = crate::cluster::not_run(e.to_string());
                end_here(&inner, &worker, WorkerState::Failed, result).await;
            }
        }
    });
}

/// Stops a remote worker wherever it is: not yet published → ended here; still on the
/// queue → withdrawn and ended here; running → its node is asked to stop it, and the
/// stop waits (bounded by `timeout`) for the report.
pub(crate) async fn stop(
    inner: &ColonyInner,
    worker: &RemoteWorker,
    timeout: Duration,
) -> StopOutcome {
    let begun = Instant::now();
    let deadline = begun + timeout;
    let outcome = |clean| StopOutcome {
        state: worker.state(),
        clean,
        elapsed: begun.elapsed(),
    };
    if worker.take_undispatched() {
        end_here(inner, worker, WorkerState::Stopped, stopped(None, 0.0, 0)).await;
        return outcome(true);
    }
    let mut ended = worker.ended.subscribe();
    let cluster = worker.cluster.clone();
    let colony = &worker.task.colony_id;
    let mut asked = false;
    while !*ended.borrow() && Instant::now() < deadline {
        match cluster
            .control(colony, worker.id(), &Control::Stop, timeout)
            .await
        {
            Ok(()) => {
                asked = true;
                break;
            }
            Err(ClusterError::NotRunning { .. }) => {
                // Not running anywhere: still on the queue (withdraw it), or between a
                // node's pull and its start (ask again).
                let sequence = worker.status().sequence;
                if let Some(sequence) = sequence
                    && cluster.withdraw_task(sequence).await.unwrap_or(false)
                {
                    end_here(inner, worker, WorkerState::Stopped, stopped(None, 0.0, 0)).await;
                    // A node may have taken it just before: stop it there too.
                    let _ = cluster
                        .control(colony, worker.id(), &Control::Stop, timeout)
                        .await;
                    let clean = tokio::time::timeout_at(deadline, ended.wait_for(|e| *e))
                        .await
                        .is_ok();
                    return outcome(clean);
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
        tokio::time::sleep(STOP_POLL).await;
    }
    let clean = tokio::time::timeout_at(deadline, ended.wait_for(|e| *e))
        .await
        .is_ok();
    if !clean {
        tracing::warn!(
            worker = worker.id(),
            asked,
            "no report within the stop timeout"
        );
    }
    outcome(clean)
}

/// Injects `message` into a remote worker: held here while it waits to run (sent with its
/// task, or to its node when it starts), else delivered through the node running it.
pub(crate) async fn inject(worker: &RemoteWorker, message: String) -> Result<(), ColonyError> {
    if message.len() > worker.max_message_bytes {
        return Err(WorkerError::MessageTooLarge {
            worker: worker.id().to_owned(),
            size: message.len(),
            limit: worker.max_message_bytes,
        }
        .into());
    }
    if worker.hold(&message, false)? {
        return Ok(());
    }
    let colony = &worker.task.colony_id;
    let request = Control::Inject {
        message: message.clone(),
    };
    match worker
        .cluster
        .control(colony, worker.id(), &request, CONTROL_TIMEOUT)
        .await
    {
        // Published, not started yet: held until its EXECUTION_STARTED.
        Err(ClusterError::NotRunning { .. }) => {
            if worker.hold(&message, true)? {
                Ok(())
            } else {
                // It started (or ended) meanwhile.
                Ok(worker
                    .cluster
                    .control(colony, worker.id(), &request, CONTROL_TIMEOUT)
                    .await?)
            }
        }
        sent => Ok(sent?),
    }
}

/// Sends the messages held for a worker to the node that has just started it.
async fn send_held(worker: Arc<RemoteWorker>, held: Vec<String>) {
    for message in held {
        let request = Control::Inject { message };
        if let Err(e) = worker
            .cluster
            .control(
                &worker.task.colony_id,
                worker.id(),
                &request,
                CONTROL_TIMEOUT,
            )
            .await
        {
            tracing::warn!("a message held for worker '{}' was lost: {e}", worker.id());
        }
    }
}

//! The colony's side of the NATS backend ([`crate::cluster`]): workers that run on nodes.
//!
//! A [`RemoteWorker`] is the colony's record of one fanned-out task: queued here until the
//! dispatcher has a slot for it, then published, then running on some node, then ended
//! by its report (see `feeds.rs`). Its state moves only forward, under one lock, so a
//! stop racing the dispatcher either keeps the task from being published or finds it
//! published and asks the node.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;

use super::feeds::deliver;
use super::member::Member;
use super::{ColonyError, ColonyInner};
use crate::cluster::{
    CONTROL_TIMEOUT, Cluster, ClusterError, Control, ReportMessage, STOP_POLL, TaskMessage,
    retry_store,
};
use crate::limits::Limits;
use crate::sandbox::{Held, HostMemory};
use crate::worker::WorkerError;
use crate::worker::WorkerReport;
use crate::worker::{
    StopOutcome, WorkerInfo, WorkerMode, WorkerResult, WorkerState, inbox_share, peer_message,
    stopped,
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
        Some(self.task.report(result))
    }

    /// Whether it was handed to the dispatcher's publish.
    pub(super) fn is_dispatched(&self) -> bool {
        self.status().dispatched
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
    pub(super) fn started(&self, at: DateTime<Utc>) -> Option<(bool, Vec<String>)> {
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
    pub(super) fn finish(
        &self,
        state: WorkerState,
        result: WorkerResult,
        ended_at: DateTime<Utc>,
    ) -> bool {
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

/// Ends a remote worker here, without a node: its report is stored in the report
/// stream first (so a node that holds the task does not run it), then delivered — unless
/// the stream already had the worker's own report, which then arrives and wins.
pub(super) async fn end_here(
    inner: &ColonyInner,
    worker: &RemoteWorker,
    state: WorkerState,
    result: WorkerResult,
) {
    let report = ReportMessage::synthesised("colony", &worker.task, state, result);
    let stored = retry_store(
        Instant::now(),
        || worker.cluster.store_report(&report),
        || false,
    )
    .await;
    match stored {
        Ok(false) => {}
        Ok(true) => deliver(inner, report, None).await,
        Err(e) => {
            tracing::warn!("{e}; the report is kept in this colony only");
            deliver(inner, report, None).await;
        }
    }
}

/// Publishes a claimed worker's task (the dispatcher's part: it awaits the send, so
/// tasks queue in FIFO order, not the storage acknowledgement).
async fn launch(inner: Arc<ColonyInner>, worker: Arc<RemoteWorker>, slot: OwnedSemaphorePermit) {
    let Some(task) = worker.claim(slot) else {
        return;
    };
    let cluster = worker.cluster.clone();
    // Published even when no node serves the plugin yet: nodes and colonies may start
    // in any order, and the queue keeps the task for the first node of its plugin. If
    // none shows up for a while, the colony says so (`unserved`).
    inner.unserved.watch(
        Arc::downgrade(&inner),
        cluster.clone(),
        &task.plugin,
        &task.sha256,
    );
    let begun = Instant::now();
    let sent = cluster.publish_task(&task).await;
    tokio::spawn(async move {
        let first = match sent {
            Ok(stored) => stored.await,
            Err(e) => Err(e),
        };
        // Not acknowledged (a cluster electing leaders, a server restarting): sent
        // again, under the same message id, until the stream takes it.
        let stored = match first {
            Ok(sequence) => Ok(sequence),
            Err(e) => {
                tracing::debug!("worker '{}': {e}; queuing it again", worker.id());
                let again = || async { cluster.publish_task(&task).await?.await };
                retry_store(begun, again, || worker.state().is_terminal()).await
            }
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
async fn stop(inner: &ColonyInner, worker: &RemoteWorker, timeout: Duration) -> StopOutcome {
    let begun = Instant::now();
    let deadline = begun + timeout;
    let outcome = |clean| StopOutcome {
        state: worker.state(),
        clean,
        elapsed: begun.elapsed(),
    };
    if worker.take_undispatched() {
        end_here(
            inner,
            worker,
            WorkerState::Stopped,
            stopped(None, 0.0, Default::default()),
        )
        .await;
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
                    end_here(
                        inner,
                        worker,
                        WorkerState::Stopped,
                        stopped(None, 0.0, Default::default()),
                    )
                    .await;
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
async fn inject(worker: &RemoteWorker, message: String) -> Result<(), ColonyError> {
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
pub(super) async fn send_held(worker: Arc<RemoteWorker>, held: Vec<String>) {
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

#[async_trait::async_trait]
impl Member for RemoteWorker {
    fn id(&self) -> &str {
        RemoteWorker::id(self)
    }

    fn info(&self) -> WorkerInfo {
        RemoteWorker::info(self)
    }

    fn task(&self) -> &str {
        &self.task.task
    }

    fn report(&self, _colony: &str) -> Option<WorkerReport> {
        RemoteWorker::report(self)
    }

    async fn inject(&self, message: String) -> Result<(), ColonyError> {
        inject(self, message).await
    }

    async fn stop(&self, colony: &ColonyInner) -> StopOutcome {
        stop(colony, self, colony.runtime.limits().stop_timeout).await
    }

    async fn launch(self: Arc<Self>, colony: Arc<ColonyInner>, slot: OwnedSemaphorePermit) {
        // Its node applies the timeouts; the slot is held until its report.
        launch(colony, self, slot).await;
    }

    async fn deliver(&self, from: &str, message: &str) -> Result<(), String> {
        // As an injected message: held here until it runs, as a local worker's inbox
        // holds it, then delivered through its node.
        inject(self, peer_message(from, message))
            .await
            .map_err(|e| e.to_string())
    }

    fn as_remote(self: Arc<Self>) -> Option<Arc<RemoteWorker>> {
        Some(self)
    }
}

//! [`Worker`]: one agent loop running as a guest component, with its lifecycle, its two
//! modes, injection, stop and seeding.
//!
//! A `Worker` is a cheap handle (clone it freely); the guest runs in a background task
//! started by [`Worker::start`]. The host never trusts the guest: whatever it does, the
//! worker ends in a terminal state with a [`WorkerResult`], and the terminal events are
//! published exactly once.

mod batch;
mod driver;
mod error;
mod inbox;
mod report;
mod result;
mod shared;
mod spec;
mod state;
mod store;
#[cfg(any(feature = "colony", feature = "nats"))]
mod supervise;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use batch::BatchPlace;
pub use error::WorkerError;
pub use report::{UnreadableReport, WorkerReport};
pub use result::{ReportStatus, WorkerResult};
pub use spec::{WorkerMode, WorkerSpec};
pub use state::WorkerState;

// Used by the colony and the cluster, each an optional feature.
#[cfg_attr(not(all(feature = "colony", feature = "nats")), allow(unused_imports))]
pub(crate) use crate::host_api::MessageRouter;
#[cfg(feature = "colony")]
#[cfg_attr(not(all(feature = "colony", feature = "nats")), allow(unused_imports))]
pub(crate) use crate::host_api::{inbox_share, peer_message};
#[cfg_attr(not(all(feature = "colony", feature = "nats")), allow(unused_imports))]
pub(crate) use result::{Usage, crashed, stopped, withheld};
pub use shared::WorkerObserver;
pub(crate) use shared::WorkerShared;
#[cfg(any(feature = "colony", feature = "nats"))]
pub(crate) use supervise::supervise;

use crate::conversation::{ConversationLog, MessagePart};
use crate::events::{EventBus, EventLog};
use crate::host_api::{Identity, InboxMessage, WorkerContext};
use crate::plugin::Plugin;
use crate::storage::WorkerStorage;
use shared::Status;

/// A snapshot of a worker, as the reference's `WorkerInfo`.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerInfo {
    /// The worker's id, unique within its colony.
    pub id: String,
    /// The task in natural language, as given in its spec.
    pub task: String,
    /// The name of the plugin it runs.
    pub plugin: String,
    /// Ephemeral (one run) or persistent (one turn per injected message).
    pub mode: WorkerMode,
    /// Its lifecycle state when the snapshot was taken.
    pub state: WorkerState,
    /// When the worker started running.
    pub started_at: Option<DateTime<Utc>>,
    /// The final result; for a persistent worker, the latest report while it runs.
    pub result: Option<WorkerResult>,
}

/// What [`Worker::stop`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOutcome {
    /// The worker's state afterwards (terminal).
    pub state: WorkerState,
    /// True when the worker wound down by itself within the stop timeout; false when its
    /// task had to be aborted.
    pub clean: bool,
    /// How long the stop took.
    pub elapsed: Duration,
}

/// A handle to one worker.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<WorkerShared>,
}

impl Worker {
    /// A pending worker running `plugin` as described by `spec`, publishing on `bus`
    /// (if any) and, if the spec names a storage folder, writing its files there.
    pub fn new(
        plugin: &Plugin,
        spec: WorkerSpec,
        bus: Option<EventBus>,
    ) -> Result<Self, WorkerError> {
        spec.validate().map_err(|reason| WorkerError::InvalidSpec {
            worker: spec.id.clone(),
            reason,
        })?;
        let (status, _) = watch::channel(Status {
            state: WorkerState::Pending,
            result: None,
            started: None,
            started_at: None,
            ended: false,
            guest_gone: false,
        });
        let storage = spec.storage_path.as_ref().map(WorkerStorage::new);
        let identity = Identity {
            id: spec.id.clone(),
            stream_id: spec.effective_stream_id().to_owned(),
            execution_id: spec.effective_execution_id().to_owned(),
        };
        let ctx = WorkerContext::new(
            identity,
            plugin.policy(),
            plugin.runtime().services(),
            bus,
            storage,
            (spec.token_budget, spec.tool_call_budget),
        );
        Ok(Self {
            shared: Arc::new(WorkerShared {
                spec,
                plugin: plugin.clone(),
                ctx: Arc::new(ctx),
                cancel: CancellationToken::new(),
                status,
                inbox: inbox::Inbox::new(plugin.limits().inbox_capacity),
                task: Mutex::new(None),
                lifecycle: Mutex::new(()),
                finished: AtomicBool::new(false),
                observer: OnceLock::new(),
            }),
        })
    }

    /// The worker's id.
    pub fn id(&self) -> &str {
        self.shared.id()
    }

    /// The worker's specification.
    pub fn spec(&self) -> &WorkerSpec {
        &self.shared.spec
    }

    /// The current state.
    pub fn state(&self) -> WorkerState {
        self.shared.state()
    }

    /// Pending or running.
    pub fn is_active(&self) -> bool {
        self.state().is_active()
    }

    /// Whether the worker is persistent.
    pub fn is_persistent(&self) -> bool {
        self.shared.spec.is_persistent()
    }

    /// The result, once the worker has one (see [`WorkerInfo::result`]).
    pub fn result(&self) -> Option<WorkerResult> {
        self.shared.status.borrow().result.clone()
    }

    /// A snapshot of the worker.
    pub fn info(&self) -> WorkerInfo {
        self.shared.info()
    }

    /// Attaches `observer` (e.g. a journal). Only before the worker starts; once.
    pub fn observe(&self, observer: Arc<dyn WorkerObserver>) -> Result<(), WorkerError> {
        if !matches!(self.state(), WorkerState::Pending | WorkerState::Queued) {
            return Err(self.wrong_state("attach an observer"));
        }
        self.shared
            .observer
            .set(observer)
            .map_err(|_| self.wrong_state("attach a second observer"))
    }

    /// Keeps this worker's events in `log` (a colony's journal) instead of its folder's
    /// `events.jsonl`. Only before the worker starts; once.
    pub fn log_events_to(&self, log: Arc<dyn EventLog>) -> Result<(), WorkerError> {
        if !matches!(self.state(), WorkerState::Pending | WorkerState::Queued) {
            return Err(self.wrong_state("attach an event log"));
        }
        if !self.shared.ctx.set_event_log(log) {
            return Err(self.wrong_state("attach a second event log"));
        }
        Ok(())
    }

    /// Keeps this worker's conversation parts in `log` (a colony's journal) and in
    /// memory, instead of its folder. Only before the worker starts, and only for a
    /// worker with no seeded conversation (seeding writes to the folder); once.
    pub fn log_conversation_to(&self, log: Arc<dyn ConversationLog>) -> Result<(), WorkerError> {
        let seeded = self
            .shared
            .storage()
            .is_some_and(|s| s.part_seqs().is_ok_and(|seqs| !seqs.is_empty()));
        if seeded {
            return Err(self.wrong_state("attach a conversation log"));
        }
        self.log_new_conversation_to(log)
    }

    /// [`Worker::log_conversation_to`] for a worker whose id is new (a colony's), so its
    /// folder holds no parts: nothing is looked up on disk.
    pub(crate) fn log_new_conversation_to(
        &self,
        log: Arc<dyn ConversationLog>,
    ) -> Result<(), WorkerError> {
        if !matches!(self.state(), WorkerState::Pending | WorkerState::Queued) {
            return Err(self.wrong_state("attach a conversation log"));
        }
        if !self.shared.ctx.set_conversation_log(log) {
            return Err(self.wrong_state("attach a second conversation log"));
        }
        Ok(())
    }

    /// Whether it replays a recorded run (every host call answered from the recording).
    #[cfg(feature = "colony")]
    pub(crate) fn is_replay(&self) -> bool {
        self.shared
            .ctx
            .tape()
            .is_some_and(|tape| tape.world().isolated())
    }

    /// Records this worker's host calls on `tape` (or serves them from it: a replay).
    /// Only before the worker starts; once.
    #[cfg(feature = "colony")]
    pub(crate) fn tape_on(&self, tape: Arc<crate::replay::Tape>) -> Result<(), WorkerError> {
        if !matches!(self.state(), WorkerState::Pending | WorkerState::Queued) {
            return Err(self.wrong_state("attach a recording"));
        }
        if !self.shared.ctx.set_tape(tape) {
            return Err(self.wrong_state("attach a second recording"));
        }
        Ok(())
    }

    /// Routes this worker's `peers.send` messages through `router`.
    #[cfg(any(feature = "colony", feature = "nats"))]
    pub(crate) fn set_router(&self, router: std::sync::Weak<dyn MessageRouter>) {
        self.shared.ctx.set_router(router);
    }

    /// Marks a pending worker as queued for a concurrency slot.
    #[cfg(feature = "colony")]
    pub(crate) fn enqueue(&self) -> Result<(), WorkerError> {
        if self.shared.transition(WorkerState::Queued, |_| {}) {
            Ok(())
        } else {
            Err(self.wrong_state("queue"))
        }
    }

    /// Writes `messages` into the worker's conversation before it starts, as
    /// `{storage}/conversations/parts/{seq:010}.json`; `seq` defaults to the message's
    /// index and `agent_id` to this worker's id. The guest reads them with
    /// `conversation.read`. Refused once the worker has started, and without a storage
    /// folder. Returns how many parts were written.
    pub fn seed_conversation(&self, messages: Vec<MessagePart>) -> Result<usize, WorkerError> {
        let _lifecycle = self
            .shared
            .lifecycle
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !matches!(self.state(), WorkerState::Pending | WorkerState::Queued) {
            return Err(self.wrong_state("seed the conversation"));
        }
        if self.shared.ctx.conversation_log().is_some() {
            return Err(self.wrong_state("seed a conversation kept in a log"));
        }
        let storage = self
            .shared
            .storage()
            .ok_or_else(|| WorkerError::NoStoragePath {
                worker: self.id().to_owned(),
            })?;
        let count = messages.len();
        for (index, mut part) in messages.into_iter().enumerate() {
            part.seq.get_or_insert(index as u64);
            part.agent_id.get_or_insert_with(|| self.id().to_owned());
            storage
                .write_part(&part)
                .map_err(|source| WorkerError::Storage {
                    worker: self.id().to_owned(),
                    source,
                })?;
        }
        tracing::info!(worker = self.id(), count, "seeded conversation");
        Ok(count)
    }

    /// Starts the worker in the background on the current tokio runtime.
    pub fn start(&self) -> Result<(), WorkerError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| WorkerError::InvalidSpec {
                worker: self.id().to_owned(),
                reason: "start must be called from within a tokio runtime".into(),
            })?;
        let _lifecycle = self
            .shared
            .lifecycle
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let started = self.shared.transition(WorkerState::Running, |s| {
            s.started = Some(Instant::now());
            s.started_at = Some(Utc::now());
        });
        if !started {
            return Err(self.wrong_state("start"));
        }
        let inbox = self
            .shared
            .inbox
            .take_receiver()
            .expect("a pending worker still holds its inbox");
        // Held while spawning, so a driver that ends at once lets go of its handle
        // only after it is stored.
        let mut task = self.shared.task.lock().unwrap_or_else(|e| e.into_inner());
        *task = Some(runtime.spawn(driver::drive_guarded(self.shared.clone(), inbox)));
        Ok(())
    }

    /// Starts the worker and waits for it to end (for a persistent worker: until it is
    /// stopped or crashes).
    pub async fn run(&self) -> Result<WorkerResult, WorkerError> {
        self.start()?;
        Ok(self.wait().await)
    }

    /// Waits until the worker has ended and returns its result. Waiting on a pending
    /// worker waits for it to be started and to end.
    pub async fn wait(&self) -> WorkerResult {
        let mut rx = self.shared.status.subscribe();
        let status = rx
            .wait_for(|s| s.ended)
            .await
            .expect("the worker holds its status sender");
        status
            .result
            .clone()
            .expect("a terminal worker has a result")
    }

    /// Waits until the worker's guest is gone (its instance and memory released): the
    /// end of what a concurrency slot bounds. Its report may still be on its way to the
    /// journal; [`Worker::wait`] waits for that too.
    #[cfg(feature = "colony")]
    pub(crate) async fn guest_gone(&self) {
        let mut rx = self.shared.status.subscribe();
        let _ = rx.wait_for(|s| s.guest_gone || s.ended).await;
    }

    /// How many injected messages the guest took itself with `inbox.drain` /
    /// `inbox.wait`. Those never become turns: a caller counting turns for the messages
    /// it injected subtracts these.
    pub fn messages_taken(&self) -> u64 {
        self.shared.ctx.taken()
    }

    /// Queues `message` for the worker: a persistent worker gets it as one more turn; a
    /// running guest may also take it early with `inbox.drain` / `inbox.wait`.
    pub fn inject(&self, message: impl Into<String>) -> Result<(), WorkerError> {
        let message = message.into();
        let limit = self.shared.limits().max_message_bytes;
        if message.len() > limit {
            return Err(WorkerError::MessageTooLarge {
                worker: self.id().to_owned(),
                size: message.len(),
                limit,
            });
        }
        if !self.is_active() {
            return Err(self.wrong_state("inject a message"));
        }
        let over = |source| WorkerError::InboxOverBudget {
            worker: self.id().to_owned(),
            source,
        };
        let what = "an injected message";
        let share = self.shared.ctx.inbox_memory.hold(message.len(), what);
        let held = [
            share.map_err(over)?,
            self.shared
                .ctx
                .memory
                .hold(message.len(), what)
                .map_err(over)?,
        ];
        let message = InboxMessage::new(message, held);
        self.shared.inbox.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => WorkerError::InboxFull {
                worker: self.id().to_owned(),
                capacity: self.shared.limits().inbox_capacity,
            },
            mpsc::error::TrySendError::Closed(_) => self.wrong_state("inject a message"),
        })
    }

    /// Stops the worker: idempotent and bounded by the stop timeout. A pending worker is
    /// simply marked stopped; a running one is cancelled — even a guest spinning in a
    /// loop or waiting in a host call — and ends `Stopped` with a `SUBAGENT_REPORT`.
    pub async fn stop(&self) -> StopOutcome {
        let begun = Instant::now();
        self.shared.cancel.cancel();
        if matches!(self.state(), WorkerState::Pending | WorkerState::Queued) {
            driver::finish_stopped(&self.shared).await;
        }
        let mut rx = self.shared.status.subscribe();
        let timeout = self.shared.limits().stop_timeout;
        let clean = tokio::time::timeout(timeout, rx.wait_for(|s| s.ended))
            .await
            .is_ok();
        if !clean {
            tracing::warn!(
                "{}: did not stop within {timeout:?}; aborting its task",
                self.shared.label()
            );
            if let Some(task) = self
                .shared
                .task
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                task.abort();
            }
            driver::finish_stopped(&self.shared).await;
        }
        StopOutcome {
            state: self.state(),
            clean,
            elapsed: begun.elapsed(),
        }
    }

    fn wrong_state(&self, action: &'static str) -> WorkerError {
        WorkerError::WrongState {
            worker: self.id().to_owned(),
            action,
            state: self.state(),
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id())
            .field("plugin", &self.shared.plugin.name())
            .field("state", &self.state())
            .finish()
    }
}

//! [`Colony`]: the overseer side of the reference framework, made durable.
//!
//! A colony owns one event bus, a journal in its home folder, and its workers: one
//! persistent overseer and any number of ephemeral workers fanned out with
//! [`Colony::run_parallel`]. At most `max_concurrent_workers` run at once; the rest wait
//! `queued` and start in FIFO order from one dispatcher task, which never starts a worker
//! after it or the colony was stopped. Each running worker is supervised: a soft timeout
//! injects "[SOFT TIMEOUT] …", a hard timeout stops it. Every report is journaled before it
//! is published and then, while an overseer runs, handed to it as one "[WORKER_REPORT] …"
//! turn, in arrival order. Workers reach each other through the host (`peers.send`), which checks
//! that the target is in the same colony.
//!
//! The same colony runs its fanned-out workers on other machines when its config names a
//! NATS server ([`ColonyConfig::nats`], opened with [`Colony::connect`]): the API, the
//! events and the payloads stay the same; see [`crate::cluster`] for what travels where
//! and what is guaranteed. The overseer always runs in the colony's own process.

mod batch;
mod config;
mod controls;
mod create;
mod dispatch;
mod error;
#[cfg(feature = "nats")]
mod feeds;
mod forward;
mod heartbeat;
mod member;
#[cfg(feature = "nats")]
mod remote;
mod replay;
mod routing;
mod task;
#[cfg(feature = "nats")]
mod unserved;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use indexmap::IndexMap;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

pub use batch::Batch;
pub use config::ColonyConfig;
pub use error::ColonyError;
pub use replay::{Replay, ReplayOutcome};
pub use task::Task;

#[cfg(feature = "nats")]
use crate::cluster::Cluster;
use crate::events::{EventBus, EventFilter, EventType, RecvError};
use crate::journal::Journal;
use crate::plugin::Plugin;
use crate::worker::{StopOutcome, Worker, WorkerInfo, WorkerReport, WorkerSpec};
use crate::{MessagePart, Runtime};
#[cfg(feature = "nats")]
use feeds::RemoteFeeds;
use member::MemberRef;
#[cfg(feature = "nats")]
use remote::RemoteWorker;

/// Where a colony's fanned-out workers run when not in this process: a NATS cluster.
#[cfg(feature = "nats")]
type Backend = Cluster;
/// Built without the `nats` feature, a colony has no other backend (an uninhabited type).
#[cfg(not(feature = "nats"))]
enum Backend {}

/// A colony of workers. Cheap to clone; [`Colony::stop_all`] ends it.
#[derive(Clone)]
pub struct Colony {
    inner: Arc<ColonyInner>,
}

struct ColonyInner {
    config: ColonyConfig,
    runtime: Runtime,
    bus: EventBus,
    journal: Arc<Journal>,
    /// The NATS backend, when the colony's workers run on nodes.
    cluster: Option<Backend>,
    /// Every worker by id, in the order they were made.
    workers: Mutex<IndexMap<String, MemberRef>>,
    overseer: Mutex<Option<Worker>>,
    queue: Mutex<VecDeque<MemberRef>>,
    queued: Notify,
    slots: Arc<Semaphore>,
    stopped: CancellationToken,
    next_id: AtomicU64,
    interrupted: Vec<String>,
    /// Plugins whose queued tasks no node may be serving.
    #[cfg(feature = "nats")]
    unserved: unserved::Unserved,
    /// How far the colony has read its reports on NATS.
    #[cfg(feature = "nats")]
    cursor: feeds::ReportCursor,
    /// Its span, the parent of its workers' (when traces are on), until it stops.
    span: Mutex<Option<crate::telemetry::SpanHandle>>,
}

impl Colony {
    /// Opens a colony whatever its backend: in this process, or — when `config.nats`
    /// names a server — with its fanned-out workers on `colony node`s over NATS.
    pub async fn connect(runtime: Runtime, config: ColonyConfig) -> Result<Self, ColonyError> {
        match config.nats.clone() {
            Some(url) => Self::connect_to(runtime, config, url).await,
            None => Self::open(runtime, config),
        }
    }

    #[cfg(feature = "nats")]
    async fn connect_to(
        runtime: Runtime,
        config: ColonyConfig,
        url: String,
    ) -> Result<Self, ColonyError> {
        let settings = crate::cluster::StreamSettings {
            replicas: config.nats_replicas,
        };
        let cluster =
            Cluster::connect_with(&url, &format!("colony-{}", config.id), settings).await?;
        let id = config.id.clone();
        // Nothing is fanned out before this returns: the feeds, opened next, see every
        // report of this colony's workers.
        let colony = Self::open_with(runtime, config, Some(cluster.clone()))?;
        match RemoteFeeds::open(&cluster, &id, &colony.inner.journal).await {
            Ok(feeds) => feeds.spawn(&colony.inner),
            Err(e) => {
                colony.stop_all().await;
                return Err(e);
            }
        }
        Ok(colony)
    }

    #[cfg(not(feature = "nats"))]
    async fn connect_to(
        _runtime: Runtime,
        config: ColonyConfig,
        url: String,
    ) -> Result<Self, ColonyError> {
        Err(ColonyError::NoNats {
            colony: config.id,
            url,
        })
    }

    /// Opens the colony in `config.home`: creates it if needed, opens its journal, marks
    /// workers a previous process left active as `interrupted`, and starts the
    /// dispatcher. From then on it carries out the [`Control`](crate::Control)s other
    /// processes file in the journal for its workers (`colony serve`'s stop and inject). Must be called within a tokio runtime. A colony on NATS is opened with
    /// [`Colony::connect`] instead.
    pub fn open(runtime: Runtime, config: ColonyConfig) -> Result<Self, ColonyError> {
        if let Some(url) = &config.nats {
            #[cfg(not(feature = "nats"))]
            return Err(ColonyError::NoNats {
                colony: config.id.clone(),
                url: url.clone(),
            });
            #[cfg(feature = "nats")]
            return Err(ColonyError::NeedsConnect {
                colony: config.id.clone(),
                url: url.clone(),
            });
        }
        Self::open_with(runtime, config, None)
    }

    fn open_with(
        runtime: Runtime,
        config: ColonyConfig,
        cluster: Option<Backend>,
    ) -> Result<Self, ColonyError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ColonyError::NoRuntime {
                colony: config.id.clone(),
            });
        }
        std::fs::create_dir_all(config.home.join("workers")).map_err(|source| {
            ColonyError::Home {
                colony: config.id.clone(),
                path: config.home.clone(),
                source,
            }
        })?;
        let journal = Arc::new(Journal::open_with(
            config.home.join("journal.db"),
            config.journal_sync,
        )?);
        let interrupted = journal.recover()?;
        journal.heartbeat();
        let runtime_span = runtime
            .telemetry()
            .map(|telemetry| telemetry.colony_span(&config.id));
        let inner = Arc::new(ColonyInner {
            slots: Arc::new(Semaphore::new(config.max_concurrent_workers.max(1))),
            config,
            runtime,
            bus: EventBus::new(),
            journal,
            cluster,
            workers: Mutex::new(IndexMap::new()),
            overseer: Mutex::new(None),
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            stopped: CancellationToken::new(),
            next_id: AtomicU64::new(1),
            interrupted,
            #[cfg(feature = "nats")]
            unserved: Default::default(),
            #[cfg(feature = "nats")]
            cursor: Default::default(),
            span: Mutex::new(runtime_span),
        });
        tokio::spawn(dispatch::dispatch(inner.clone()));
        tokio::spawn(heartbeat::heartbeat(
            inner.journal.clone(),
            inner.stopped.clone(),
        ));
        tokio::spawn(controls::obey(
            Arc::downgrade(&inner),
            inner.journal.clone(),
            inner.stopped.clone(),
        ));
        Ok(Self { inner })
    }

    /// The colony's id.
    pub fn id(&self) -> &str {
        &self.inner.config.id
    }

    /// Its settings.
    pub fn config(&self) -> &ColonyConfig {
        &self.inner.config
    }

    /// The bus every worker of the colony publishes on.
    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// Workers a previous process left active, marked `interrupted` when this one opened.
    pub fn interrupted(&self) -> &[String] {
        &self.inner.interrupted
    }

    /// Lets go of worker `id` once it has ended: the colony holds no more of it (its
    /// result, report and spec) than its journal does. For a long-running colony (an
    /// MCP server, a service) that would otherwise keep every worker it ever ran. A
    /// worker still running is kept; returns whether it was let go.
    pub fn forget(&self, id: &str) -> bool {
        let mut workers = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
        let ended = workers
            .get(id)
            .is_some_and(|member| member.info().state.is_terminal());
        if ended {
            workers.shift_remove(id);
        }
        ended
    }

    /// The overseer, once started.
    pub fn overseer(&self) -> Option<Worker> {
        self.inner
            .overseer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A worker of this colony running in this process (the overseer included); `None`
    /// for workers on NATS nodes — reach those by id with [`Colony::info`],
    /// [`Colony::inject`] and [`Colony::stop_worker`].
    pub fn worker(&self, id: &str) -> Option<Worker> {
        self.inner.find(id)
    }

    /// Whether the colony's workers run on NATS nodes.
    pub fn is_distributed(&self) -> bool {
        self.inner.cluster.is_some()
    }

    /// Snapshots of every worker, in creation order.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        let workers = self.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.values().map(|m| m.info()).collect()
    }

    /// A snapshot of one worker, wherever it runs.
    pub fn info(&self, id: &str) -> Option<WorkerInfo> {
        self.inner.member(id).map(|m| m.info())
    }

    fn member(&self, id: &str) -> Result<MemberRef, ColonyError> {
        self.inner
            .member(id)
            .ok_or_else(|| ColonyError::UnknownWorker {
                colony: self.id().to_owned(),
                worker: id.to_owned(),
            })
    }

    /// Injects `message` into a worker, wherever it runs (on a node: it must be running).
    pub async fn inject(&self, id: &str, message: impl Into<String>) -> Result<(), ColonyError> {
        self.member(id)?.inject(message.into()).await
    }

    /// Stops a worker, wherever it runs: a queued one never starts, a running one ends
    /// `stopped` with its report. Bounded by the stop timeout.
    pub async fn stop_worker(&self, id: &str) -> Result<StopOutcome, ColonyError> {
        Ok(self.member(id)?.stop(&self.inner).await)
    }

    fn new_id(&self, prefix: &str) -> String {
        // Microseconds since the epoch, low 32 bits, plus a per-colony counter: unique
        // across processes sharing a home unless two start in the same microsecond.
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{:08x}{n:x}", Utc::now().timestamp_micros() as u32)
    }

    fn ensure_running(&self) -> Result<(), ColonyError> {
        if self.inner.stopped.is_cancelled() {
            return Err(ColonyError::Stopped {
                colony: self.id().to_owned(),
            });
        }
        Ok(())
    }

    /// Starts the colony's persistent overseer running `plugin` with `task`, seeded with
    /// `conversation` (may be empty). It does not take a concurrency slot.
    pub fn start_overseer(
        &self,
        plugin: &Plugin,
        task: impl Into<String>,
        conversation: Vec<MessagePart>,
    ) -> Result<Worker, ColonyError> {
        let id = self.new_id("overseer");
        self.spawn_overseer(plugin, WorkerSpec::persistent(id, task), conversation)
    }

    /// Resumes the persistent worker `id` from the journal with `plugin`: same id, same
    /// folder, so its guest reads its conversation as it was when the worker ended.
    pub fn resume_overseer(&self, plugin: &Plugin, id: &str) -> Result<Worker, ColonyError> {
        let record = self
            .inner
            .journal
            .worker(id)?
            .ok_or_else(|| ColonyError::UnknownWorker {
                colony: self.id().to_owned(),
                worker: id.to_owned(),
            })?;
        let spec = WorkerSpec::persistent(id, record.task).with_input(record.input);
        self.inner.journal.clear_recording(id);
        self.spawn_overseer(plugin, spec, Vec::new())
    }

    fn spawn_overseer(
        &self,
        plugin: &Plugin,
        spec: WorkerSpec,
        conversation: Vec<MessagePart>,
    ) -> Result<Worker, ColonyError> {
        self.ensure_running()?;
        let worker = self.create(plugin, spec, false)?;
        if !conversation.is_empty() {
            worker.seed_conversation(conversation)?;
        }
        *self
            .inner
            .overseer
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(worker.clone());
        let reports = self
            .inner
            .bus
            .subscribe(EventFilter::all().types([EventType::SubagentReport]));
        worker.start()?;
        tokio::spawn(forward::forward_reports(
            Arc::downgrade(&self.inner),
            worker.clone(),
            reports,
        ));
        Ok(worker)
    }

    /// Fans `tasks` out to ephemeral workers of `plugin` and returns their ids at once.
    /// They start as concurrency slots free up, in order; a batch over `max_batch` is
    /// refused whole.
    pub fn run_parallel(
        &self,
        plugin: &Plugin,
        tasks: Vec<Task>,
    ) -> Result<Vec<String>, ColonyError> {
        self.ensure_running()?;
        if tasks.len() > self.inner.config.max_batch {
            return Err(ColonyError::BatchTooLarge {
                colony: self.id().to_owned(),
                size: tasks.len(),
                cap: self.inner.config.max_batch,
            });
        }
        self.spawn_tasks(plugin, tasks.into_iter().map(|task| (task, None)).collect())
    }

    /// One report per id, in the order given: the stored result of a worker that has
    /// ended, the live report of one that ends within `timeout`, and a `timeout` report
    /// for the others. Subscribes before looking at stored results, so a report that
    /// arrives in between is not missed.
    pub async fn wait_for_reports(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> Result<Vec<WorkerReport>, ColonyError> {
        let mut live = self.inner.bus.subscribe(
            EventFilter::all()
                .types([EventType::SubagentReport])
                .workers(ids.iter().cloned()),
        );
        let mut got = std::collections::HashMap::new();
        let mut tasks = std::collections::HashMap::new();
        for id in ids {
            let member = self.member(id)?;
            tasks.insert(id.clone(), member.task().to_owned());
            if let Some(report) = member.report(self.id()) {
                got.insert(id.clone(), report);
            }
        }
        let begun = tokio::time::Instant::now();
        let deadline = begun + timeout;
        // Counted, not searched for: a fan-out of thousands waits for thousands.
        let mut missing = tasks.keys().filter(|id| !got.contains_key(*id)).count();
        while missing > 0 {
            match tokio::time::timeout_at(deadline, live.recv()).await {
                Ok(Ok(event)) => {
                    let report = WorkerReport::from_event(&event).unwrap_or_else(|e| {
                        tracing::error!("{e}");
                        let task = tasks.get(&e.worker).map_or("", |t| t.as_str());
                        WorkerReport::unreadable(self.id(), task, &e)
                    });
                    if tasks.contains_key(&report.worker_id) && !got.contains_key(&report.worker_id)
                    {
                        missing -= 1;
                        got.insert(report.worker_id.clone(), report);
                    }
                }
                Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Err(RecvError::Closed)) | Err(_) => break,
            }
        }
        let waited = begun.elapsed();
        Ok(ids
            .iter()
            .map(|id| {
                got.get(id)
                    .cloned()
                    .unwrap_or_else(|| WorkerReport::timed_out(id, self.id(), &tasks[id], waited))
            })
            .collect())
    }

    /// Stops every worker (queued ones never start) and the overseer, all at once, each
    /// bounded by its stop timeout. Returns each worker's outcome.
    pub async fn stop_all(&self) -> Vec<(String, StopOutcome)> {
        self.inner.stopped.cancel();
        let span = self
            .inner
            .span
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let workers: Vec<MemberRef> = self
            .inner
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect::<Vec<_>>();
        let mut stops = tokio::task::JoinSet::new();
        for member in workers {
            let colony = self.clone();
            stops.spawn(async move {
                let id = member.id().to_owned();
                let outcome = member.stop(&colony.inner).await;
                (id, outcome)
            });
        }
        let mut outcomes = Vec::new();
        while let Some(Ok(outcome)) = stops.join_next().await {
            outcomes.push(outcome);
        }
        outcomes.sort_by(|a, b| a.0.cmp(&b.0));
        // The colony's span ends after its workers'.
        if let Some(span) = span {
            span.end();
        }
        #[cfg(feature = "nats")]
        self.inner
            .cursor
            .save(&self.inner.journal, &self.inner.config.id);
        outcomes
    }
}

impl ColonyInner {
    /// The `traceparent` its workers' spans are children of, when traces are on.
    fn trace_parent(&self) -> Option<String> {
        self.span
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|span| span.traceparent())
    }

    fn member(&self, id: &str) -> Option<MemberRef> {
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.get(id).cloned()
    }

    fn find(&self, id: &str) -> Option<Worker> {
        self.member(id)?.as_local().cloned()
    }

    /// Whether any worker holds a concurrency slot (is out running, here or on a node).
    #[cfg(feature = "nats")]
    fn has_workers_out(&self) -> bool {
        self.slots.available_permits() < self.config.max_concurrent_workers.max(1)
    }

    #[cfg(feature = "nats")]
    fn find_remote(&self, id: &str) -> Option<Arc<RemoteWorker>> {
        self.member(id)?.as_remote()
    }

    fn add(&self, member: MemberRef) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.insert(member.id().to_owned(), member);
    }

    fn overseer(&self) -> Option<Worker> {
        self.overseer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

//! Making a colony's workers: a local worker (journaled, routed, its events and an
//! ephemeral one's conversation in the journal) or a remote one (journaled, its task to be
//! published to the nodes), each queued for a concurrency slot.

use std::sync::{Arc, Weak};

use chrono::Utc;

#[cfg(not(feature = "nats"))]
use super::Backend;
use super::member::MemberRef;
#[cfg(feature = "nats")]
use super::remote::RemoteWorker;
use super::{Colony, ColonyError, Task};
#[cfg(feature = "nats")]
use crate::cluster::{Cluster, ClusterError, TaskMessage};
use crate::journal::{JournalObserver, Lineage, WorkerRecord};
use crate::plugin::Plugin;
use crate::replay::{StepLog, Tape};
use crate::worker::{BatchPlace, MessageRouter, Worker, WorkerSpec, WorkerState};

impl Colony {
    /// Creates a worker of this colony: journaled (states, report, events; an ephemeral
    /// worker's conversation too — a persistent one keeps its parts in its folder, to be
    /// seeded and resumed), routed, with its folder under home (made only if it is used).
    /// `queued`: it waits for a concurrency slot (queued before the journal hears of it,
    /// so its row is written once, as queued).
    pub(super) fn create(
        &self,
        plugin: &Plugin,
        spec: WorkerSpec,
        queued: bool,
    ) -> Result<Worker, ColonyError> {
        self.create_taped(plugin, spec, queued, None)
    }

    /// [`Colony::create`], for a worker that replays or forks a recorded run (`replay`:
    /// its tape and where it comes from). Other workers are recorded if the colony
    /// records.
    pub(super) fn create_taped(
        &self,
        plugin: &Plugin,
        spec: WorkerSpec,
        queued: bool,
        replay: Option<(Arc<Tape>, Lineage)>,
    ) -> Result<Worker, ColonyError> {
        let id = spec.id.clone();
        let storage = self.inner.config.home.join("workers").join(&id);
        let parent = spec
            .trace_parent
            .clone()
            .or_else(|| self.inner.trace_parent());
        let spec = spec
            .with_colony(self.id())
            .with_storage(&storage)
            .with_trace_parent(parent);
        let worker = Worker::new(plugin, spec.clone(), Some(self.inner.bus.clone()))?;
        if queued {
            worker.enqueue()?;
        }
        let config = &self.inner.config;
        let (tape, lineage) = match replay {
            Some((tape, lineage)) => (Some(tape), Some(lineage)),
            None => {
                let journal: Arc<dyn StepLog> = self.inner.journal.clone();
                let tape = config
                    .record
                    .then(|| Arc::new(Tape::recorder(&id, journal, config.max_recording_bytes)));
                (tape, None)
            }
        };
        if let Some(tape) = tape {
            worker.tape_on(tape)?;
        }
        worker.observe(Arc::new(JournalObserver(self.inner.journal.clone())))?;
        worker.log_events_to(self.inner.journal.clone())?;
        if !spec.is_persistent() {
            worker.log_new_conversation_to(self.inner.journal.clone())?;
        }
        let router: Weak<dyn MessageRouter> =
            Arc::downgrade(&self.inner) as Weak<dyn MessageRouter>;
        worker.set_router(router);
        self.journal_new(plugin, &spec, worker.state(), Some(storage), lineage);
        self.inner.add(Arc::new(worker.clone()));
        Ok(worker)
    }

    /// Journals a new worker of this colony.
    fn journal_new(
        &self,
        plugin: &Plugin,
        spec: &WorkerSpec,
        state: WorkerState,
        storage: Option<std::path::PathBuf>,
        lineage: Option<Lineage>,
    ) {
        self.inner.journal.add_worker(&WorkerRecord {
            id: spec.id.clone(),
            colony_id: self.id().to_owned(),
            plugin: plugin.name().to_owned(),
            plugin_source: plugin.origin().map(|p| p.display().to_string()),
            task: spec.task.clone(),
            input: spec.input.clone(),
            mode: spec.mode,
            state: state.into(),
            storage,
            created_at: Utc::now(),
            started_at: None,
            ended_at: None,
            interrupted_at: None,
            result: None,
            batch: spec.batch.clone(),
            token_budget: spec.token_budget,
            tool_call_budget: spec.tool_call_budget,
            plugin_sha256: plugin.sha256().map(str::to_owned),
            lineage,
        });
    }

    /// Records a worker that will run on a node: journaled, not yet published.
    #[cfg(feature = "nats")]
    fn create_remote(
        &self,
        cluster: &Cluster,
        plugin: &Plugin,
        spec: WorkerSpec,
    ) -> Result<MemberRef, ColonyError> {
        let sha256 = plugin
            .sha256()
            .ok_or_else(|| ClusterError::PluginNotLoaded {
                plugin: plugin.name().to_owned(),
            })?
            .to_owned();
        crate::cluster::subjects::check_token("worker id", &spec.id)?;
        let config = &self.inner.config;
        let task = TaskMessage {
            worker_id: spec.id.clone(),
            colony_id: self.id().to_owned(),
            plugin: plugin.name().to_owned(),
            sha256,
            task: spec.task.clone(),
            input: spec.input.clone(),
            token_budget: spec.token_budget,
            tool_call_budget: spec.tool_call_budget,
            soft_timeout: config.soft_timeout,
            hard_timeout: config.effective_hard_timeout(),
            inbox: Vec::new(),
            batch: spec.batch.clone(),
            trace_parent: spec
                .trace_parent
                .clone()
                .or_else(|| self.inner.trace_parent()),
        };
        self.journal_new(plugin, &spec, WorkerState::Queued, None, None);
        let worker = RemoteWorker::new(task, cluster.clone(), plugin.limits());
        let member: MemberRef = Arc::new(worker);
        self.inner.add(member.clone());
        Ok(member)
    }

    /// A colony built without the `nats` feature never has a backend to create on.
    #[cfg(not(feature = "nats"))]
    fn create_remote(
        &self,
        backend: &Backend,
        _plugin: &Plugin,
        _spec: WorkerSpec,
    ) -> Result<MemberRef, ColonyError> {
        match *backend {}
    }

    /// Creates and queues an ephemeral worker for each task (with its place in a batch,
    /// if any); their ids.
    pub(super) fn spawn_tasks(
        &self,
        plugin: &Plugin,
        tasks: Vec<(Task, Option<BatchPlace>)>,
    ) -> Result<Vec<String>, ColonyError> {
        let mut ids = Vec::with_capacity(tasks.len());
        for (task, batch) in tasks {
            let spec = WorkerSpec::ephemeral(self.new_id("w"), task.task)
                .with_input(task.input)
                .with_budgets(task.token_budget, task.tool_call_budget)
                .with_batch(batch);
            let member = if let Some(cluster) = &self.inner.cluster {
                self.create_remote(cluster, plugin, spec)?
            } else {
                Arc::new(self.create(plugin, spec, true)?) as MemberRef
            };
            ids.push(member.id().to_owned());
            self.inner
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(member);
            self.inner.queued.notify_one();
        }
        Ok(ids)
    }
}

//! [`Node`]: a worker node. It serves the plugins it was given — by sha256, nothing else
//! — pulling their tasks from the work queue and running each as an ephemeral worker
//! with the plugin's own sandbox and limits.
//!
//! A task is acknowledged only once its report is stored in the report stream; while the
//! worker runs, the node tells JetStream it is still at it (a progress ack every third of
//! the ack wait), so only a dead or cut-off node's tasks are redelivered. A node asked to
//! shut down stops its workers and hands their tasks back (nak) for another node.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{AckKind, Message};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{
    Cluster, ClusterError, Control, ControlReply, FLUSH_TIMEOUT, MIN_ACK_WAIT, RETRY_DELAY,
    ReportMessage, TaskMessage, not_run, subjects,
};
use crate::events::{AgentEvent, EventBus, EventFilter, EventType};
use crate::plugin::Plugin;
use crate::sandbox::Held;
use crate::worker::{MessageRouter, Worker, WorkerSpec, WorkerState};

/// How a node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The node's name, in its reports and its NATS connection.
    pub name: String,
    /// Where its workers' folders go: `{home}/workers/{colony}/{worker}/`.
    pub home: PathBuf,
    /// Workers running at once on this node. Default 4.
    pub slots: usize,
    /// How long JetStream waits for an acknowledgement before redelivering a task: the
    /// time a dead node's tasks take to move on. Default 30 s. The first node to serve a
    /// plugin sets it for that plugin's consumer.
    pub ack_wait: Duration,
    /// A task delivered more often than this fails with a report instead of running
    /// again (a task that keeps killing its nodes). Default 5.
    pub max_deliveries: i64,
    /// How long one pull request waits for tasks before asking again. Default 1 s.
    pub poll: Duration,
}

impl NodeConfig {
    /// The defaults, with the given name and home.
    pub fn new(name: impl Into<String>, home: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            home: home.into(),
            slots: 4,
            ack_wait: Duration::from_secs(30),
            max_deliveries: 5,
            poll: Duration::from_secs(1),
        }
    }
}

/// A worker node attached to a [`Cluster`].
pub struct Node {
    inner: Arc<NodeInner>,
    consumers: Vec<PullConsumer>,
}

struct NodeInner {
    cluster: Cluster,
    config: NodeConfig,
    /// The plugins it serves, by sha256.
    plugins: HashMap<String, Plugin>,
    /// Each plugin consumer's ack wait in force (set by the first node that served it),
    /// which paces the progress acknowledgements.
    ack_waits: HashMap<String, Duration>,
    slots: Arc<Semaphore>,
}

impl Node {
    /// Prepares a node serving `plugins` (each loaded, so its sha256 is known): one
    /// durable consumer per plugin, shared with every other node serving it.
    pub async fn new(
        cluster: Cluster,
        plugins: Vec<Plugin>,
        config: NodeConfig,
    ) -> Result<Self, ClusterError> {
        subjects::check_token("node name", &config.name)?;
        if config.ack_wait < MIN_ACK_WAIT {
            return Err(ClusterError::InvalidNode {
                node: config.name,
                reason: format!("an ack wait under {MIN_ACK_WAIT:?} would redeliver running tasks"),
            });
        }
        let mut by_hash = HashMap::new();
        for plugin in plugins {
            let sha = plugin
                .sha256()
                .ok_or_else(|| ClusterError::PluginNotLoaded {
                    plugin: plugin.name().to_owned(),
                })?
                .to_owned();
            by_hash.insert(sha, plugin);
        }
        let tasks = cluster
            .jetstream()
            .get_stream(subjects::TASKS_STREAM)
            .await
            .map_err(|e| ClusterError::js("open the task stream", e))?;
        let mut consumers = Vec::new();
        let mut ack_waits = HashMap::new();
        for sha in by_hash.keys() {
            let name = subjects::plugin_consumer(sha);
            let consumer = super::streams::ensure_consumer(
                &tasks,
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: subjects::tasks_for_plugin(sha),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    ..Default::default()
                },
            )
            .await?;
            ack_waits.insert(sha.clone(), consumer.cached_info().config.ack_wait);
            consumers.push(consumer);
        }
        Ok(Self {
            inner: Arc::new(NodeInner {
                slots: Arc::new(Semaphore::new(config.slots.max(1))),
                cluster,
                config,
                plugins: by_hash,
                ack_waits,
            }),
            consumers,
        })
    }

    /// The plugins it serves: (name, sha256).
    pub fn plugins(&self) -> Vec<(String, String)> {
        let mut list: Vec<_> = self
            .inner
            .plugins
            .iter()
            .map(|(sha, p)| (p.name().to_owned(), sha.clone()))
            .collect();
        list.sort();
        list
    }

    /// Serves tasks until `shutdown` is cancelled; then stops its running workers, hands
    /// their tasks back and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        // Each plugin's pull asks for at most its share of the slots, so a plugin with no
        // tasks cannot hold every slot in an open pull request while another's wait.
        let share = (self.inner.config.slots / self.consumers.len().max(1)).max(1);
        let mut pulls = tokio::task::JoinSet::new();
        for consumer in self.consumers {
            let inner = self.inner.clone();
            pulls.spawn(pull_tasks(inner, consumer, share, shutdown.clone()));
        }
        while pulls.join_next().await.is_some() {}
        // Every task holds a slot until it is acknowledged or handed back.
        let _ = self
            .inner
            .slots
            .acquire_many(self.inner.config.slots.max(1) as u32)
            .await;
        // The hand-backs (naks) leave before the process does (unless NATS is gone).
        let flushed = tokio::time::timeout(FLUSH_TIMEOUT, self.inner.cluster.client().flush());
        if !matches!(flushed.await, Ok(Ok(()))) {
            tracing::warn!(node = self.inner.config.name, "could not flush to NATS");
        }
    }
}

/// Pulls tasks of one plugin as slots free up (at most `share` per pull request), and
/// runs each in its own task.
async fn pull_tasks(
    inner: Arc<NodeInner>,
    consumer: PullConsumer,
    share: usize,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            permit = inner.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = shutdown.cancelled() => return,
        };
        let mut permits = vec![first];
        while permits.len() < share
            && let Ok(permit) = inner.slots.clone().try_acquire_owned()
        {
            permits.push(permit);
        }
        // A pull request for as many tasks as free slots, open until it has them all or
        // `poll` has passed; each task starts as soon as it arrives.
        let batch = consumer
            .batch()
            .max_messages(permits.len())
            .expires(inner.config.poll)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(node = inner.config.name, "cannot pull tasks: {e}");
                tokio::select! {
                    () = tokio::time::sleep(inner.config.poll) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
        };
        while let Some(next) = tokio::select! {
            next = batch.next() => next,
            () = shutdown.cancelled() => None,
        } {
            match (next, permits.pop()) {
                (Ok(message), Some(permit)) => {
                    tokio::spawn(handle(inner.clone(), message, permit, shutdown.clone()));
                }
                (Err(e), _) => tracing::warn!(node = inner.config.name, "pull: {e}"),
                // More than asked for (never, as pull requests are bounded): hand it back.
                (Ok(message), None) => {
                    let _ = message.ack_with(AckKind::Nak(None)).await;
                }
            }
        }
    }
}

/// How a delivered task ends on this node.
enum Outcome {
    /// Its report, to store before acknowledging.
    Report(Box<ReportMessage>),
    /// Its report was stored already (by a node that died before acknowledging, or by
    /// the colony when it withdrew the task): acknowledge, do not run.
    Reported,
    /// The node is shutting down: hand the task to another node.
    HandBack,
    /// Already answered (handed back after an error).
    Answered,
}

/// One delivered task, from its message to its acknowledgement.
async fn handle(
    inner: Arc<NodeInner>,
    message: Message,
    _slot: OwnedSemaphorePermit,
    shutdown: CancellationToken,
) {
    let name = inner.config.name.clone();
    let task = match serde_json::from_slice::<TaskMessage>(&message.payload) {
        Ok(task) => subjects::check_token("colony id", &task.colony_id)
            .and(subjects::check_token("worker id", &task.worker_id))
            .map(|()| task),
        Err(e) => Err(ClusterError::js("read a task", e)),
    };
    let task = match task {
        Ok(task) => task,
        Err(e) => {
            // No worker to report for: dropped for good.
            tracing::error!(node = name, "unusable task dropped: {e}");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
    tracing::debug!(
        node = name,
        worker = task.worker_id,
        delivered,
        "task taken"
    );
    let refusal = if !inner.plugins.contains_key(&task.sha256) {
        Some(format!(
            "node '{name}' does not hold plugin '{}' with sha256 {}: refused, not run",
            task.plugin, task.sha256
        ))
    } else if delivered > inner.config.max_deliveries {
        Some(format!(
            "delivered {delivered} times (more than {}): given up",
            inner.config.max_deliveries
        ))
    } else {
        None
    };
    // Control requests are answered until the task is acknowledged, so a stop that
    // races the end of the worker finds it here (and waits for its report).
    let mut control = ControlGuard(None);
    let outcome = match refusal {
        Some(reason) => {
            tracing::warn!(node = name, worker = task.worker_id, "{reason}");
            let result = not_run(reason);
            Outcome::Report(Box::new(ReportMessage::synthesised(
                &name,
                &task,
                WorkerState::Failed,
                result,
            )))
        }
        None => run(&inner, &task, &message, &shutdown, &mut control).await,
    };
    let report = match outcome {
        Outcome::Report(report) => report,
        Outcome::Reported => {
            let _ = message.double_ack().await;
            return;
        }
        Outcome::HandBack => {
            let _ = message.ack_with(AckKind::Nak(None)).await;
            return;
        }
        Outcome::Answered => return,
    };
    for attempt in 1..=3 {
        match inner.cluster.store_report(&report).await {
            Ok(_) => {
                if let Err(e) = message.double_ack().await {
                    tracing::warn!(node = name, worker = task.worker_id, "ack: {e}");
                }
                return;
            }
            Err(e) if attempt == 3 => {
                tracing::error!(node = name, worker = task.worker_id, "{e}; handing it back");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200 * attempt)).await,
        }
    }
    let _ = message.ack_with(AckKind::Nak(Some(RETRY_DELAY))).await;
}

/// Whether `task`'s report is stored already; `None` (after handing the task back with a
/// delay) when the stream cannot tell.
async fn already_reported(
    inner: &NodeInner,
    task: &TaskMessage,
    message: &Message,
) -> Option<bool> {
    match inner
        .cluster
        .has_report(&task.colony_id, &task.worker_id)
        .await
    {
        Ok(reported) => Some(reported),
        Err(e) => {
            let name = &inner.config.name;
            tracing::warn!(node = name, worker = task.worker_id, "{e}; handing it back");
            let _ = message.ack_with(AckKind::Nak(Some(RETRY_DELAY))).await;
            None
        }
    }
}

/// Runs the task's worker to its end.
async fn run(
    inner: &Arc<NodeInner>,
    task: &TaskMessage,
    message: &Message,
    shutdown: &CancellationToken,
    control: &mut ControlGuard,
) -> Outcome {
    let name = &inner.config.name;
    let plugin = &inner.plugins[&task.sha256];
    let storage = inner
        .config
        .home
        .join("workers")
        .join(&task.colony_id)
        .join(&task.worker_id);
    let spec = WorkerSpec::ephemeral(&task.worker_id, &task.task)
        .with_input(task.input.clone())
        .with_budgets(task.token_budget, task.tool_call_budget)
        .with_batch(task.batch.clone())
        .with_trace_parent(task.trace_parent.clone())
        .with_colony(&task.colony_id)
        .with_storage(storage);
    let bus = EventBus::new();
    let mut events = bus.subscribe_with_capacity(EventFilter::all(), 4096);
    let failed = |e: &dyn std::fmt::Display| {
        Outcome::Report(Box::new(ReportMessage::synthesised(
            name,
            task,
            WorkerState::Failed,
            not_run(e.to_string()),
        )))
    };
    let worker = match Worker::new(plugin, spec, Some(bus)) {
        Ok(worker) => worker,
        Err(e) => return failed(&e),
    };
    let router: Arc<dyn MessageRouter> = Arc::new(PeerRouter {
        cluster: inner.cluster.clone(),
        colony: task.colony_id.clone(),
    });
    worker.set_router(Arc::downgrade(&router) as Weak<dyn MessageRouter>);
    for message in &task.inbox {
        if let Err(e) = worker.inject(message.clone()) {
            tracing::warn!(node = name, worker = task.worker_id, "held message: {e}");
        }
    }
    control.0 = serve_control(&inner.cluster, task, &worker).await;
    // Checked once the worker can be reached: a task whose report is stored (a dead
    // node's, or the colony's after withdrawing it) is not run again.
    match already_reported(inner, task, message).await {
        Some(false) => {}
        Some(true) => return Outcome::Reported,
        None => return Outcome::Answered,
    }
    if let Err(e) = worker.start() {
        return failed(&e);
    }
    let supervised = crate::worker::supervise(worker.clone(), task.soft_timeout, task.hard_timeout);
    tokio::pin!(supervised);
    let ack_wait = inner.ack_waits[&task.sha256];
    let mut progress = tokio::time::interval((ack_wait / 3).max(Duration::from_millis(10)));
    progress.tick().await;
    let mut report = None;
    loop {
        tokio::select! {
            () = &mut supervised => break,
            Ok(event) = events.recv() => forward(inner, task, event, &mut report).await,
            _ = progress.tick() => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
            () = shutdown.cancelled() => {
                worker.stop().await;
                return Outcome::HandBack;
            }
        }
    }
    while let Ok(Some(event)) = events.try_recv() {
        forward(inner, task, event, &mut report).await;
    }
    let result = worker.wait().await;
    let state = worker.state();
    Outcome::Report(Box::new(match report {
        Some(event) => ReportMessage {
            node: name.clone(),
            colony_id: task.colony_id.clone(),
            state,
            result,
            event,
        },
        None => ReportMessage::synthesised(name, task, state, result),
    }))
}

/// Publishes one event of a worker on its subject, in order (a publish only queues it
/// on the connection); keeps the report for the stream.
async fn forward(
    inner: &NodeInner,
    task: &TaskMessage,
    event: AgentEvent,
    report: &mut Option<AgentEvent>,
) {
    let subject = subjects::event(&task.colony_id, event.event_type.as_str(), &task.worker_id);
    if let Ok(payload) = serde_json::to_vec(&event)
        && let Err(e) = inner
            .cluster
            .client()
            .publish(subject, payload.into())
            .await
    {
        tracing::warn!(worker = task.worker_id, "event not published: {e}");
    }
    if event.event_type == EventType::SubagentReport {
        *report = Some(event);
    }
}

/// The task answering a worker's control requests; ended when dropped.
struct ControlGuard(Option<tokio::task::JoinHandle<()>>);

impl Drop for ControlGuard {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Answers stop and inject requests for one worker.
async fn serve_control(
    cluster: &Cluster,
    task: &TaskMessage,
    worker: &Worker,
) -> Option<tokio::task::JoinHandle<()>> {
    let subject = subjects::control(&task.colony_id, &task.worker_id);
    let mut requests = match cluster.client().subscribe(subject).await {
        Ok(requests) => requests,
        Err(e) => {
            tracing::warn!(
                worker = task.worker_id,
                "cannot take stop/inject requests: {e}"
            );
            return None;
        }
    };
    // The subscription is registered with the server before the worker starts.
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, cluster.client().flush()).await;
    let client = cluster.client().clone();
    let worker = worker.clone();
    Some(tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let error = match serde_json::from_slice::<Control>(&request.payload) {
                Ok(Control::Stop) => {
                    // Answered at once; the worker's report follows when it has stopped.
                    let worker = worker.clone();
                    tokio::spawn(async move { worker.stop().await });
                    None
                }
                Ok(Control::Inject { message }) => {
                    worker.inject(message).err().map(|e| e.to_string())
                }
                Ok(Control::Peer { .. }) => Some("peer messages go to the colony".to_owned()),
                Err(e) => Some(format!("not a control request: {e}")),
            };
            if let (Some(reply), Ok(payload)) =
                (request.reply, serde_json::to_vec(&ControlReply { error }))
            {
                let _ = client.publish(reply, payload.into()).await;
            }
        }
    }))
}

/// `peers.send` from a worker on a node: the message goes to its colony, which routes it
/// as it routes its own workers' (to the overseer, a worker on any node, or one not yet
/// started, which gets it when it does).
struct PeerRouter {
    cluster: Cluster,
    colony: String,
}

#[async_trait::async_trait]
impl MessageRouter for PeerRouter {
    async fn route(
        &self,
        from: &str,
        to: &str,
        message: &str,
        _in_flight: Held,
    ) -> Result<(), String> {
        if to == from {
            return Err("a worker cannot message itself".to_owned());
        }
        self.cluster
            .send_to_peer(&self.colony, from, to, message)
            .await
    }
}

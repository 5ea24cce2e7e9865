//! Scale-out: a colony's workers on many machines, over NATS JetStream.
//!
//! Why NATS: a colony that outgrows one machine needs a queue that survives a node's
//! death, durable storage for reports and a way to reach whoever runs a worker — which is
//! exactly what NATS with JetStream is (wasmCloud's lattice runs on it), so Colony builds
//! on it instead of a home-made protocol. The in-process colony stays the default and
//! needs no server; this backend is chosen by configuration (`--nats URL`).
//!
//! How a task travels: [`Colony::run_parallel`](crate::Colony::run_parallel) queues it;
//! the colony's dispatcher publishes it, at most `max_concurrent_workers` in flight, to
//! the work-queue stream `COLONY_TASKS` under the plugin's sha256 ([`subjects`]). A
//! [`Node`] serving that sha256 pulls it, runs an ephemeral [`Worker`](crate::Worker) with
//! its own sandbox and limits, streams the worker's events on core NATS, stores the
//! report in the stream `COLONY_REPORTS` (message id = worker id) and only then
//! acknowledges the task. The colony reads its reports with an ordered consumer of its
//! subject in the report stream, from the start (so a colony that reconnects or restarts
//! misses none), journals each, publishes it on its bus and hands it to the overseer — as
//! in-process. The full story, for users: `docs/scale-out.md`.
//!
//! Guarantees:
//! - Tasks are delivered at least once: a node that dies mid-task never acknowledges it,
//!   so JetStream redelivers it after the ack wait (`--ack-wait`, kept alive by progress
//!   acks while the worker runs) to another node.
//! - Reports are exactly once per worker id: a node first checks whether the worker's
//!   report is already stored (then it only acknowledges), JetStream drops a duplicate
//!   report within its duplicate window, and the colony drops any report for a worker that
//!   already has one.
//! - Order: tasks start in the order published (per plugin); reports arrive in the order
//!   workers end. Other events are best effort (core NATS, at most once per run; a
//!   redelivered task's worker publishes its events again).
//! - Partition: a node cut off from NATS cannot acknowledge, so its tasks are redelivered
//!   after the ack wait; when it comes back, its late report is dropped by JetStream (within
//!   the duplicate window) or by the colony. A colony cut off keeps its queue and reads the
//!   reports it missed from the stream when it reconnects.

mod error;
#[cfg(feature = "test-support")]
mod local;
mod node;
mod streams;
pub mod subjects;
mod wire;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;

pub use error::ClusterError;
#[cfg(feature = "test-support")]
pub use local::LocalNats;
pub use node::{Node, NodeConfig};
pub use streams::StreamSettings;
pub(crate) use wire::not_run;
pub use wire::{Control, ControlReply, ReportMessage, TaskMessage};

// Every fixed duration of the NATS backend, with why. (What a node's operator tunes —
// slots, ack wait, deliveries, poll — is in `NodeConfig`, with its defaults.)

/// How long JetStream remembers a report's message id to drop a duplicate: longer than
/// any ack wait plus a node's restart, so a late report of a redelivered task is dropped.
pub const REPORT_DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// How long reports stay in the stream: what a restarted colony can still read back.
pub const REPORT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The shortest ack wait a node accepts: progress acks go out every third of it, and
/// shorter would redeliver running tasks under ordinary load.
pub const MIN_ACK_WAIT: Duration = Duration::from_millis(100);
/// How long a stop or inject request (and a node's `peers.send`) waits for the node's
/// answer: a node answers at once, so only a lost or overloaded one takes this long.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a node waits for NATS to take what it sent (its control subscription before
/// a worker starts, its hand-backs before it exits), so a lost server cannot hang it.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a task handed back after an error waits before it is delivered again, so a
/// failing store or lookup does not spin.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);
/// How often a stop asks again for a worker no node answers for yet (between a node's
/// pull and its start).
pub const STOP_POLL: Duration = Duration::from_millis(20);
/// How long a colony keeps trying to queue a task, or store a report it made itself, while
/// JetStream does not acknowledge: a cluster that lost a server elects new stream leaders
/// within seconds, and a task should not fail for that. Message ids keep the retries from
/// queuing or storing anything twice.
pub const STORE_RETRY: Duration = Duration::from_secs(30);

/// Runs `attempt` until it succeeds or [`STORE_RETRY`] has passed since `begun`, pausing
/// between tries (100 ms, doubling up to 2 s); `give_up` ends it early (e.g. the worker
/// was stopped meanwhile). The last error when it gives up.
#[cfg(feature = "colony")]
pub(crate) async fn retry_store<T, F, Fut>(
    begun: tokio::time::Instant,
    mut attempt: F,
    give_up: impl Fn() -> bool,
) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if begun.elapsed() + pause >= STORE_RETRY || give_up() => return Err(e),
            Err(e) => tracing::debug!("{e}; trying again in {pause:?}"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// A connection to NATS with the colony streams in place. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    url: String,
}

impl Cluster {
    /// Connects to the NATS server(s) at `url` (comma-separated for a cluster) and
    /// creates the task and report streams if they do not exist.
    pub async fn connect(url: &str, name: &str) -> Result<Self, ClusterError> {
        Self::connect_with(url, name, StreamSettings::default()).await
    }

    /// [`Cluster::connect`], with the streams stored as `settings` say (e.g. three
    /// replicas on a three-server cluster). Many colonies and nodes may connect at the
    /// same instant: the streams are created once and checked by everyone.
    pub async fn connect_with(
        url: &str,
        name: &str,
        settings: StreamSettings,
    ) -> Result<Self, ClusterError> {
        // A cluster's servers, comma-separated: the client fails over between them.
        let servers: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let client = async_nats::ConnectOptions::new()
            .name(name)
            .connect(servers)
            .await
            .map_err(|e| ClusterError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let js = jetstream::new(client.clone());
        let cluster = Self {
            client,
            js,
            url: url.to_owned(),
        };
        cluster.ensure_streams(settings).await?;
        Ok(cluster)
    }

    /// The server address it was connected with.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub(crate) fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    async fn ensure_streams(&self, settings: StreamSettings) -> Result<(), ClusterError> {
        streams::ensure_stream(&self.js, streams::task_stream(settings), settings).await?;
        streams::ensure_stream(&self.js, streams::report_stream(settings), settings).await?;
        Ok(())
    }

    async fn stream(&self, name: &str) -> Result<stream::Stream, ClusterError> {
        self.js
            .get_stream(name)
            .await
            .map_err(|e| ClusterError::js(format!("open stream {name}"), e))
    }

    /// Queues a task: sent when this returns (so tasks queue in the order of the calls),
    /// stored when the returned future yields its sequence in the task stream (which can
    /// withdraw it while no node has taken it). The worker id is the message id, so a
    /// retried publish is not queued twice.
    pub async fn publish_task(
        &self,
        task: &TaskMessage,
    ) -> Result<impl Future<Output = Result<u64, ClusterError>> + Send + 'static, ClusterError>
    {
        let what = format!("queue the task of worker '{}'", task.worker_id);
        let payload = serde_json::to_vec(task).map_err(|e| ClusterError::js(&what, e))?;
        let ack = self
            .js
            .send_publish(
                subjects::task(&task.colony_id, &task.sha256),
                jetstream::message::PublishMessage::build()
                    .message_id(&task.worker_id)
                    .payload(Bytes::from(payload)),
            )
            .await
            .map_err(|e| ClusterError::js(&what, e))?;
        Ok(async move {
            ack.await
                .map(|ack| ack.sequence)
                .map_err(|e| ClusterError::js(what, e))
        })
    }

    /// Removes a task from the queue unless it has been acknowledged (a node may hold it
    /// unacknowledged: [`Node`] checks for a stored report before it starts a worker).
    /// False when it was gone already.
    pub async fn withdraw_task(&self, sequence: u64) -> Result<bool, ClusterError> {
        let tasks = self.stream(subjects::TASKS_STREAM).await?;
        match tasks.delete_message(sequence).await {
            Ok(deleted) => Ok(deleted),
            Err(e) => {
                // Mostly "no message found": acknowledged already.
                tracing::debug!("withdraw task {sequence}: {e}");
                Ok(false)
            }
        }
    }

    /// Stores a report durably (message id = worker id). False when the stream already
    /// had a report for that worker and dropped this one as a duplicate.
    pub async fn store_report(&self, report: &ReportMessage) -> Result<bool, ClusterError> {
        let worker = report.event.worker_id.as_str();
        let what = || format!("store the report of worker '{worker}'");
        let payload = serde_json::to_vec(report).map_err(|e| ClusterError::js(what(), e))?;
        let ack = self
            .js
            .send_publish(
                subjects::report(&report.colony_id, worker),
                jetstream::message::PublishMessage::build()
                    .message_id(worker)
                    .payload(Bytes::from(payload)),
            )
            .await
            .map_err(|e| ClusterError::js(what(), e))?
            .await
            .map_err(|e| ClusterError::js(what(), e))?;
        Ok(!ack.duplicate)
    }

    /// Whether `worker`'s report is already stored.
    pub async fn has_report(&self, colony: &str, worker: &str) -> Result<bool, ClusterError> {
        use jetstream::stream::LastRawMessageErrorKind;
        let reports = self.stream(subjects::REPORTS_STREAM).await?;
        match reports
            .get_last_raw_message_by_subject(&subjects::report(colony, worker))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(ClusterError::js(
                format!("look up the report of worker '{worker}'"),
                e,
            )),
        }
    }

    /// Whether a node is serving plugin `sha256` right now: pulling its tasks, or running
    /// one (unacknowledged).
    pub async fn has_active_node(&self, sha256: &str) -> Result<bool, ClusterError> {
        use jetstream::context::ConsumerInfoErrorKind;
        let tasks = self.stream(subjects::TASKS_STREAM).await?;
        match tasks.consumer_info(subjects::plugin_consumer(sha256)).await {
            Ok(info) => Ok(info.num_waiting > 0 || info.num_ack_pending > 0),
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => Ok(false),
            Err(e) => Err(ClusterError::js(
                format!("look for a node serving plugin sha256 {sha256}"),
                e,
            )),
        }
    }

    /// Hands `message` from worker `from` (on a node) to its colony for worker `to`:
    /// the colony routes it as it routes its own workers' messages; `Ok` once the target
    /// has it, or holds it until it starts.
    pub(crate) async fn send_to_peer(
        &self,
        colony: &str,
        from: &str,
        to: &str,
        message: &str,
    ) -> Result<(), String> {
        let request = Control::Peer {
            from: from.to_owned(),
            to: to.to_owned(),
            message: message.to_owned(),
        };
        self.control(colony, subjects::COLONY_CONTROL, &request, CONTROL_TIMEOUT)
            .await
            .map_err(|e| match e {
                // The colony's own answer, worded as for a worker in its process.
                ClusterError::Refused { reason, .. } => reason,
                ClusterError::NotRunning { .. } => format!("colony '{colony}' is not connected"),
                e => e.to_string(),
            })
    }

    /// Sends `request` to whoever runs `worker` and waits (at most `timeout`) for the
    /// answer.
    pub async fn control(
        &self,
        colony: &str,
        worker: &str,
        request: &Control,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        use async_nats::client::RequestErrorKind;
        let payload = serde_json::to_vec(request).map_err(|e| ClusterError::Refused {
            worker: worker.to_owned(),
            reason: e.to_string(),
        })?;
        let sent = tokio::time::timeout(
            timeout,
            self.client
                .request(subjects::control(colony, worker), payload.into()),
        )
        .await;
        let reply = match sent {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {
                return Err(ClusterError::NotRunning {
                    worker: worker.to_owned(),
                });
            }
            Ok(Err(e)) => {
                return Err(ClusterError::Refused {
                    worker: worker.to_owned(),
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(ClusterError::Refused {
                    worker: worker.to_owned(),
                    reason: format!("no answer within {timeout:?}"),
                });
            }
        };
        let reply: ControlReply =
            serde_json::from_slice(&reply.payload).map_err(|e| ClusterError::Refused {
                worker: worker.to_owned(),
                reason: format!("unreadable answer: {e}"),
            })?;
        match reply.error {
            None => Ok(()),
            Some(reason) => Err(ClusterError::Refused {
                worker: worker.to_owned(),
                reason,
            }),
        }
    }
}

//! What comes back from the nodes: reports from the report stream (an ordered consumer
//! of this colony's subject), deduplicated by worker id, journaled, then published on the
//! bus — exactly like a local worker's; other events over core NATS, republished as they
//! arrive; and `peers.send` from workers on nodes, which the colony routes as its own.
//!
//! Where the reports are read from: the journal keeps a cursor per colony (the stream
//! sequence of the last report journaled). A colony that connects again reads on from
//! it — so it misses no report that arrived while it was away, and does not read the
//! stream's week of history each time (every `colony --nats run` is a colony `cli`). A
//! colony seen for the first time starts at the stream's end; one whose journal predates
//! cursors but has unfinished workers reads its whole subject.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;

use super::remote::send_held;
use super::{ColonyError, ColonyInner};
use crate::cluster::{Cluster, ClusterError, Control, ReportMessage, subjects};
use crate::events::{AgentEvent, EventType};
use crate::journal::{Journal, JournalError};
use crate::worker::{WorkerInfo, WorkerState, withheld};

/// Connects the colony's listeners: reports, events and the overseer's inbox.
pub(crate) struct RemoteFeeds {
    cluster: Cluster,
    /// The stream sequence the report consumer starts at.
    start: u64,
    reports: pull::Ordered,
    events: async_nats::Subscriber,
    overseer: async_nats::Subscriber,
}

impl RemoteFeeds {
    pub async fn open(
        cluster: &Cluster,
        colony: &str,
        journal: &Journal,
    ) -> Result<Self, ColonyError> {
        subjects::check_token("colony id", colony)?;
        let mut stream = cluster
            .jetstream()
            .get_stream(subjects::REPORTS_STREAM)
            .await
            .map_err(|e| ClusterError::js("open the report stream", e))?;
        let last = stream
            .info()
            .await
            .map_err(|e| ClusterError::js("look up the report stream", e))?
            .state
            .last_sequence;
        let deliver_policy = match journal.report_cursor(colony)? {
            Some(read) if read <= last => DeliverPolicy::ByStartSequence {
                start_sequence: read + 1,
            },
            _ if journal.has_unended(colony)? => DeliverPolicy::All,
            _ => {
                journal.reset_report_cursor(colony, last);
                DeliverPolicy::ByStartSequence {
                    start_sequence: last + 1,
                }
            }
        };
        let start = match deliver_policy {
            DeliverPolicy::ByStartSequence { start_sequence } => start_sequence,
            _ => 1,
        };
        let reports = report_consumer(cluster, colony, deliver_policy).await?;
        let subscribe = |subject: String| async move {
            cluster
                .client()
                .subscribe(subject.clone())
                .await
                .map_err(|e| ClusterError::js(format!("subscribe to {subject}"), e))
        };
        let events = subscribe(subjects::events(colony)).await?;
        let overseer = subscribe(subjects::control(colony, subjects::COLONY_CONTROL)).await?;
        cluster
            .client()
            .flush()
            .await
            .map_err(|e| ClusterError::js("flush subscriptions", e))?;
        Ok(Self {
            cluster: cluster.clone(),
            start,
            reports,
            events,
            overseer,
        })
    }

    /// Spawns the three listeners; each ends when the colony is dropped or stopped.
    pub fn spawn(self, inner: &Arc<ColonyInner>) {
        // A consumer made anew after a stall reads on from here at the earliest.
        inner.cursor.note(self.start.saturating_sub(1));
        tokio::spawn(read_reports(
            Arc::downgrade(inner),
            self.cluster.clone(),
            self.reports,
        ));
        tokio::spawn(read_events(Arc::downgrade(inner), self.events));
        tokio::spawn(serve_overseer(
            Arc::downgrade(inner),
            self.cluster,
            self.overseer,
        ));
    }
}

/// How long one pull of the report consumer waits. The server sends idle heartbeats at
/// half of it, and the consumer is made again (from the last report read) after two are
/// missed — so a consumer lost with its server (a cluster node killed) is replaced
/// within a few seconds, where the client's default (30 s pulls) would stall the
/// colony's reports for a minute.
const REPORT_PULL_EXPIRY: Duration = Duration::from_secs(4);

/// An ordered consumer of colony `colony`'s reports, from `deliver_policy` on.
async fn report_consumer(
    cluster: &Cluster,
    colony: &str,
    deliver_policy: DeliverPolicy,
) -> Result<pull::Ordered, ClusterError> {
    let what = "read the colony's reports";
    cluster
        .jetstream()
        .get_stream(subjects::REPORTS_STREAM)
        .await
        .map_err(|e| ClusterError::js(what, e))?
        .create_consumer(pull::OrderedConfig {
            filter_subject: subjects::reports(colony),
            deliver_policy,
            max_expires: REPORT_PULL_EXPIRY,
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::js(what, e))?
        .messages()
        .await
        .map_err(|e| ClusterError::js(what, e))
}

/// How long the report feed may stay silent while workers are out before the colony
/// makes its consumer anew, from the last report it journaled. The client replaces a
/// consumer whose heartbeats stop, but a cluster that lost a server can leave it waiting
/// on a consumer that answers nothing; a new one costs one request, a stalled one every
/// report still to come.
const REPORT_STALL: Duration = Duration::from_secs(10);

/// How often the report cursor is saved while reports arrive: reading a few again after
/// a crash is harmless (a worker keeps its first report), a write per report is not free.
const CURSOR_SAVE_INTERVAL: Duration = Duration::from_millis(250);

/// How far this colony has read the report stream, and how far that is saved in the
/// journal.
#[derive(Default)]
pub(super) struct ReportCursor {
    read: AtomicU64,
    saved: AtomicU64,
}

impl ReportCursor {
    /// Notes that the report at `sequence` is journaled.
    pub fn note(&self, sequence: u64) {
        self.read.fetch_max(sequence, Ordering::AcqRel);
    }

    /// The stream sequence of the last report journaled (0: none yet).
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Acquire)
    }

    /// Saves how far the colony has read, if that moved (also when it stops).
    pub fn save(&self, journal: &Journal, colony: &str) {
        let read = self.read.load(Ordering::Acquire);
        if read > self.saved.swap(read, Ordering::AcqRel) {
            journal.advance_report_cursor(colony, read);
        }
    }
}

async fn read_reports(inner: Weak<ColonyInner>, cluster: Cluster, mut reports: pull::Ordered) {
    let mut saved_at = Instant::now();
    let mut heard_at = Instant::now();
    loop {
        let next = tokio::time::timeout(CURSOR_SAVE_INTERVAL, reports.next()).await;
        let Some(inner) = inner.upgrade() else { return };
        let quiet = next.is_err();
        match next {
            Ok(None) => return,
            Ok(Some(Ok(message))) => {
                heard_at = Instant::now();
                let sequence = message.info().ok().map(|info| info.stream_sequence);
                match serde_json::from_slice::<ReportMessage>(&message.payload) {
                    Ok(report) => deliver(&inner, report, sequence).await,
                    Err(e) => {
                        tracing::warn!("unreadable report on {}: {e}", message.subject);
                        if let Some(sequence) = sequence {
                            inner.cursor.note(sequence);
                        }
                    }
                }
            }
            Ok(Some(Err(e))) => tracing::warn!("reading reports: {e}"),
            // Quiet for the save interval.
            Err(_) => {}
        }
        if quiet || saved_at.elapsed() >= CURSOR_SAVE_INTERVAL {
            inner.cursor.save(&inner.journal, &inner.config.id);
            saved_at = Instant::now();
        }
        if quiet && heard_at.elapsed() >= REPORT_STALL && inner.has_workers_out() {
            heard_at = Instant::now();
            let from = DeliverPolicy::ByStartSequence {
                start_sequence: inner.cursor.read() + 1,
            };
            match report_consumer(&cluster, &inner.config.id, from).await {
                Ok(fresh) => {
                    tracing::info!(
                        "no report for {REPORT_STALL:?} with workers out: reading on from a new consumer"
                    );
                    reports = fresh;
                }
                Err(e) => tracing::warn!("{e}"),
            }
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
        let Some(worker) = inner.find_remote(&event.worker_id) else {
            continue;
        };
        if worker.state().is_terminal() {
            continue;
        }
        if event.event_type == EventType::ExecutionStarted
            && let Some((first, held)) = worker.started(event.timestamp)
        {
            if first {
                inner.journal.set_state(&worker.info());
            }
            if !held.is_empty() {
                tokio::spawn(send_held(worker.clone(), held));
            }
        }
        inner.bus.publish(event);
    }
}

/// The colony's own control subject: `peers.send` from workers on nodes (routed as the
/// colony routes its own workers' messages) and injects into the overseer. Each request
/// is answered on its own task, so a slow target does not hold up the others.
async fn serve_overseer(
    inner: Weak<ColonyInner>,
    cluster: Cluster,
    mut requests: async_nats::Subscriber,
) {
    while let Some(request) = requests.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let error = match serde_json::from_slice::<Control>(&request.payload) {
                Ok(Control::Peer { from, to, message }) => {
                    inner.route_peer(&from, &to, &message).await.err()
                }
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
        });
    }
}

/// Ends a remote worker with its report: journaled (with its end), then published. A
/// worker that has a report already (a redelivered task, the stream replayed) keeps its
/// first one. `sequence`: where the report is in the report stream (none for one the
/// colony made), noted as read once it is journaled — before anyone hears of it.
pub(super) async fn deliver(inner: &ColonyInner, report: ReportMessage, sequence: Option<u64>) {
    let read = || {
        if let Some(sequence) = sequence {
            inner.cursor.note(sequence);
        }
    };
    let Some(worker) = inner.find_remote(&report.event.worker_id) else {
        deliver_missed(inner, report).await;
        return read();
    };
    if worker.state().is_terminal() {
        return read();
    }
    let info = worker.info();
    let report = journaled_or_withheld(report, |r| {
        let end = WorkerInfo {
            state: r.state,
            result: Some(r.result.clone()),
            ..info.clone()
        };
        inner.journal.end_with_report(&end, &r.event)
    })
    .await;
    if !worker.finish(report.state, report.result, report.event.timestamp) {
        return read();
    }
    read();
    inner.bus.publish(report.event);
}

/// `report`, once `journal` committed it with the end it tells of; or, failing closed,
/// a FAILED report saying it could not be (journaled where it still can be) — so that
/// the journal, `wait` and the bus all tell the same outcome.
async fn journaled_or_withheld<F>(
    mut report: ReportMessage,
    journal: impl Fn(&ReportMessage) -> F,
) -> ReportMessage
where
    F: Future<Output = Result<(), JournalError>>,
{
    let Err(e) = journal(&report).await else {
        return report;
    };
    let reason = format!(
        "worker '{}': cannot journal the report: {e}; its own report is withheld",
        report.event.worker_id
    );
    tracing::error!("{reason}");
    report.state = WorkerState::Failed;
    report.result = withheld(report.result, reason);
    let data = &mut report.event.data;
    data["status"] = serde_json::json!(report.result.status);
    data["summary"] = serde_json::json!(report.result.summary);
    data["error"] = serde_json::json!(report.result.error);
    data["data"] = serde_json::json!({});
    let _ = journal(&report).await;
    report
}

/// A report for a worker this process did not create: one a previous process of the
/// colony (same id and home) fanned out before it ended. The journal gets its outcome.
async fn deliver_missed(inner: &ColonyInner, report: ReportMessage) {
    let id = report.event.worker_id.clone();
    let record = match inner.journal.worker(&id) {
        Ok(Some(record)) => record,
        Ok(None) => return,
        Err(e) => return tracing::error!("worker '{id}': {e}"),
    };
    if record.state.has_ended() || record.colony_id != inner.config.id {
        return;
    }
    let report = journaled_or_withheld(report, |r| {
        inner.journal.set_ended(&id, r.state, &r.result, &r.event)
    })
    .await;
    inner.bus.publish(report.event);
}

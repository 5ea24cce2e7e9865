//! What comes back from the nodes: reports from the report stream (an ordered consumer
//! from the start of this colony's subject, so a colony that reconnects reads what it
//! missed), deduplicated by worker id, journaled, then published on the bus — exactly like
//! a local worker's; other events over core NATS, republished as they arrive; and
//! `peers.send` from workers on nodes, which the colony routes as its own.

use std::sync::{Arc, Weak};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;

use super::ColonyInner;
use super::remote::send_held;
use crate::cluster::{Cluster, ClusterError, Control, ReportMessage, subjects};
use crate::events::{AgentEvent, EventType};
use crate::worker::{WorkerState, withheld};

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
        let overseer = subscribe(subjects::control(colony, subjects::COLONY_CONTROL)).await?;
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
        let Some(worker) = inner.find_remote(&event.worker_id) else {
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

/// Ends a remote worker with its report: journaled, then published. A worker that has
/// a report already (a redelivered task, the stream replayed) keeps its first one.
pub(super) fn deliver(inner: &ColonyInner, report: ReportMessage) {
    let Some(worker) = inner.find_remote(&report.event.worker_id) else {
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
    let _ = inner.journal.add_report(&report.event);
    report
}

/// A report for a worker this process did not create: one a previous process of the
/// colony (same id and home) fanned out before it ended. The journal gets its outcome.
fn deliver_missed(inner: &ColonyInner, report: ReportMessage) {
    let id = report.event.worker_id.clone();
    let record = match inner.journal.worker(&id) {
        Ok(Some(record)) => record,
        Ok(None) => return,
        Err(e) => return tracing::error!("worker '{id}': {e}"),
    };
    if record.state.has_ended() || record.colony_id != inner.config.id {
        return;
    }
    let report = journaled_or_withheld(inner, report);
    if let Err(e) = inner.journal.set_ended(&id, report.state, &report.result) {
        tracing::error!("worker '{id}': {e}");
    }
    inner.bus.publish(report.event);
}

//! Report forwarding: each worker's `SUBAGENT_REPORT` handed to the overseer as one
//! "[WORKER_REPORT] …" turn, in arrival order.

use std::sync::Weak;

use super::ColonyInner;
use crate::events::{RecvError, Subscription};
use crate::worker::{Worker, WorkerReport};

/// Hands each worker report to the overseer as one turn, in arrival order.
pub(super) async fn forward_reports(inner: Weak<ColonyInner>, mut reports: Subscription) {
    loop {
        let event = match reports.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else { return };
        let Some(overseer) = inner
            .overseer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            continue;
        };
        if event.worker_id == overseer.id() || !overseer.is_active() {
            continue;
        }
        // A replay's report is a re-run of history, not news for the overseer.
        let replayed = inner
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&event.worker_id)
            .and_then(|m| m.as_local().map(Worker::is_replay))
            .unwrap_or(false);
        if replayed {
            continue;
        }
        let report = WorkerReport::from_event(&event).unwrap_or_else(|e| {
            tracing::error!("{e}");
            WorkerReport::unreadable(&event.stream_id, "", &e)
        });
        if let Err(e) = overseer.inject(report.as_overseer_message()) {
            tracing::warn!(
                "cannot hand {}'s report to the overseer: {e}",
                report.worker_id
            );
        }
    }
}

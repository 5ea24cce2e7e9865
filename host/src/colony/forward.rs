//! Report forwarding: each worker's `SUBAGENT_REPORT` handed to the overseer as one
//! "[WORKER_REPORT] …" turn, in arrival order.
//!
//! Why one forwarder per overseer, started with it: a colony without an overseer (a
//! fan-out, an MCP server) has nobody to forward to, and a subscription that only drops
//! what it hears would still copy every report and wake a task for it.

use std::sync::Weak;

use super::ColonyInner;
use crate::events::{RecvError, Subscription};
use crate::worker::{Worker, WorkerReport};

/// Hands each worker report heard on `reports` to `overseer` as one turn, in arrival
/// order, until the overseer ends or another one takes its place.
pub(super) async fn forward_reports(
    inner: Weak<ColonyInner>,
    overseer: Worker,
    mut reports: Subscription,
) {
    let ended = overseer.wait();
    tokio::pin!(ended);
    loop {
        let event = tokio::select! {
            event = reports.recv() => match event {
                Ok(event) => event,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            _ = &mut ended => return,
        };
        let Some(inner) = inner.upgrade() else { return };
        let current = inner
            .overseer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|o| o.id() == overseer.id());
        if !current {
            return;
        }
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

//! [`supervise`]: the soft and hard timeouts of a running worker — the same watch
//! whether a colony runs the worker or a node does.

use std::time::Duration;

use super::Worker;

/// Watches one running worker until it ends: after `soft` it is told to wrap up, after
/// `hard` it is stopped. (Nodes run the same watch over the workers they run.)
pub(crate) async fn supervise(worker: Worker, soft: Duration, hard: Duration) {
    tokio::select! {
        _ = worker.wait() => return,
        () = tokio::time::sleep(soft) => {}
    }
    let _ = worker.inject(format!(
        "[SOFT TIMEOUT] You have been running for {}. Wrap up now and report to your parent.",
        humantime::format_duration(soft)
    ));
    tokio::select! {
        _ = worker.wait() => {}
        () = tokio::time::sleep(hard.saturating_sub(soft)) => {
            tracing::warn!(worker = worker.id(), "hard timeout: stopping");
            worker.stop().await;
        }
    }
}

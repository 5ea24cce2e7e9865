//! A fan-out waiting on a plugin no node is serving says so, once.
//!
//! Why: a task for a plugin whose nodes have all gone stays on the queue until one comes
//! back — the right behaviour, since a node may be restarting — but a user watching a
//! progress bar that never moves deserves to know why. When this colony has tasks of a
//! plugin on the queue and, for a few seconds running, no node is pulling that plugin's
//! tasks or running one, the colony logs a warning naming the plugin and its sha256.

use std::collections::HashSet;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use super::ColonyInner;
use crate::cluster::Cluster;
use crate::worker::WorkerState;

/// How often the plugin's consumer is looked at while tasks wait.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long no node may be seen before the warning.
pub(crate) const WARN_AFTER: Duration = Duration::from_secs(3);

/// The plugins (by sha256) being watched, or warned about already.
#[derive(Default)]
pub(super) struct Unserved {
    watched: Mutex<HashSet<String>>,
}

impl Unserved {
    /// Starts watching plugin `sha256` (named `plugin`) unless it is watched already.
    pub fn watch(&self, inner: Weak<ColonyInner>, cluster: Cluster, plugin: &str, sha256: &str) {
        if !self.lock().insert(sha256.to_owned()) {
            return;
        }
        tokio::spawn(watch(inner, cluster, plugin.to_owned(), sha256.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn watch(inner: Weak<ColonyInner>, cluster: Cluster, plugin: String, sha256: String) {
    let mut unseen = Duration::ZERO;
    loop {
        tokio::time::sleep(CHECK_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.stopped.is_cancelled() {
            return;
        }
        if !waits_for_a_node(&inner, &sha256) {
            // Nothing on the queue now: a later fan-out is watched afresh.
            inner.unserved.lock().remove(&sha256);
            return;
        }
        match cluster.has_active_node(&sha256).await {
            Ok(true) => unseen = Duration::ZERO,
            Ok(false) => unseen += CHECK_INTERVAL,
            Err(e) => tracing::debug!("{e}"),
        }
        if unseen >= WARN_AFTER {
            // Stays in the watched set: said once per colony and plugin.
            tracing::warn!(
                "no node serves plugin '{}' (sha256 {sha256}) yet; waiting",
                crate::text::inert(&plugin)
            );
            return;
        }
    }
}

/// Whether a task of plugin `sha256` of this colony is on the queue (published, not
/// started).
fn waits_for_a_node(inner: &ColonyInner, sha256: &str) -> bool {
    let workers = inner.workers.lock().unwrap_or_else(|e| e.into_inner());
    workers
        .values()
        .filter_map(|member| member.clone().as_remote())
        .any(|worker| {
            worker.task.sha256 == sha256
                && worker.state() == WorkerState::Queued
                && worker.is_dispatched()
        })
}

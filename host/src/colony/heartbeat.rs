//! The journal's heartbeat: how a colony that crashed is told from one that runs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::journal::Journal;

/// Keeps the journal's heartbeat fresh, so a crash is dated within a second.
pub(super) async fn heartbeat(journal: Arc<Journal>, stopped: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => journal.heartbeat(),
            () = stopped.cancelled() => return,
        }
    }
}

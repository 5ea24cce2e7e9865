//! The colony's queue: workers fanned out wait `queued` and start in FIFO order, from one
//! dispatcher task, as concurrency slots free up — and never after the colony was
//! stopped.

use std::sync::Arc;

use super::ColonyInner;

/// Starts queued workers in FIFO order as concurrency slots free up.
pub(super) async fn dispatch(inner: Arc<ColonyInner>) {
    loop {
        let slot = tokio::select! {
            permit = inner.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = inner.stopped.cancelled() => return,
        };
        let member = loop {
            let notified = inner.queued.notified();
            if let Some(member) = inner
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()
            {
                break member;
            }
            tokio::select! {
                () = notified => {}
                () = inner.stopped.cancelled() => return,
            }
        };
        // A queued worker never starts after the colony or the worker was stopped.
        if inner.stopped.is_cancelled() {
            return;
        }
        // A local worker runs under the colony's watch; one on a node is published and
        // watched there. Either holds its slot until it ends.
        member.launch(inner.clone(), slot).await;
    }
}

//! A colony obeying controls filed in its journal by other processes (`colony serve`):
//! stop or inject into one of its workers, or stop them all. See [`Control`].

use std::sync::{Arc, Weak};

use tokio_util::sync::CancellationToken;

use super::{Colony, ColonyInner};
use crate::journal::{CONTROL_POLL, Control, Journal};

/// Reads the controls filed after the colony opened and acts on those for its workers,
/// until the colony stops (or is dropped).
pub(super) async fn obey(
    inner: Weak<ColonyInner>,
    journal: Arc<Journal>,
    stopped: CancellationToken,
) {
    let reader = journal.clone();
    let Ok(Ok(mut cursor)) = tokio::task::spawn_blocking(move || reader.last_control()).await
    else {
        tracing::warn!("cannot read the journal's controls: this colony obeys none");
        return;
    };
    let mut tick = tokio::time::interval(CONTROL_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stopped.cancelled() => return,
        }
        let reader = journal.clone();
        let controls =
            match tokio::task::spawn_blocking(move || reader.controls_after(cursor)).await {
                Ok(Ok(controls)) => controls,
                Ok(Err(e)) => {
                    tracing::warn!("cannot read the journal's controls: {e}");
                    continue;
                }
                Err(_) => continue,
            };
        for (id, control) in controls {
            cursor = cursor.max(id);
            let Some(inner) = inner.upgrade() else { return };
            // A stop waits up to the worker's stop timeout: the next controls need not.
            tokio::spawn(act(Colony { inner }, id, control));
        }
    }
}

/// Acts on control `id` if it concerns this colony, and answers it.
async fn act(colony: Colony, id: i64, control: Control) {
    let journal = colony.inner.journal.clone();
    let (ok, outcome) = match control {
        Control::Stop { worker } => {
            if colony.inner.member(&worker).is_none() {
                return;
            }
            match colony.stop_worker(&worker).await {
                Ok(stop) => (true, format!("{} ({:?})", stop.state, stop.elapsed)),
                Err(e) => (false, e.to_string()),
            }
        }
        Control::Inject { worker, message } => {
            if colony.inner.member(&worker).is_none() {
                return;
            }
            match colony.inject(&worker, message).await {
                Ok(()) => (true, "injected".to_owned()),
                Err(e) => (false, e.to_string()),
            }
        }
        Control::StopAll => {
            let stops = colony.stop_all().await;
            (
                true,
                format!("colony {}: {} workers stopped", colony.id(), stops.len()),
            )
        }
    };
    journal.acknowledge(id, ok, outcome);
}

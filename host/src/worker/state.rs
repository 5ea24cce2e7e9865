//! The worker lifecycle as a state machine.
//!
//! ```text
//! Pending ──enqueue──▶ Queued ──start──▶ Running ──run ok──▶ Completed
//!    │  └────────────start─────────────────▲  ├──run err / crash──▶ Failed
//!    └──stop──▶ Stopped ◀──stop── (Queued)    └──stop──▶ Stopped
//! ```
//! `Queued` is used by a [`Colony`](crate::Colony) for a worker accepted but waiting for a
//! concurrency slot; like `Pending` it counts as active.
//! A persistent worker stays `Running` after its initial run and between turns. Every
//! change of state goes through [`WorkerState::can_become`], so an invalid transition
//! (e.g. `Completed → Running`) cannot happen, however calls race.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Created, not started. It may be seeded.
    Pending,
    /// Accepted by a colony, waiting for a concurrency slot.
    Queued,
    /// Started: running its task, or (persistent) serving turns.
    Running,
    /// The run finished with `ok`.
    Completed,
    /// The run returned `err`, the guest crashed, or it could not be instantiated.
    Failed,
    /// Stopped by [`Worker::stop`](crate::Worker::stop).
    Stopped,
}

impl WorkerState {
    /// Pending or running.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            WorkerState::Pending | WorkerState::Queued | WorkerState::Running
        )
    }

    /// Completed, failed or stopped: the worker will not change again.
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }

    /// Whether the lifecycle allows going from `self` to `next`.
    pub fn can_become(self, next: WorkerState) -> bool {
        use WorkerState::*;
        matches!(
            (self, next),
            (Pending, Queued | Running | Stopped)
                | (Queued, Running | Stopped)
                | (Running, Completed | Failed | Stopped)
        )
    }

    /// Lower-case name, as in the reference: `pending`, `running`, …
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Pending => "pending",
            WorkerState::Queued => "queued",
            WorkerState::Running => "running",
            WorkerState::Completed => "completed",
            WorkerState::Failed => "failed",
            WorkerState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerState::*;

    #[test]
    fn only_lifecycle_edges_are_allowed() {
        let all = [Pending, Queued, Running, Completed, Failed, Stopped];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            [
                (Pending, Queued),
                (Pending, Running),
                (Pending, Stopped),
                (Queued, Running),
                (Queued, Stopped),
                (Running, Completed),
                (Running, Failed),
                (Running, Stopped)
            ]
        );
        assert!(Pending.is_active() && Queued.is_active() && Running.is_active());
        assert!(Completed.is_terminal() && Failed.is_terminal() && Stopped.is_terminal());
    }
}

//! [`ColonyError`]: why a colony refused a request.

#[cfg(feature = "nats")]
use crate::cluster::ClusterError;
use crate::journal::JournalError;
use crate::worker::WorkerError;

/// A request to the colony was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ColonyError {
    /// `run_parallel` was given more tasks than `max_batch`; none of them was started.
    #[error("colony '{colony}': a batch of {size} tasks is over the limit of {cap}")]
    BatchTooLarge {
        /// The colony's id.
        colony: String,
        /// How many tasks the batch held.
        size: usize,
        /// The colony's `max_batch`.
        cap: usize,
    },
    /// A new worker was asked of a colony that [`Colony::stop_all`](super::Colony::stop_all) has ended.
    #[error("colony '{colony}' is stopped")]
    Stopped {
        /// The colony's id.
        colony: String,
    },
    /// No worker with this id is in the colony (or, on resume, in its journal).
    #[error("colony '{colony}' has no worker '{worker}'")]
    UnknownWorker {
        /// The colony's id.
        colony: String,
        /// The worker id asked for.
        worker: String,
    },
    /// A worker's run cannot be replayed or forked: it was not recorded, or not as asked.
    #[error("colony '{colony}': cannot {action} worker '{worker}': {reason}")]
    NotReplayable {
        /// The colony's id.
        colony: String,
        /// The recorded worker.
        worker: String,
        /// `replay` or `fork`.
        action: &'static str,
        /// Why not.
        reason: String,
    },
    /// No batch with this id is in the colony's journal.
    #[error("colony '{colony}' has no batch '{batch}' in its journal")]
    UnknownBatch {
        /// The colony's id.
        colony: String,
        /// The batch id asked for.
        batch: String,
    },
    /// A batch cannot be resumed while some of its workers still run (in a process that
    /// is alive: a dead one's are `interrupted`).
    #[error(
        "colony '{colony}': batch '{batch}' has {running} worker(s) still running in a live process; resume it once they have ended"
    )]
    BatchRunning {
        /// The colony's id.
        colony: String,
        /// The batch id.
        batch: String,
        /// How many of its workers are still active.
        running: usize,
    },
    /// The colony's home folder (or its `workers` folder) could not be created.
    #[error("colony '{colony}': cannot create its home {}: {source}", path.display())]
    Home {
        /// The colony's id.
        colony: String,
        /// The home folder.
        path: std::path::PathBuf,
        /// The I/O error from creating it.
        #[source]
        source: std::io::Error,
    },
    /// [`Colony::open`](super::Colony::open) was called with a config naming a NATS server.
    #[error("colony '{colony}' uses NATS at {url}: open it with Colony::connect")]
    NeedsConnect {
        /// The colony's id.
        colony: String,
        /// The NATS address in its config.
        url: String,
    },
    /// Its config names a NATS server, but Colony was built without the `nats` feature.
    #[error("colony '{colony}' uses NATS at {url}, but this build has no `nats` feature")]
    NoNats {
        /// The colony's id.
        colony: String,
        /// The NATS server its config names.
        url: String,
    },
    /// Opened outside a tokio runtime: a colony runs its dispatcher and heartbeat on it.
    #[error("colony '{colony}' must be opened within a tokio runtime")]
    NoRuntime {
        /// The colony's id.
        colony: String,
    },
    #[cfg(feature = "nats")]
    /// A NATS operation failed (colonies opened with [`Colony::connect`](super::Colony::connect) only).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The colony's journal could not be opened, read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A worker refused a request (creating, seeding, starting or injecting).
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

//! [`WorkerError`]: why a worker refused a request.

use super::WorkerState;
use crate::error::StorageError;
use crate::sandbox::OverBudget;

/// A request to a [`Worker`](crate::Worker) was refused. The worker is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker specification is invalid, or `start` was called outside a tokio
    /// runtime.
    #[error("worker '{worker}': invalid specification: {reason}")]
    InvalidSpec {
        /// The worker's id.
        worker: String,
        /// What is wrong with the specification.
        reason: String,
    },
    /// The operation needs a state the worker is not in.
    #[error("worker '{worker}': cannot {action} while {state}")]
    WrongState {
        /// The worker's id.
        worker: String,
        /// What was asked, e.g. `start` or `inject a message`.
        action: &'static str,
        /// The state the worker was in when asked.
        state: WorkerState,
    },
    /// `seed_conversation` needs an explicit storage folder.
    #[error(
        "worker '{worker}': seed_conversation needs an explicit storage path (the working directory is never used)"
    )]
    NoStoragePath {
        /// The worker's id.
        worker: String,
    },
    /// An injected message is larger than the limit.
    #[error("worker '{worker}': message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The worker's id.
        worker: String,
        /// The message's length in bytes.
        size: usize,
        /// The plugin's `max_message_bytes` limit.
        limit: usize,
    },
    /// The worker's inbox already holds as many messages as it may; retry once the
    /// worker has taken some.
    #[error("worker '{worker}': inbox full ({capacity} messages waiting)")]
    InboxFull {
        /// The worker's id.
        worker: String,
        /// The plugin's `inbox_capacity` limit, in messages.
        capacity: usize,
    },
    /// The messages waiting in the worker's inbox hold its whole host memory budget.
    #[error("worker '{worker}': inbox full: {source}")]
    InboxOverBudget {
        /// The worker's id.
        worker: String,
        /// The budget the message would have exceeded.
        #[source]
        source: OverBudget,
    },
    /// The worker's storage folder could not be written or read.
    #[error("worker '{worker}': storage: {source}")]
    Storage {
        /// The worker's id.
        worker: String,
        /// The file that failed and why.
        #[source]
        source: StorageError,
    },
}

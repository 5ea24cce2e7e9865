//! [`EventLog`]: where a worker's events are kept.
//!
//! Why a trait: a lone worker keeps its events in its folder's `events.jsonl`, but a
//! colony of thousands of short workers cannot afford a file (and a folder) each — its
//! journal keeps them, written in the same batches as their states and reports.

/// Keeps the events of workers, one JSON line each, in the order they are given.
pub trait EventLog: Send + Sync {
    /// Keeps `line` (one event as JSON, without its newline) of worker `worker`. Must
    /// not block: called as the worker publishes. Owned, so a log that queues it need
    /// not copy it.
    fn append(&self, worker: &str, line: Vec<u8>);
}

//! Every tunable limit and timeout of the host, declared in one place with its unit,
//! its default and the reason for that default.
//!
//! A [`Limits`] value is handed to [`Runtime::new`](crate::Runtime::new) and applies to
//! every worker of that runtime. Defaults are chosen so that a hostile or buggy guest
//! cannot exhaust the host, while an honest agent never notices them.

use std::time::Duration;

/// Limits applied to every worker of a [`Runtime`](crate::Runtime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory one instance may grow to, all of its memories together.
    /// Default 64 MiB: an agent loop holds a conversation and some JSON, not data sets.
    pub memory_bytes: usize,
    /// Elements one table may hold. Default 100,000: far above what compilers emit for
    /// indirect calls, small enough that a hostile table costs at most a few MiB.
    pub table_elements: usize,
    /// Core instances, tables and memories one component may create. Default 32 each:
    /// a Rust guest uses about 3 instances, a JavaScript or Python one about 10.
    pub instances: usize,
    /// See [`Limits::instances`].
    pub tables: usize,
    /// See [`Limits::instances`].
    pub memories: usize,
    /// Period of the engine's epoch ticker. Default 1 ms: the granularity of stop and of
    /// CPU slicing; one atomic increment per tick costs nothing measurable.
    pub epoch_tick: Duration,
    /// Ticks a guest may run before it yields to the async runtime, so a busy guest
    /// cannot starve other workers of a tokio thread. Default 2 (≈ 2 ms).
    pub cpu_slice_ticks: u64,
    /// How long [`Worker::stop`](crate::Worker::stop) waits for the worker's task to wind
    /// down before it aborts it. Default 10 s, as in the reference; in practice a stop
    /// takes about one epoch tick.
    pub stop_timeout: Duration,
    /// Longest wait the guest may ask of `inbox.wait`. Default 10 min: long enough for a
    /// chat user, short enough that a forgotten wait does not pin a worker forever.
    pub max_inbox_wait: Duration,
    /// Messages that may be queued for one worker and not yet delivered. Default 4,096:
    /// beyond that the injector gets [`WorkerError::InboxFull`](crate::WorkerError).
    pub inbox_capacity: usize,
    /// Bytes of one injected message. Default 1 MiB.
    pub max_message_bytes: usize,
    /// Bytes of a report's summary. Default 16 KiB: a summary is read by a model or a
    /// person; details belong in `data`.
    pub max_report_summary_bytes: usize,
    /// Bytes of a report's data (JSON text). Default 1 MiB.
    pub max_report_data_bytes: usize,
    /// Bytes of a `run` or `on-message` output (JSON text). Default 1 MiB.
    pub max_output_bytes: usize,
    /// Bytes of an emitted event's data (JSON text). Default 64 KiB.
    pub max_event_data_bytes: usize,
    /// Bytes of one log line; longer lines are truncated. Default 4 KiB.
    pub max_log_line_bytes: usize,
    /// Bytes of one conversation part appended by the guest. Default 1 MiB.
    pub max_part_bytes: usize,
    /// Bytes of the guest's stderr kept for crash reports (a Rust panic message is
    /// written there). Default 16 KiB.
    pub stderr_capture_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        const KIB: usize = 1024;
        const MIB: usize = 1024 * KIB;
        Self {
            memory_bytes: 64 * MIB,
            table_elements: 100_000,
            instances: 32,
            tables: 32,
            memories: 32,
            epoch_tick: Duration::from_millis(1),
            cpu_slice_ticks: 2,
            stop_timeout: Duration::from_secs(10),
            max_inbox_wait: Duration::from_secs(600),
            inbox_capacity: 4096,
            max_message_bytes: MIB,
            max_report_summary_bytes: 16 * KIB,
            max_report_data_bytes: MIB,
            max_output_bytes: MIB,
            max_event_data_bytes: 64 * KIB,
            max_log_line_bytes: 4 * KIB,
            max_part_bytes: MIB,
            stderr_capture_bytes: 16 * KIB,
        }
    }
}

/// Formats a byte count for error messages: `64 MiB`, `16 KiB`, `100 bytes`.
pub(crate) fn human_bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_the_largest_exact_unit() {
        assert_eq!(human_bytes(64 * 1024 * 1024), "64 MiB");
        assert_eq!(human_bytes(16 * 1024), "16 KiB");
        assert_eq!(human_bytes(1500), "1500 bytes");
    }
}

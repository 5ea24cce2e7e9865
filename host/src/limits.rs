//! Every tunable limit and timeout of the host, declared in one place with its unit,
//! its default and the reason for that default.
//!
//! The host-wide limits live in [`RuntimeConfig::limits`](crate::RuntimeConfig); a
//! plugin's manifest may override any of them in its `[limits]` table (same field names;
//! durations as text such as `"30s"` or `"10min"`). Defaults are chosen so that a
//! hostile or buggy guest cannot exhaust the host, while an honest agent never notices
//! them. Engine-wide settings (epoch tick, pooling) are in
//! [`RuntimeConfig`](crate::RuntimeConfig).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits applied to each worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Bytes of linear memory one instance may hold, all of its memories together.
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
    /// Epoch ticks a guest may run before it yields to the async runtime, so a busy
    /// guest cannot starve other workers of a tokio thread. Default 2 (≈ 2 ms).
    pub cpu_slice_ticks: u64,
    /// Wall-clock time one `run` may take, host calls included. Default 1 h: the
    /// reference's largest hard timeout; orchestration usually stops workers sooner.
    #[serde(with = "humantime_serde")]
    pub run_timeout: Duration,
    /// Wall-clock time one persistent turn (`on-message`) may take. Default 10 min.
    #[serde(with = "humantime_serde")]
    pub turn_timeout: Duration,
    /// Time the host may spend compiling a plugin's component. Default 2 min: a 20 MB
    /// JavaScript or Python component compiles in ~10 s here.
    #[serde(with = "humantime_serde")]
    pub compile_timeout: Duration,
    /// How long [`Worker::stop`](crate::Worker::stop) waits for the worker's task to wind
    /// down before it aborts it. Default 10 s, as in the reference; in practice a stop
    /// takes about one epoch tick.
    #[serde(with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// Longest wait the guest may ask of `inbox.wait`. Default 10 min: long enough for a
    /// chat user, short enough that a forgotten wait does not pin a worker forever.
    #[serde(with = "humantime_serde")]
    pub max_inbox_wait: Duration,
    /// Messages that may be queued for one worker and not yet delivered. Default 4,096:
    /// beyond that the injector gets [`WorkerError::InboxFull`](crate::WorkerError). Their
    /// bytes count against [`Limits::host_memory_bytes`] too.
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
    /// Bytes of stdout and stderr together that become `WORKER_LOG` events over a
    /// worker's life; the rest is discarded (one log line says so). Default 1 MiB.
    pub max_output_log_bytes: usize,
    /// Bytes the host may hold in its own memory for one worker at once: messages queued
    /// in its inbox, the conversation page, tool result or model answer being handed to
    /// it, an HTTP body or model stream being read for it. Default 16 MiB: a quarter of
    /// the default guest memory, far above one page of conversation or one answer. Past
    /// it, the host call fails with an error the guest sees. SECURITY.md adds it up with
    /// the other bounds into the worst case one worker costs.
    pub host_memory_bytes: usize,
    /// Bytes the host may write to disk over one worker's life on the guest's behalf:
    /// conversation parts, and files written through tools or through WASI (into `/data`
    /// or a read-write grant). Every write counts, so its folder never holds more.
    /// Default 64 MiB: an agent's conversation and notes are megabytes; a plugin cannot
    /// fill a disk within its run timeout.
    pub disk_bytes: u64,
    /// Bytes of a worker's events the host may append to its `events.jsonl`: its own
    /// events and logs, the model's streamed text, its turns. Past it they are still
    /// published, no longer stored (one line says so); its lifecycle events and report
    /// are always stored. Default 16 MiB: tens of thousands of events, and kept apart
    /// from `disk_bytes` so a chatty model cannot spend the guest's own quota.
    pub event_log_bytes: u64,
    /// Files, directory listings and sockets one guest may hold open at once (each is a
    /// host file descriptor). Default 64: an agent rarely needs more than a handful, and
    /// a thousand workers then stay far below a process's usual descriptor limit.
    pub open_handles: usize,
    /// WASI resources — files, streams, pollables, sockets, lookups — one guest may hold
    /// at once. Each costs the host a table entry of a few hundred bytes; a guest asking
    /// for more is ended (wasmtime-wasi traps on a full table). Default 16,384: a
    /// JavaScript or Python runtime holds tens.
    pub resource_entries: usize,
    /// Model tokens (input + output, summed over calls) one worker may use; past it, model
    /// calls fail with `budget-exhausted`. Default 500,000: a long agent run, and a cap on
    /// what a runaway loop can cost. A task may set its own (`WorkerSpec::token_budget`).
    pub token_budget: u64,
    /// Tool calls one worker may make. Default 200 (the reference's 50 iterations × 4).
    pub tool_call_budget: u32,
    /// Time one model call may take, retries included. Default 2 min.
    #[serde(with = "humantime_serde")]
    pub llm_timeout: Duration,
    /// Time one tool call may take. Default 60 s, as the reference's tool timeout.
    #[serde(with = "humantime_serde")]
    pub tool_timeout: Duration,
    /// Events (emits, log lines, reports) a guest may produce per second, sustained; a
    /// burst of as many is allowed. Default 1,000: far above any agent's progress rate,
    /// low enough that a flooding guest is ended before it floods its subscribers.
    pub max_events_per_second: u32,
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
            cpu_slice_ticks: 2,
            run_timeout: Duration::from_secs(3600),
            turn_timeout: Duration::from_secs(600),
            compile_timeout: Duration::from_secs(120),
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
            max_output_log_bytes: MIB,
            host_memory_bytes: 16 * MIB,
            disk_bytes: 64 * MIB as u64,
            event_log_bytes: 16 * MIB as u64,
            open_handles: 64,
            resource_entries: 16_384,
            max_events_per_second: 1000,
            token_budget: 500_000,
            tool_call_budget: 200,
            llm_timeout: Duration::from_secs(120),
            tool_timeout: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// These limits with the fields present in `overrides` (a TOML table with `Limits`
    /// field names) replaced. Unknown fields and wrong types are errors naming the field.
    pub fn overlay(&self, overrides: &toml::Table) -> Result<Limits, String> {
        if overrides.is_empty() {
            return Ok(self.clone());
        }
        let mut table = toml::Table::try_from(self).map_err(|e| e.to_string())?;
        for (key, value) in overrides {
            table.insert(key.clone(), value.clone());
        }
        Limits::deserialize(table).map_err(|e| e.message().to_owned())
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
    fn overlay_replaces_only_the_given_fields() {
        let base = Limits::default();
        let table: toml::Table =
            toml::from_str("memory_bytes = 1024\nrun_timeout = \"30s\"").unwrap();
        let limits = base.overlay(&table).unwrap();
        assert_eq!(limits.memory_bytes, 1024);
        assert_eq!(limits.run_timeout, Duration::from_secs(30));
        assert_eq!(limits.turn_timeout, base.turn_timeout);
        let typo: toml::Table = toml::from_str("memroy_bytes = 1").unwrap();
        assert!(
            base.overlay(&typo)
                .unwrap_err()
                .contains("unknown field `memroy_bytes`")
        );
        let wrong: toml::Table = toml::from_str("run_timeout = 5").unwrap();
        assert!(base.overlay(&wrong).is_err());
    }

    #[test]
    fn human_bytes_picks_the_largest_exact_unit() {
        assert_eq!(human_bytes(64 * 1024 * 1024), "64 MiB");
        assert_eq!(human_bytes(16 * 1024), "16 KiB");
        assert_eq!(human_bytes(1500), "1500 bytes");
    }
}

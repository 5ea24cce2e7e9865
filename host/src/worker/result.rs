//! A worker's result and the report precedence of the reference framework.
//!
//! 1. An explicit report (the guest called `report-to-parent`; the last call wins) is used
//!    verbatim for status, summary and data; output, error and tokens still come from
//!    the run. An empty summary becomes "(worker returned {status} with no summary)".
//! 2. No explicit report, the run succeeded: status `success`, summary
//!    "Completed task '{task[:80]}' with {N} outputs.", data = the output. (Colony keeps
//!    the original reference's `success` here rather than the newer revision's
//!    `partial` + `no_explicit_report`: a guest that returns `ok` has done its task.)
//! 3. No explicit report, the run failed: status `failed`, summary
//!    "Task '{task[:80]}' failed: {error or 'unknown'}", data `{}`.
//!
//! A stop gives status `stopped`, error "Worker stopped by queen", summary "Worker was
//! cancelled before completion." — unless the guest had already filed a report: then that
//! report is kept and its data gains `"stopped_after_report": true`. A crash gives status
//! `failed`, summary "Worker crashed: {error}".

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::host_api::ReportStatus;
pub(crate) use crate::host_api::{ExplicitReport, into_object};

/// What a worker hands back when it ends (also written to `result.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerResult {
    /// The run's outputs (the JSON object `run` returned).
    pub output: Map<String, Value>,
    /// Why the run failed, if it did.
    pub error: Option<String>,
    /// Model tokens used (input + output).
    pub tokens_used: u64,
    /// Tool calls made (those the budget allowed).
    #[serde(default)]
    pub tool_calls_used: u32,
    /// Wall-clock time from start to end.
    pub duration_seconds: f64,
    /// The report's status.
    pub status: ReportStatus,
    /// The report's summary.
    pub summary: String,
    /// The report's data.
    pub data: Map<String, Value>,
}

/// What a worker has spent of its budgets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Model tokens (input + output).
    pub tokens: u64,
    /// Tool calls the budget allowed.
    pub tool_calls: u32,
}

/// How one `run` (or turn) ended, as far as the guest said.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunOutcome {
    pub output: Map<String, Value>,
    pub error: Option<String>,
}

impl RunOutcome {
    pub fn success(&self) -> bool {
        self.error.is_none()
    }

    pub fn output_keys(&self) -> Vec<&String> {
        self.output.keys().collect()
    }
}

fn task_head(task: &str) -> String {
    task.chars().take(80).collect()
}

/// Precedence rules 1–3 for a run that produced a result.
pub(crate) fn from_run(
    task: &str,
    run: &RunOutcome,
    explicit: Option<ExplicitReport>,
    duration_seconds: f64,
    usage: Usage,
) -> WorkerResult {
    let (status, summary, data) = match explicit {
        Some(report) => (report.status, report.summary, report.data),
        None if run.success() => (
            ReportStatus::Success,
            format!(
                "Completed task '{}' with {} outputs.",
                task_head(task),
                run.output.len()
            ),
            run.output.clone(),
        ),
        None => (
            ReportStatus::Failed,
            format!(
                "Task '{}' failed: {}",
                task_head(task),
                run.error.as_deref().unwrap_or("unknown")
            ),
            Map::new(),
        ),
    };
    WorkerResult {
        output: run.output.clone(),
        error: run.error.clone(),
        tokens_used: usage.tokens,
        tool_calls_used: usage.tool_calls,
        duration_seconds,
        status,
        summary,
        data,
    }
}

/// The result of a stopped worker.
pub(crate) fn stopped(
    explicit: Option<ExplicitReport>,
    duration_seconds: f64,
    usage: Usage,
) -> WorkerResult {
    let (status, summary, data) = match explicit {
        Some(mut report) => {
            report
                .data
                .insert("stopped_after_report".into(), Value::Bool(true));
            (report.status, report.summary, report.data)
        }
        None => (
            ReportStatus::Stopped,
            "Worker was cancelled before completion.".to_owned(),
            Map::new(),
        ),
    };
    WorkerResult {
        output: Map::new(),
        error: Some("Worker stopped by queen".to_owned()),
        tokens_used: usage.tokens,
        tool_calls_used: usage.tool_calls,
        duration_seconds,
        status,
        summary,
        data,
    }
}

/// The result of a worker that crashed (trap, instantiation failure, host error).
/// `result` with its report withheld for `reason` (it could not be made durable): the
/// outputs stay, the report says the worker failed and why.
pub(crate) fn withheld(result: WorkerResult, reason: String) -> WorkerResult {
    WorkerResult {
        summary: format!("Report withheld: {reason}"),
        error: Some(reason),
        status: ReportStatus::Failed,
        data: Map::new(),
        ..result
    }
}

pub(crate) fn crashed(message: String, duration_seconds: f64, usage: Usage) -> WorkerResult {
    WorkerResult {
        output: Map::new(),
        summary: format!("Worker crashed: {message}"),
        error: Some(message),
        tokens_used: usage.tokens,
        tool_calls_used: usage.tool_calls,
        duration_seconds,
        status: ReportStatus::Failed,
        data: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(output: Value) -> RunOutcome {
        RunOutcome {
            output: into_object(output),
            error: None,
        }
    }

    #[test]
    fn synthesised_success_counts_outputs_and_truncates_task() {
        let task = "x".repeat(100);
        let r = from_run(
            &task,
            &ok(json!({"a": 1, "b": 2})),
            None,
            1.5,
            Usage {
                tokens: 7,
                tool_calls: 2,
            },
        );
        assert_eq!(r.status, ReportStatus::Success);
        assert_eq!(
            r.summary,
            format!("Completed task '{}' with 2 outputs.", "x".repeat(80))
        );
        assert_eq!(Value::Object(r.data), json!({"a": 1, "b": 2}));
        assert_eq!(
            (r.duration_seconds, r.tokens_used, r.tool_calls_used),
            (1.5, 7, 2)
        );
    }

    #[test]
    fn synthesised_failure_uses_error_or_unknown() {
        let run = RunOutcome {
            output: Map::new(),
            error: Some("boom".into()),
        };
        let r = from_run("t", &run, None, 0.0, Usage::default());
        assert_eq!(r.status, ReportStatus::Failed);
        assert_eq!(r.summary, "Task 't' failed: boom");
        assert!(r.data.is_empty());
    }

    #[test]
    fn explicit_report_wins_but_output_and_error_come_from_run() {
        let explicit = ExplicitReport::new(ReportStatus::Partial, String::new(), Map::new());
        let r = from_run(
            "t",
            &ok(json!({"k": true})),
            Some(explicit),
            0.0,
            Usage::default(),
        );
        assert_eq!(r.status, ReportStatus::Partial);
        assert_eq!(r.summary, "(worker returned partial with no summary)");
        assert!(r.data.is_empty());
        assert_eq!(Value::Object(r.output), json!({"k": true}));
    }

    #[test]
    fn non_object_values_are_wrapped() {
        assert_eq!(
            Value::Object(into_object(json!([1]))),
            json!({"value": [1]})
        );
    }

    #[test]
    fn stop_keeps_an_explicit_report() {
        let explicit = ExplicitReport::new(ReportStatus::Success, "done".into(), Map::new());
        let r = stopped(Some(explicit), 0.0, Usage::default());
        assert_eq!(r.status, ReportStatus::Success);
        assert_eq!(r.data["stopped_after_report"], json!(true));
        let r = stopped(None, 0.0, Usage::default());
        assert_eq!(r.status, ReportStatus::Stopped);
        assert_eq!(r.error.as_deref(), Some("Worker stopped by queen"));
    }
}

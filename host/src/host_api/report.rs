//! `colony:agent/report`: the guest's explicit report to its parent, and the status a
//! report carries.

use super::{HostState, too_large};
use crate::bindings::ReportStatus as WitStatus;
use crate::bindings::colony::agent::report;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

impl report::Host for HostState {
    fn report_to_parent(
        &mut self,
        status: WitStatus,
        summary: String,
        data: String,
    ) -> wasmtime::Result<Result<(), String>> {
        self.charge_event()?;
        let limits = self.worker.limits();
        if summary.len() > limits.max_report_summary_bytes {
            return Ok(Err(too_large(
                "report summary",
                summary.len(),
                limits.max_report_summary_bytes,
            )));
        }
        if data.len() > limits.max_report_data_bytes {
            return Ok(Err(too_large(
                "report data",
                data.len(),
                limits.max_report_data_bytes,
            )));
        }
        let data = match self.parse_guest_json("report data", &data) {
            Ok(value) => into_object(value),
            Err(e) => return Ok(Err(e)),
        };
        let status = match status {
            WitStatus::Success => ReportStatus::Success,
            WitStatus::Partial => ReportStatus::Partial,
            WitStatus::Failed => ReportStatus::Failed,
        };
        self.worker
            .file_report(ExplicitReport::new(status, summary, data));
        Ok(Ok(()))
    }
}

/// The status in a worker's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    /// The task was done: reported so by the guest, or its run returned `ok`.
    Success,
    /// The guest reported the task as only partly done.
    Partial,
    /// The guest reported failure, or the run failed or crashed.
    Failed,
    /// Set by orchestration when a worker did not report in time.
    Timeout,
    /// The worker was stopped before it completed.
    Stopped,
}

impl ReportStatus {
    /// Lower-case name: `success`, `partial`, …
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Success => "success",
            ReportStatus::Partial => "partial",
            ReportStatus::Failed => "failed",
            ReportStatus::Timeout => "timeout",
            ReportStatus::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for ReportStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A report the guest filed with `report-to-parent`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExplicitReport {
    pub status: ReportStatus,
    pub summary: String,
    pub data: Map<String, Value>,
}

impl ExplicitReport {
    /// Applies the reference's normalisation: empty summary → a placeholder.
    pub fn new(status: ReportStatus, summary: String, data: Map<String, Value>) -> Self {
        let summary = if summary.is_empty() {
            format!("(worker returned {status} with no summary)")
        } else {
            summary
        };
        Self {
            status,
            summary,
            data,
        }
    }
}

/// A JSON value as an object: objects as they are, anything else as `{"value": v}`.
pub(crate) fn into_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => Map::from_iter([("value".to_owned(), other)]),
    }
}

//! [`WorkerReport`]: the structured report an overseer receives, as carried by a
//! `SUBAGENT_REPORT` event.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::worker::{ReportStatus, WorkerResult};

/// One worker's report to its overseer (the fields of a `SUBAGENT_REPORT` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub worker_id: String,
    pub colony_id: String,
    pub task: String,
    pub status: ReportStatus,
    pub summary: String,
    pub data: Map<String, Value>,
    pub error: Option<String>,
    pub duration_seconds: f64,
    pub tokens_used: u64,
}

impl WorkerReport {
    /// The report of a finished worker's result.
    pub fn from_result(
        worker_id: &str,
        colony_id: &str,
        task: &str,
        result: &WorkerResult,
    ) -> Self {
        Self {
            worker_id: worker_id.to_owned(),
            colony_id: colony_id.to_owned(),
            task: task.to_owned(),
            status: result.status,
            summary: result.summary.clone(),
            data: result.data.clone(),
            error: result.error.clone(),
            duration_seconds: result.duration_seconds,
            tokens_used: result.tokens_used,
        }
    }

    /// The report standing in for a worker that did not report in time.
    pub fn timed_out(
        worker_id: &str,
        colony_id: &str,
        task: &str,
        waited: std::time::Duration,
    ) -> Self {
        Self {
            worker_id: worker_id.to_owned(),
            colony_id: colony_id.to_owned(),
            task: task.to_owned(),
            status: ReportStatus::Timeout,
            summary: format!("No report within {:.1}s.", waited.as_secs_f64()),
            data: Map::new(),
            error: Some("timed out waiting for the worker's report".to_owned()),
            duration_seconds: waited.as_secs_f64(),
            tokens_used: 0,
        }
    }

    /// How the overseer hears of it: one "\[WORKER_REPORT\] …" turn.
    pub fn as_overseer_message(&self) -> String {
        format!(
            "[WORKER_REPORT] {}: {} — {}",
            self.worker_id, self.status, self.summary
        )
    }
}

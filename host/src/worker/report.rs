//! [`WorkerReport`]: the structured report an overseer receives — one type for the
//! payload of a `SUBAGENT_REPORT` event, the report a journal keeps and the report a
//! node sends back over NATS, so the three cannot drift apart.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{BatchPlace, ReportStatus, WorkerResult};
use crate::events::AgentEvent;

/// A `SUBAGENT_REPORT` whose payload is not a [`WorkerReport`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker '{worker}' published a report that cannot be read: {reason}")]
pub struct UnreadableReport {
    /// The worker the event came from.
    pub worker: String,
    /// What is wrong with its payload.
    pub reason: String,
}

/// One worker's report to its overseer (the fields of a `SUBAGENT_REPORT` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The reporting worker's id.
    pub worker_id: String,
    /// The colony it belongs to.
    pub colony_id: String,
    /// The task it was given, in natural language.
    pub task: String,
    /// How the task went: success, partial, failed, timeout or stopped.
    pub status: ReportStatus,
    /// A short account for the overseer, from the guest's report or derived from the run.
    pub summary: String,
    /// Structured results: the guest's report data, or else the run's output.
    pub data: Map<String, Value>,
    /// Why the run failed, was stopped or timed out, if it did.
    pub error: Option<String>,
    /// Wall-clock seconds from the worker's start to its end (or, on timeout, the wait).
    pub duration_seconds: f64,
    /// Model tokens the worker used (input + output); 0 when it timed out unreported.
    pub tokens_used: u64,
    /// The batch (fan-out) the task belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// The task's index in its batch, from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<u64>,
    /// How many tasks its batch has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
}

impl WorkerReport {
    /// The report of a finished worker's result; `batch`: the task's place in its batch,
    /// if it is one of a fan-out's.
    pub fn from_result(
        worker_id: &str,
        colony_id: &str,
        task: &str,
        result: &WorkerResult,
        batch: Option<&BatchPlace>,
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
            batch_id: batch.map(|b| b.id.clone()),
            batch_index: batch.map(|b| b.index),
            batch_size: batch.map(|b| b.size),
        }
    }

    /// The payload of the `SUBAGENT_REPORT` for `result`: the serialized
    /// [`WorkerReport::from_result`], with its `data` moved in rather than serialized
    /// again — the one deep part is copied once (every worker's end takes this path).
    pub(crate) fn event_data(
        worker_id: &str,
        colony_id: &str,
        task: &str,
        result: &WorkerResult,
        batch: Option<&BatchPlace>,
    ) -> Value {
        let mut report = Self::from_result(worker_id, colony_id, task, result, batch);
        let data = std::mem::take(&mut report.data);
        // A struct of strings and numbers always serializes.
        let mut payload = serde_json::to_value(report).unwrap_or_default();
        if let Value::Object(fields) = &mut payload {
            fields.insert("data".into(), Value::Object(data));
        }
        payload
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
            batch_id: None,
            batch_index: None,
            batch_size: None,
        }
    }

    /// The report `event` (a `SUBAGENT_REPORT`) carries. A payload that is not one —
    /// from a peer speaking another version, say — is an error naming the worker.
    pub fn from_event(event: &AgentEvent) -> Result<Self, UnreadableReport> {
        Self::deserialize(&event.data).map_err(|e| UnreadableReport {
            worker: event.worker_id.clone(),
            reason: e.to_string(),
        })
    }

    /// The report standing in for one that could not be read: the worker failed, as
    /// far as its overseer can tell, and the error says why.
    pub fn unreadable(colony_id: &str, task: &str, error: &UnreadableReport) -> Self {
        Self {
            worker_id: error.worker.clone(),
            colony_id: colony_id.to_owned(),
            task: task.to_owned(),
            status: ReportStatus::Failed,
            summary: format!("Report unreadable: {}", error.reason),
            data: Map::new(),
            error: Some(error.to_string()),
            duration_seconds: 0.0,
            tokens_used: 0,
            batch_id: None,
            batch_index: None,
            batch_size: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::result::{RunOutcome, Usage, crashed, from_run};
    use serde_json::json;

    /// The one-pass payload is exactly the serialized report, so a reader of either
    /// cannot tell them apart — with and without a batch, an error, odd durations.
    #[test]
    fn event_data_is_the_serialized_report() {
        let ran = RunOutcome {
            output: json!({"words": 3, "nested": {"a": [1, 2]}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            error: None,
        };
        let usage = Usage {
            tokens: 12,
            tool_calls: 1,
        };
        let results = [
            from_run("count these words", &ran, None, 0.25, usage),
            crashed("w: trapped".into(), 1e-9, Usage::default()),
            from_run("t", &ran, None, f64::NAN, Usage::default()),
        ];
        let batch = BatchPlace {
            id: "b-1".into(),
            index: 7,
            size: 10,
        };
        for result in &results {
            for place in [None, Some(&batch)] {
                let serialized =
                    serde_json::to_value(WorkerReport::from_result("w", "c", "t", result, place))
                        .expect("a report serializes");
                let built = WorkerReport::event_data("w", "c", "t", result, place);
                assert_eq!(built, serialized);
                assert_eq!(
                    serde_json::to_string(&built).ok(),
                    serde_json::to_string(&serialized).ok()
                );
            }
        }
    }
}

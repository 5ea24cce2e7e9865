//! The JSON the page reads: a worker as a row of the list, and as a whole.
//!
//! Guest text goes out as JSON strings and the page sets it as text, never as HTML; long
//! text is cut here so a row stays a row.

use colony::{MessagePart, ReportRecord, WorkerRecord};
use serde::Serialize;
use serde_json::Value;

/// How much of a task or summary a row shows.
const ROW_TEXT: usize = 300;
/// The most conversation parts and reports one worker view carries (the latest).
pub(super) const MAX_PARTS: usize = 200;

/// A worker as one row of the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct WorkerRow {
    id: String,
    colony_id: String,
    plugin: String,
    task: String,
    mode: String,
    state: String,
    created_at: String,
    started_at: Option<String>,
    ended_at: Option<String>,
    duration_seconds: Option<f64>,
    tokens_used: Option<u64>,
    token_budget: Option<u64>,
    tool_calls_used: Option<u32>,
    tool_call_budget: Option<u32>,
    report_status: Option<String>,
    summary: Option<String>,
    error: Option<String>,
    batch: Option<String>,
}

impl WorkerRow {
    pub(super) fn new(record: &WorkerRecord) -> Self {
        let result = record.result.as_ref();
        Self {
            id: record.id.clone(),
            colony_id: record.colony_id.clone(),
            plugin: record.plugin.clone(),
            task: cut(&record.task),
            mode: record.mode.as_str().to_owned(),
            state: record.state.as_str().to_owned(),
            created_at: record.created_at.to_rfc3339(),
            started_at: record.started_at.map(|t| t.to_rfc3339()),
            ended_at: record.ended_at.map(|t| t.to_rfc3339()),
            duration_seconds: result.map(|r| r.duration_seconds),
            tokens_used: result.map(|r| r.tokens_used),
            token_budget: record.token_budget,
            tool_calls_used: result.map(|r| r.tool_calls_used),
            tool_call_budget: record.tool_call_budget,
            report_status: result.map(|r| r.status.to_string()),
            summary: result.map(|r| cut(&r.summary)),
            error: result.and_then(|r| r.error.as_deref()).map(cut),
            batch: record
                .batch
                .as_ref()
                .map(|b| format!("{} #{}/{}", b.id, b.index, b.size)),
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }
}

/// One worker in full: its record, its latest reports and conversation.
#[derive(Debug, Serialize)]
pub(super) struct WorkerView {
    row: WorkerRow,
    task: String,
    input: Value,
    result: Option<Value>,
    reports: Vec<ReportRecord>,
    /// How many reports there are in all.
    report_count: usize,
}

impl WorkerView {
    pub(super) fn new(record: &WorkerRecord, mut reports: Vec<ReportRecord>) -> Self {
        let report_count = reports.len();
        reports.drain(..report_count.saturating_sub(MAX_PARTS));
        Self {
            row: WorkerRow::new(record),
            task: record.task.clone(),
            input: record.input.clone(),
            result: record
                .result
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok()),
            reports,
            report_count,
        }
    }
}

/// A worker's conversation: its latest parts, and how many there are in all.
#[derive(Debug, Serialize)]
pub(super) struct Conversation {
    parts: Vec<MessagePart>,
    total: usize,
}

impl Conversation {
    pub(super) fn new(mut parts: Vec<MessagePart>) -> Self {
        let total = parts.len();
        parts.drain(..total.saturating_sub(MAX_PARTS));
        Self { parts, total }
    }
}

/// The first [`ROW_TEXT`] characters of `text`, with `…` if there were more.
fn cut(text: &str) -> String {
    match text.char_indices().nth(ROW_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

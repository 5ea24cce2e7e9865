//! The JSON the page reads about one worker: its summary row, what it was asked, its
//! result, its latest reports and its conversation.
//!
//! Guest text goes out as JSON strings and the page sets it as text, never as HTML.
//! Everything a guest wrote is cut here ([`MAX_TEXT`] per field, [`MAX_REPORTS`] reports,
//! [`MAX_PARTS`] parts), so one view stays small whatever the guest returned.

use colony::{MessagePart, ReportRecord, WorkerRecord, WorkerSummary};
use serde::Serialize;
use serde_json::{Map, Value};

/// The most characters of one guest-written field (a JSON value is cut as its text).
pub(super) const MAX_TEXT: usize = 4096;
/// The most reports one worker view carries (the latest).
pub(super) const MAX_REPORTS: usize = 20;
/// The most conversation parts one worker view carries (the latest).
pub(super) const MAX_PARTS: usize = 200;

/// One worker in full.
#[derive(Debug, Serialize)]
pub(super) struct WorkerView {
    row: WorkerSummary,
    task: String,
    input: Value,
    result: Option<Value>,
    reports: Vec<ReportRecord>,
    /// How many reports there are in all.
    report_count: u64,
}

impl WorkerView {
    pub(super) fn new(
        row: WorkerSummary,
        record: &WorkerRecord,
        reports: (Vec<ReportRecord>, u64),
    ) -> Self {
        let (reports, report_count) = reports;
        Self {
            row,
            task: cut(&record.task),
            input: trimmed(&record.input),
            result: record
                .result
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok())
                .map(|r| fields_trimmed(&r)),
            reports: reports
                .into_iter()
                .map(|r| ReportRecord {
                    report: fields_trimmed(&r.report),
                    ..r
                })
                .collect(),
            report_count,
        }
    }
}

/// A worker's conversation: its latest parts, and how many there are in all.
#[derive(Debug, Serialize)]
pub(super) struct Conversation {
    parts: Vec<MessagePart>,
    total: u64,
}

impl Conversation {
    pub(super) fn new(parts: Vec<MessagePart>, total: u64) -> Self {
        let parts = parts
            .into_iter()
            .map(|p| MessagePart {
                content: cut(&p.content),
                tool_calls: p.tool_calls.as_ref().map(trimmed),
                ..p
            })
            .collect();
        Self { parts, total }
    }
}

/// The last `n` of `items`.
pub(super) fn tail<T>(mut items: Vec<T>, n: usize) -> Vec<T> {
    items.drain(..items.len().saturating_sub(n));
    items
}

/// `value` if its JSON text is short, else that text cut (a string).
fn trimmed(value: &Value) -> Value {
    let text = value.to_string();
    if text.len() <= MAX_TEXT {
        return value.clone();
    }
    Value::String(cut(&text))
}

/// An object with each field [`trimmed`] (strings cut).
fn fields_trimmed(value: &Value) -> Value {
    let Value::Object(fields) = value else {
        return trimmed(value);
    };
    let fields: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(cut(s)),
                other => trimmed(other),
            };
            (k.clone(), v)
        })
        .collect();
    Value::Object(fields)
}

/// The first [`MAX_TEXT`] characters of `text`, with `…` if there were more.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

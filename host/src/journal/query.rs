//! Reads for viewers of a colony home (`colony serve`): workers a page at a time, a
//! count per colony and state, and a cheap "has anything changed?".
//!
//! Why pages: a home holds tens of thousands of workers; a viewer shows a screenful and
//! asks again when the journal changes, so no read here returns more than a page.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::record::{batch, count, mode, state, stored, time, tool_call_budget};
use super::{Journal, JournalError, RecordState, ReportRecord};
use crate::conversation::MessagePart;
use crate::events::AgentEvent;
use crate::worker::{BatchPlace, WorkerMode};

/// The most workers one [`Journal::page`] returns.
pub const MAX_PAGE: u64 = 500;
/// The most characters of a task, summary or error a [`WorkerSummary`] keeps.
pub const SUMMARY_CHARS: u32 = 300;

/// A worker as a list shows it: its record without its input and output, its task,
/// summary and error cut at [`SUMMARY_CHARS`] (a `…` marks a cut). Read without parsing
/// what the guest wrote, so a page costs the same whatever the workers returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerSummary {
    /// The worker's id.
    pub id: String,
    /// Its colony.
    pub colony_id: String,
    /// Its plugin's name.
    pub plugin: String,
    /// Its task (cut).
    pub task: String,
    /// Ephemeral or persistent.
    pub mode: WorkerMode,
    /// Its state.
    pub state: RecordState,
    /// When it was journaled.
    pub created_at: DateTime<Utc>,
    /// When it started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its place in a batch.
    pub batch: Option<BatchPlace>,
    /// The task's own token budget, if it had one.
    pub token_budget: Option<u64>,
    /// The task's own tool-call budget, if it had one.
    pub tool_call_budget: Option<u32>,
    /// Seconds from start to end, once ended.
    pub duration_seconds: Option<f64>,
    /// Model tokens used, once ended.
    pub tokens_used: Option<u64>,
    /// Tool calls made, once ended.
    pub tool_calls_used: Option<u64>,
    /// Its report's status, once ended.
    pub report_status: Option<String>,
    /// Its report's summary (cut), once ended.
    pub summary: Option<String>,
    /// Why it failed or was stopped (cut), if it did.
    pub error: Option<String>,
}

/// `column` as SQL cut at [`SUMMARY_CHARS`] characters, `…` marking a cut.
fn cut_sql(column: &str) -> String {
    format!(
        "CASE WHEN length({column}) > {SUMMARY_CHARS} THEN substr({column}, 1, {SUMMARY_CHARS}) || '…' ELSE {column} END"
    )
}

/// The columns a [`WorkerSummary`] is read from.
fn summary_columns() -> String {
    format!(
        "id, colony_id, plugin, {task} AS task, mode, state, created_at, started_at, ended_at,
         batch_id, batch_index, batch_size, token_budget, tool_call_budget,
         json_extract(result, '$.duration_seconds') AS duration_seconds,
         json_extract(result, '$.tokens_used') AS tokens_used,
         json_extract(result, '$.tool_calls_used') AS tool_calls_used,
         json_extract(result, '$.status') AS report_status,
         {summary} AS summary, {error} AS error",
        task = cut_sql("task"),
        summary = cut_sql("json_extract(result, '$.summary')"),
        error = cut_sql("json_extract(result, '$.error')"),
    )
}

impl WorkerSummary {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let result_text = |name: &str| -> rusqlite::Result<Option<String>> {
            // A guest's output may put anything there: only text is shown.
            Ok(match row.get_ref(name)? {
                rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                _ => None,
            })
        };
        Ok(Self {
            id: row.get("id")?,
            colony_id: row.get("colony_id")?,
            plugin: row.get("plugin")?,
            task: row.get("task")?,
            mode: mode(row)?,
            state: state(row)?,
            created_at: time(Some(row.get("created_at")?)).unwrap_or_default(),
            started_at: time(row.get("started_at")?),
            ended_at: time(row.get("ended_at")?),
            batch: batch(row)?,
            token_budget: count(row, "token_budget")?,
            tool_call_budget: tool_call_budget(row)?,
            duration_seconds: row.get::<_, Option<f64>>("duration_seconds").ok().flatten(),
            tokens_used: count(row, "tokens_used").ok().flatten(),
            tool_calls_used: count(row, "tool_calls_used").ok().flatten(),
            report_status: result_text("report_status")?,
            summary: result_text("summary")?,
            error: result_text("error")?,
        })
    }
}

/// Which workers [`Journal::page`] returns: those matching, oldest first, from `offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerQuery {
    /// Only workers in this state.
    pub state: Option<RecordState>,
    /// Only workers of this colony.
    pub colony: Option<String>,
    /// How many matching workers to skip.
    pub offset: u64,
    /// How many to return (at most [`MAX_PAGE`]).
    pub limit: u64,
}

/// One page of workers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerPage {
    /// How many workers match the query in all.
    pub total: u64,
    /// The page's workers, oldest first.
    pub workers: Vec<WorkerSummary>,
}

/// A stretch of one worker's events (see [`Journal::worker_events`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EventWindow {
    /// The events, with their positions.
    pub events: Vec<(i64, AgentEvent)>,
    /// The position of the last row read (unparsable ones included): read on from here.
    pub read_to: i64,
    /// Whether the read stopped at its limit (more may follow at once).
    pub full: bool,
}

/// One colony of the home, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColonyCensus {
    /// The colony's id.
    pub colony_id: String,
    /// Its workers, by state name (`running`, `completed`, …); states with none absent.
    pub states: BTreeMap<String, u64>,
    /// When its first worker was journaled.
    pub first_created: Option<DateTime<Utc>>,
    /// When its latest worker was journaled.
    pub last_created: Option<DateTime<Utc>>,
}

impl Journal {
    /// The workers matching `query`, a page of them.
    pub fn page(&self, query: &WorkerQuery) -> Result<WorkerPage, JournalError> {
        let state = query.state.map(RecordState::as_str);
        let colony = query.colony.clone();
        let (offset, limit) = (stored(query.offset), stored(query.limit.min(MAX_PAGE)));
        self.read(move |c| {
            let filter = "(?1 IS NULL OR state = ?1) AND (?2 IS NULL OR colony_id = ?2)";
            let total: i64 = c
                .prepare_cached(&format!("SELECT COUNT(*) FROM workers WHERE {filter}"))?
                .query_row(params![state, colony], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM workers WHERE {filter} ORDER BY rowid LIMIT ?3 OFFSET ?4",
                summary_columns()
            ))?;
            let workers = stmt
                .query_map(
                    params![state, colony, limit, offset],
                    WorkerSummary::from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(WorkerPage {
                total: total.max(0) as u64,
                workers,
            })
        })
    }

    /// Every colony of the home with its workers counted by state, oldest colony first.
    pub fn census(&self) -> Result<Vec<ColonyCensus>, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT colony_id, state, COUNT(*), MIN(created_at), MAX(created_at)
                 FROM workers GROUP BY colony_id, state",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    time(r.get(3)?),
                    time(r.get(4)?),
                ))
            })?;
            let mut colonies: Vec<ColonyCensus> = Vec::new();
            for row in rows {
                let (colony_id, state, count, first, last) = row?;
                let index = match colonies.iter().position(|c| c.colony_id == colony_id) {
                    Some(index) => index,
                    None => {
                        colonies.push(ColonyCensus {
                            colony_id,
                            states: BTreeMap::new(),
                            first_created: first,
                            last_created: last,
                        });
                        colonies.len() - 1
                    }
                };
                let census = &mut colonies[index];
                census.states.insert(state, count.max(0) as u64);
                census.first_created = census.first_created.min(first).or(first);
                census.last_created = census.last_created.max(last);
            }
            colonies.sort_by_key(|c| c.first_created);
            Ok(colonies)
        })
    }

    /// A number that changes whenever another connection — another process, or this
    /// journal's own writer — commits to the journal (SQLite's `data_version`): poll it
    /// to know when to read again.
    pub fn changes(&self) -> Result<i64, JournalError> {
        self.peek(|c| c.query_row("PRAGMA data_version", [], |r| r.get(0)))
    }

    /// The latest `limit` reports of `worker`, oldest first, and how many it has in all.
    pub fn latest_reports(
        &self,
        worker: &str,
        limit: usize,
    ) -> Result<(Vec<ReportRecord>, u64), JournalError> {
        let worker = worker.to_owned();
        self.read(move |c| {
            let total: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM reports WHERE worker_id = ?1")?
                .query_row(params![worker], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(
                "SELECT seq, worker_id, at, report FROM reports WHERE worker_id = ?1
                 ORDER BY seq DESC LIMIT ?2",
            )?;
            let mut reports = stmt
                .query_map(
                    params![worker, stored(limit as u64)],
                    ReportRecord::from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            reports.reverse();
            Ok((reports, total.max(0) as u64))
        })
    }

    /// The latest `limit` conversation parts journaled for `worker`, in order, and how
    /// many there are in all.
    pub fn latest_parts(
        &self,
        worker: &str,
        limit: usize,
    ) -> Result<(Vec<MessagePart>, u64), JournalError> {
        let worker = worker.to_owned();
        self.read(move |c| {
            let total: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM parts WHERE worker_id = ?1")?
                .query_row(params![worker], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(
                "SELECT part FROM parts WHERE worker_id = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let mut parts: Vec<MessagePart> = stmt
                .query_map(params![worker, stored(limit as u64)], |r| {
                    r.get::<_, String>(0)
                })?
                .filter_map(|row| row.ok().and_then(|text| serde_json::from_str(&text).ok()))
                .collect();
            parts.reverse();
            Ok((parts, total.max(0) as u64))
        })
    }

    /// Worker `worker`'s events after position `after`, at most `limit` rows read, and
    /// where the read ended: rows that do not parse are skipped, never read again.
    pub fn worker_events(
        &self,
        worker: &str,
        after: i64,
        limit: usize,
    ) -> Result<EventWindow, JournalError> {
        let worker = worker.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, event FROM events WHERE worker_id = ?1 AND seq > ?2
                 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![worker, after, stored(limit as u64)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let full = rows.len() >= limit;
            let read_to = rows.last().map_or(after, |(seq, _)| *seq);
            let events = rows
                .into_iter()
                .filter_map(|(seq, text)| serde_json::from_str(&text).ok().map(|e| (seq, e)))
                .collect();
            Ok(EventWindow {
                events,
                read_to,
                full,
            })
        })
    }

    /// The position just before worker `worker`'s last `n` events (0 if it has fewer):
    /// where a viewer that shows only the tail starts.
    pub fn events_tail(&self, worker: &str, n: usize) -> Result<i64, JournalError> {
        let worker = worker.to_owned();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT seq FROM events WHERE worker_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2",
            )?
            .query_row(params![worker, stored(n as u64)], |r| r.get(0))
            .optional()
            .map(Option::unwrap_or_default)
        })
    }

    /// Worker `id` as a list shows it, if the journal knows it.
    pub fn summary(&self, id: &str) -> Result<Option<WorkerSummary>, JournalError> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {} FROM workers WHERE id = ?1",
                summary_columns()
            ))?
            .query_row(params![id], WorkerSummary::from_row)
            .optional()
        })
    }
}

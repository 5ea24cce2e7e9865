//! What the journal holds: workers with their states, and reports.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::worker::{BatchPlace, WorkerMode, WorkerResult, WorkerState};

/// A worker as the journal knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerRecord {
    /// The worker's id.
    pub id: String,
    /// The colony it belongs to.
    pub colony_id: String,
    /// The name of the plugin it runs.
    pub plugin: String,
    /// The component or manifest the plugin was loaded from (for `resume`).
    pub plugin_source: Option<String>,
    /// The task in natural language.
    pub task: String,
    /// The task's structured input (JSON `null` if the stored text does not parse).
    pub input: Value,
    /// Ephemeral or persistent.
    pub mode: WorkerMode,
    /// Its state, or `interrupted` for a worker whose process died while it was active.
    pub state: RecordState,
    /// The worker's storage folder, if it has one.
    pub storage: Option<PathBuf>,
    /// When the worker was first journaled.
    pub created_at: DateTime<Utc>,
    /// When it started running, once it has.
    pub started_at: Option<DateTime<Utc>>,
    /// When its terminal state was journaled, once it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// For an `interrupted` worker: its owning process's last heartbeat.
    pub interrupted_at: Option<DateTime<Utc>>,
    /// Its result, once it has ended.
    pub result: Option<WorkerResult>,
    /// Its place in a journaled fan-out, if it is one of a batch's workers.
    pub batch: Option<BatchPlace>,
    /// The task's own token budget, if it had one (a task run again keeps it).
    pub token_budget: Option<u64>,
    /// The task's own tool-call budget, if it had one (a task run again keeps it).
    pub tool_call_budget: Option<u32>,
    /// SHA-256 (hex) of the plugin's component, when known (a replay checks it).
    pub plugin_sha256: Option<String>,
    /// Whether it replays or forks another worker's recorded run.
    pub lineage: Option<Lineage>,
}

/// Where a worker's run came from, when it re-runs a recorded one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lineage {
    /// It replays worker `of`'s recording.
    Replay {
        /// The recorded worker.
        of: String,
    },
    /// It was forked from worker `from`: its steps up to `at` replayed, then live.
    Fork {
        /// The recorded worker.
        from: String,
        /// The last step served from the recording.
        at: u64,
    },
}

impl Lineage {
    /// The recorded worker it comes from.
    pub fn source(&self) -> &str {
        match self {
            Lineage::Replay { of } => of,
            Lineage::Fork { from, .. } => from,
        }
    }

    /// For a fork: the last step served from the recording.
    pub fn fork_step(&self) -> Option<u64> {
        match self {
            Lineage::Fork { at, .. } => Some(*at),
            Lineage::Replay { .. } => None,
        }
    }
}

/// A batch as the journal knows it: its size and every worker that ran one of its tasks
/// (a task run again after a crash has several), by index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRecord {
    /// The batch's id.
    pub id: String,
    /// The colony that fanned it out.
    pub colony_id: String,
    /// How many tasks it has.
    pub size: u64,
    /// Its workers, by index, then oldest first.
    pub workers: Vec<WorkerRecord>,
}

/// A worker's state as the journal keeps it: the states of [`WorkerState`], and
/// `Interrupted` for a worker whose process died while it was active. Stored and
/// serialized as the lower-case name (`completed`, `interrupted`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    /// Created, not started.
    Pending,
    /// Waiting for a concurrency slot.
    Queued,
    /// Running its task, or (persistent) serving turns.
    Running,
    /// The run finished with `ok`.
    Completed,
    /// The run failed, crashed or could not start.
    Failed,
    /// Stopped.
    Stopped,
    /// Its process ended while it was active: it will not report.
    Interrupted,
}

impl RecordState {
    const ALL: [RecordState; 7] = [
        RecordState::Pending,
        RecordState::Queued,
        RecordState::Running,
        RecordState::Completed,
        RecordState::Failed,
        RecordState::Stopped,
        RecordState::Interrupted,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Pending => "pending",
            RecordState::Queued => "queued",
            RecordState::Running => "running",
            RecordState::Completed => "completed",
            RecordState::Failed => "failed",
            RecordState::Stopped => "stopped",
            RecordState::Interrupted => "interrupted",
        }
    }

    /// The state stored as `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// How far along its life a worker in this state is. The journal only moves a
    /// worker forward (see [`Journal::set_state`](super::Journal::set_state)): `interrupted` may still become the
    /// end a late report tells of, an end never changes.
    pub(super) fn rank(self) -> u8 {
        match self {
            RecordState::Pending => 0,
            RecordState::Queued => 1,
            RecordState::Running => 2,
            RecordState::Interrupted => 3,
            RecordState::Completed | RecordState::Failed | RecordState::Stopped => 4,
        }
    }

    /// [`RecordState::rank`] in SQL, of the `state` column.
    pub(super) const RANK_SQL: &str = "CASE state WHEN 'pending' THEN 0 WHEN 'queued' THEN 1 \
        WHEN 'running' THEN 2 WHEN 'interrupted' THEN 3 ELSE 4 END";

    /// Completed, failed or stopped: the worker ended and reported.
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            RecordState::Completed | RecordState::Failed | RecordState::Stopped
        )
    }
}

impl From<WorkerState> for RecordState {
    fn from(state: WorkerState) -> Self {
        match state {
            WorkerState::Pending => RecordState::Pending,
            WorkerState::Queued => RecordState::Queued,
            WorkerState::Running => RecordState::Running,
            WorkerState::Completed => RecordState::Completed,
            WorkerState::Failed => RecordState::Failed,
            WorkerState::Stopped => RecordState::Stopped,
        }
    }
}

impl std::fmt::Display for RecordState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for RecordState {
    fn eq(&self, name: &str) -> bool {
        self.as_str() == name
    }
}

impl PartialEq<&str> for RecordState {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

/// One report as journaled (the SUBAGENT_REPORT event's data).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRecord {
    /// Position in the journal: increases with each report journaled.
    pub seq: i64,
    /// The reporting worker's id.
    pub worker_id: String,
    /// When the report was made (its event's timestamp).
    pub at: DateTime<Utc>,
    /// The report as JSON (a [`WorkerReport`](crate::WorkerReport)'s fields).
    pub report: Value,
}

impl ReportRecord {
    /// The report in a row of `seq, worker_id, at, report`.
    pub(super) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let report: String = r.get(3)?;
        Ok(ReportRecord {
            seq: r.get(0)?,
            worker_id: r.get(1)?,
            at: time(Some(r.get(2)?)).unwrap_or_default(),
            report: serde_json::from_str(&report).unwrap_or(Value::Null),
        })
    }
}

/// Column `column` of `row`, read by `parse`; a value it does not know is an error
/// naming it (a journal written by another version, say), never a silent default.
fn parsed<T>(
    row: &rusqlite::Row<'_>,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            row.as_ref().column_index(column).unwrap_or_default(),
            rusqlite::types::Type::Text,
            format!("unknown {column} '{text}'").into(),
        )
    })
}

pub(super) fn time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A count as SQLite stores it (an `i64`; counts past its range, which no colony reaches,
/// are stored as its largest).
pub(super) fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Column `mode`.
pub(super) fn mode(row: &rusqlite::Row<'_>) -> rusqlite::Result<WorkerMode> {
    parsed(row, "mode", |m| {
        [WorkerMode::Ephemeral, WorkerMode::Persistent]
            .into_iter()
            .find(|mode| mode.as_str() == m)
    })
}

/// Column `state`.
pub(super) fn state(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecordState> {
    parsed(row, "state", RecordState::parse)
}

/// Columns `batch_id`, `batch_index` and `batch_size`.
pub(super) fn batch(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<BatchPlace>> {
    Ok(match row.get::<_, Option<String>>("batch_id")? {
        Some(id) => Some(BatchPlace {
            id,
            index: count(row, "batch_index")?.unwrap_or(0),
            size: count(row, "batch_size")?.unwrap_or(0),
        }),
        None => None,
    })
}

/// Columns `replay_of`, `forked_from` and `forked_at`.
fn lineage(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Lineage>> {
    if let Some(of) = row.get::<_, Option<String>>("replay_of")? {
        return Ok(Some(Lineage::Replay { of }));
    }
    Ok(match row.get::<_, Option<String>>("forked_from")? {
        Some(from) => Some(Lineage::Fork {
            from,
            at: count(row, "forked_at")?.unwrap_or(0),
        }),
        None => None,
    })
}

/// Column `tool_call_budget`.
pub(super) fn tool_call_budget(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<u32>> {
    Ok(count(row, "tool_call_budget")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
}

/// A count stored in column `name` (negative values, which Colony never writes, read 0).
pub(super) fn count(row: &rusqlite::Row<'_>, name: &str) -> rusqlite::Result<Option<u64>> {
    Ok(row.get::<_, Option<i64>>(name)?.map(|n| n.max(0) as u64))
}

impl WorkerRecord {
    /// The record in a `workers` row.
    pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let input: String = row.get("input")?;
        let result: Option<String> = row.get("result")?;
        let created: String = row.get("created_at")?;
        Ok(Self {
            id: row.get("id")?,
            colony_id: row.get("colony_id")?,
            plugin: row.get("plugin")?,
            plugin_source: row.get("plugin_source")?,
            task: row.get("task")?,
            input: serde_json::from_str(&input).unwrap_or(Value::Null),
            mode: mode(row)?,
            state: state(row)?,
            storage: row.get::<_, Option<String>>("storage")?.map(PathBuf::from),
            created_at: time(Some(created)).unwrap_or_default(),
            started_at: time(row.get("started_at")?),
            ended_at: time(row.get("ended_at")?),
            interrupted_at: time(row.get("interrupted_at")?),
            batch: batch(row)?,
            token_budget: count(row, "token_budget")?,
            tool_call_budget: tool_call_budget(row)?,
            plugin_sha256: row.get("plugin_sha256")?,
            lineage: lineage(row)?,
            result: result.and_then(|r| serde_json::from_str(&r).ok()),
        })
    }
}

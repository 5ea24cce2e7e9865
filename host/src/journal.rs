//! The colony journal: worker states and reports in an embedded SQLite database
//! (`{home}/journal.db`), so they survive the process.
//!
//! Why SQLite: one file, no server, atomic transactions, and a write-ahead log that keeps
//! every committed row across a `kill -9`. The journal hears of a worker through the
//! [`WorkerObserver`] hook, synchronously: a state is journaled before `wait` returns and
//! a report before the bus delivers it. On open, workers the previous process left active
//! are marked `interrupted`, with the time of its last heartbeat (within a second of the
//! crash). Several processes may share a home: each journals under its own owner token
//! and heartbeat, and only workers whose owner has stopped beating are marked.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::events::AgentEvent;
use crate::worker::{WorkerInfo, WorkerMode, WorkerObserver, WorkerResult, WorkerState};

/// The journal could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("journal {}: {source}", path.display())]
pub struct JournalError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

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
    /// worker forward (see [`Journal::set_state`]): `interrupted` may still become the
    /// end a late report tells of, an end never changes.
    fn rank(self) -> u8 {
        match self {
            RecordState::Pending => 0,
            RecordState::Queued => 1,
            RecordState::Running => 2,
            RecordState::Interrupted => 3,
            RecordState::Completed | RecordState::Failed | RecordState::Stopped => 4,
        }
    }

    /// [`RecordState::rank`] in SQL, of the `state` column.
    const RANK_SQL: &str = "CASE state WHEN 'pending' THEN 0 WHEN 'queued' THEN 1 \
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

/// The journal of one colony home.
pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// This process's token: whose workers these are, whose heartbeat this is.
    owner: String,
}

/// How old an owner's heartbeat may be before its active workers count as interrupted.
pub const HEARTBEAT_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS workers (
        id TEXT PRIMARY KEY,
        colony_id TEXT NOT NULL,
        plugin TEXT NOT NULL,
        plugin_source TEXT,
        task TEXT NOT NULL,
        input TEXT NOT NULL,
        mode TEXT NOT NULL,
        state TEXT NOT NULL,
        storage TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT,
        interrupted_at TEXT,
        result TEXT,
        owner TEXT
    );
    CREATE TABLE IF NOT EXISTS reports (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        worker_id TEXT NOT NULL,
        at TEXT NOT NULL,
        report TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS heartbeat (
        owner TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS report_cursors (
        colony_id TEXT PRIMARY KEY,
        sequence INTEGER NOT NULL
    );
";

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

fn time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref().to_owned();
        let err = |source| JournalError {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            owner: format!("{}-{}", std::process::id(), Utc::now().timestamp_micros()),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn).map_err(|source| JournalError {
            path: self.path.clone(),
            source,
        })
    }

    /// Records a new worker (or a resumed one, replacing its row's state).
    pub fn add_worker(&self, record: &WorkerRecord) -> Result<(), JournalError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO workers (id, colony_id, plugin, plugin_source, task, input, mode, state, storage, created_at, owner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(id) DO UPDATE SET state = excluded.state, ended_at = NULL,
                     interrupted_at = NULL, result = NULL, owner = excluded.owner",
                params![
                    record.id,
                    record.colony_id,
                    record.plugin,
                    record.plugin_source,
                    record.task,
                    record.input.to_string(),
                    record.mode.as_str(),
                    record.state.as_str(),
                    record.storage.as_ref().map(|p| p.display().to_string()),
                    record.created_at.to_rfc3339(),
                    self.owner,
                ],
            )
            .map(drop)
        })
    }

    /// Records a worker's new state (and its result, once it has one).
    ///
    /// States only move forward, whatever order the news arrives in (a node's "running"
    /// may reach the colony after its report): an update to an earlier state, or from
    /// one end to another, changes nothing. Returns whether the row changed.
    pub fn set_state(&self, info: &WorkerInfo) -> Result<bool, JournalError> {
        self.advance(
            &info.id,
            info.state.into(),
            info.started_at,
            info.result.as_ref(),
        )
    }

    /// Records the end of a worker this process does not hold (one a previous process
    /// of its colony fanned out), from its report; as [`Journal::set_state`].
    pub fn set_ended(
        &self,
        id: &str,
        state: WorkerState,
        result: &WorkerResult,
    ) -> Result<bool, JournalError> {
        self.advance(id, state.into(), None, Some(result))
    }

    fn advance(
        &self,
        id: &str,
        state: RecordState,
        started_at: Option<DateTime<Utc>>,
        result: Option<&WorkerResult>,
    ) -> Result<bool, JournalError> {
        let now = Utc::now().to_rfc3339();
        let ended = state.has_ended().then_some(now);
        let result = result.and_then(|r| serde_json::to_string(r).ok());
        let rank = state.rank();
        let sql = format!(
            "UPDATE workers SET state = ?2, started_at = COALESCE(?3, started_at),
                 ended_at = COALESCE(?4, ended_at), result = COALESCE(?5, result)
             WHERE id = ?1 AND (({rank}) < ?6 OR (({rank}) = ?6 AND ?6 < 4))",
            rank = RecordState::RANK_SQL
        );
        self.with(|c| {
            c.prepare_cached(&sql)?
                .execute(params![
                    id,
                    state.as_str(),
                    started_at.map(|t| t.to_rfc3339()),
                    ended,
                    result,
                    rank,
                ])
                .map(|changed| changed > 0)
        })
    }

    /// Appends a report (a SUBAGENT_REPORT event).
    pub fn add_report(&self, event: &AgentEvent) -> Result<(), JournalError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO reports (worker_id, at, report) VALUES (?1, ?2, ?3)",
                params![
                    event.worker_id,
                    event.timestamp.to_rfc3339(),
                    event.data.to_string()
                ],
            )
            .map(drop)
        })
    }

    /// Notes that this process is alive (the time an `interrupted` worker is stamped with).
    pub fn heartbeat(&self) -> Result<(), JournalError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO heartbeat (owner, at) VALUES (?1, ?2)
                 ON CONFLICT(owner) DO UPDATE SET at = excluded.at",
                params![self.owner, Utc::now().to_rfc3339()],
            )
            .map(drop)
        })
    }

    /// Where colony `colony` has read the NATS report stream up to: the sequence of the
    /// last report it journaled there (or of the stream's end when it first connected).
    /// A colony that connects again reads on from here, not the stream's whole history.
    pub fn report_cursor(&self, colony: &str) -> Result<Option<u64>, JournalError> {
        self.with(|c| {
            c.query_row(
                "SELECT sequence FROM report_cursors WHERE colony_id = ?1",
                params![colony],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|seq| seq.map(|seq| seq.max(0) as u64))
        })
    }

    /// Moves colony `colony`'s report cursor forward to `sequence` (never back).
    #[cfg(feature = "nats")]
    pub(crate) fn advance_report_cursor(
        &self,
        colony: &str,
        sequence: u64,
    ) -> Result<(), JournalError> {
        self.write_report_cursor(colony, sequence, "MAX(sequence, excluded.sequence)")
    }

    /// Sets colony `colony`'s report cursor to `sequence`, also back (the stream was
    /// made anew, its sequences restarted).
    #[cfg(feature = "nats")]
    pub(crate) fn reset_report_cursor(
        &self,
        colony: &str,
        sequence: u64,
    ) -> Result<(), JournalError> {
        self.write_report_cursor(colony, sequence, "excluded.sequence")
    }

    #[cfg(feature = "nats")]
    fn write_report_cursor(
        &self,
        colony: &str,
        sequence: u64,
        update: &str,
    ) -> Result<(), JournalError> {
        let sequence = i64::try_from(sequence).unwrap_or(i64::MAX);
        let sql = format!(
            "INSERT INTO report_cursors (colony_id, sequence) VALUES (?1, ?2)
             ON CONFLICT(colony_id) DO UPDATE SET sequence = {update}"
        );
        self.with(|c| c.execute(&sql, params![colony, sequence]).map(drop))
    }

    /// Whether colony `colony` has workers the journal does not know the end of
    /// (pending, queued, running or interrupted).
    #[cfg(feature = "nats")]
    pub(crate) fn has_unended(&self, colony: &str) -> Result<bool, JournalError> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM workers WHERE colony_id = ?1
                     AND state IN ('pending', 'queued', 'running', 'interrupted'))",
                params![colony],
                |r| r.get::<_, bool>(0),
            )
        })
    }

    /// Marks as `interrupted` every active worker whose owning process has stopped
    /// beating (another process's, never this one's), stamped with that owner's last
    /// heartbeat. Returns their ids.
    pub fn recover(&self) -> Result<Vec<String>, JournalError> {
        let stale =
            Utc::now() - chrono::Duration::from_std(HEARTBEAT_STALE_AFTER).unwrap_or_default();
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT w.id, h.at FROM workers w LEFT JOIN heartbeat h ON h.owner = w.owner
                 WHERE w.state IN ('pending', 'queued', 'running')
                   AND (w.owner IS NULL OR w.owner != ?1)",
            )?;
            let rows = stmt
                .query_map(params![self.owner], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut interrupted = Vec::new();
            for (id, beat) in rows {
                let last = time(beat.clone());
                if last.is_some_and(|t| t > stale) {
                    continue;
                }
                let at = beat.unwrap_or_else(|| Utc::now().to_rfc3339());
                c.execute(
                    "UPDATE workers SET state = 'interrupted', interrupted_at = ?2 WHERE id = ?1",
                    params![id, at],
                )?;
                interrupted.push(id);
            }
            Ok(interrupted)
        })
    }

    fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<WorkerRecord> {
        let input: String = row.get("input")?;
        let result: Option<String> = row.get("result")?;
        let created: String = row.get("created_at")?;
        Ok(WorkerRecord {
            id: row.get("id")?,
            colony_id: row.get("colony_id")?,
            plugin: row.get("plugin")?,
            plugin_source: row.get("plugin_source")?,
            task: row.get("task")?,
            input: serde_json::from_str(&input).unwrap_or(Value::Null),
            mode: parsed(row, "mode", |m| {
                [WorkerMode::Ephemeral, WorkerMode::Persistent]
                    .into_iter()
                    .find(|mode| mode.as_str() == m)
            })?,
            state: parsed(row, "state", RecordState::parse)?,
            storage: row.get::<_, Option<String>>("storage")?.map(PathBuf::from),
            created_at: time(Some(created)).unwrap_or_default(),
            started_at: time(row.get("started_at")?),
            ended_at: time(row.get("ended_at")?),
            interrupted_at: time(row.get("interrupted_at")?),
            result: result.and_then(|r| serde_json::from_str(&r).ok()),
        })
    }

    /// Every worker, oldest first.
    pub fn workers(&self) -> Result<Vec<WorkerRecord>, JournalError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT * FROM workers ORDER BY created_at, rowid")?;
            let rows = stmt.query_map([], Self::record)?;
            rows.collect()
        })
    }

    /// One worker, if the journal knows it.
    pub fn worker(&self, id: &str) -> Result<Option<WorkerRecord>, JournalError> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM workers WHERE id = ?1",
                params![id],
                Self::record,
            )
            .optional()
        })
    }

    /// Every report, in the order they were journaled (optionally of one worker).
    pub fn reports(&self, worker: Option<&str>) -> Result<Vec<ReportRecord>, JournalError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT seq, worker_id, at, report FROM reports
                 WHERE ?1 IS NULL OR worker_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![worker], |r| {
                let report: String = r.get(3)?;
                Ok(ReportRecord {
                    seq: r.get(0)?,
                    worker_id: r.get(1)?,
                    at: time(Some(r.get(2)?)).unwrap_or_default(),
                    report: serde_json::from_str(&report).unwrap_or(Value::Null),
                })
            })?;
            rows.collect()
        })
    }
}

/// Journals a worker through the observer hook.
pub(crate) struct JournalObserver(pub Arc<Journal>);

impl WorkerObserver for JournalObserver {
    fn state_changed(&self, info: &WorkerInfo) {
        if let Err(e) = self.0.set_state(info) {
            tracing::error!("worker '{}': {e}", info.id);
        }
    }

    fn reporting(&self, report: &AgentEvent) -> Result<(), String> {
        self.0.add_report(report).map_err(|e| e.to_string())
    }
}

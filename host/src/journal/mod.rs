//! The colony journal: worker states and reports in an embedded SQLite database
//! (`{home}/journal.db`), so they survive the process.
//!
//! Why SQLite: one file, no server, atomic transactions, and a write-ahead log that keeps
//! every committed row across a `kill -9`. Writes go through one writer thread that
//! commits them in batches ([`writer`]): a colony's thousands of workers share a few
//! transactions a millisecond instead of each paying its own, and no SQLite I/O runs on
//! the async threads.
//!
//! What is promised, through the [`WorkerObserver`] hook: a report — with the worker's
//! end, in the same transaction — is committed before the bus delivers it and before
//! `wait` returns, so after a `kill -9` every report anyone heard of is in the journal.
//! States on the way (queued, running) are queued and committed with the next batch; a
//! read through [`Journal`] waits for the writes queued before it. On open, workers the
//! previous process left active are marked `interrupted`, with the time of its last
//! heartbeat (within a second of the crash). Several processes may share a home: each
//! journals under its own owner token and heartbeat, and only workers whose owner has
//! stopped beating are marked.
//!
//! A power loss is another matter: by default ([`JournalSync::Os`]) a commit is in the
//! operating system's hands, not yet on the disk, so the last batches before a power loss
//! may be lost (the database itself stays consistent). [`JournalSync::EveryBatch`] syncs
//! the write-ahead log at every batch commit, so nothing committed is lost.

mod advance;
mod control;
mod observer;
mod query;
mod record;
mod schema;
mod steps;
mod writer;

use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

pub use control::{CONTROL_MAX_AGE, CONTROL_POLL, Control, ControlAck};
pub use query::{
    ColonyCensus, EventWindow, MAX_PAGE, SUMMARY_CHARS, WorkerPage, WorkerQuery, WorkerSummary,
};
pub use record::{BatchRecord, Lineage, RecordState, ReportRecord, WorkerRecord};

use crate::conversation::MessagePart;
use crate::events::AgentEvent;
use crate::rfc3339;
use crate::worker::{WorkerInfo, WorkerResult, WorkerState};
use advance::Advance;
pub(crate) use observer::JournalObserver;
use record::{stored, time};
use schema::{SCHEMA, migrate};
use writer::Writer;

/// The journal could not be opened, read or written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("journal {}: {problem}", path.display())]
pub struct JournalError {
    path: PathBuf,
    #[source]
    problem: JournalProblem,
}

/// What went wrong with the journal.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JournalProblem {
    /// SQLite failed (the disk is full, the file is not a journal, …).
    #[error(transparent)]
    Sqlite(Arc<rusqlite::Error>),
    /// Its writer thread could not be started.
    #[error("cannot start its writer thread: {0}")]
    Thread(Arc<std::io::Error>),
    /// Its writer thread has stopped (the journal is being dropped).
    #[error("its writer has stopped")]
    Closed,
}

impl JournalError {
    fn new(path: &Path, problem: JournalProblem) -> Self {
        Self {
            path: path.to_owned(),
            problem,
        }
    }

    /// The same journal, failed by SQLite's `source`.
    fn with_source(&self, source: rusqlite::Error) -> Self {
        Self::new(&self.path, JournalProblem::Sqlite(Arc::new(source)))
    }

    /// What went wrong.
    pub fn problem(&self) -> &JournalProblem {
        &self.problem
    }
}

/// When the journal's commits reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JournalSync {
    /// Commits are written to the operating system, which writes them to the disk in
    /// its own time: a process crash (`kill -9`) loses nothing committed, a power loss
    /// may lose the last batches. The default.
    #[default]
    Os,
    /// The write-ahead log is synced (fsync) at every batch commit: a power loss loses
    /// nothing committed. Costs a disk flush per batch.
    EveryBatch,
}

/// The journal of one colony home.
pub struct Journal {
    path: PathBuf,
    /// Reads only; every write goes through `writer`.
    reader: Mutex<Connection>,
    writer: Writer,
    /// This process's token: whose workers these are, whose heartbeat this is.
    owner: String,
}

/// How old an owner's heartbeat may be before its active workers count as interrupted.
pub const HEARTBEAT_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

impl Journal {
    /// Opens (creating if needed) the journal at `path`, with [`JournalSync::Os`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_with(path, JournalSync::default())
    }

    /// Opens (creating if needed) the journal at `path`, syncing commits as `sync` says.
    pub fn open_with(path: impl AsRef<Path>, sync: JournalSync) -> Result<Self, JournalError> {
        let path = path.as_ref().to_owned();
        let failed = JournalError::new(&path, JournalProblem::Closed);
        let connect = || -> Result<Connection, JournalError> {
            let conn = Connection::open(&path).map_err(|e| failed.with_source(e))?;
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(|e| failed.with_source(e))?;
            Ok(conn)
        };
        let conn = connect()?;
        conn.execute_batch(SCHEMA)
            .and_then(|()| migrate(&conn))
            .map_err(|e| failed.with_source(e))?;
        let synchronous = match sync {
            JournalSync::Os => "NORMAL",
            JournalSync::EveryBatch => "FULL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous = {synchronous};"))
            .map_err(|e| failed.with_source(e))?;
        let reader = connect()?;
        let writer = Writer::start(conn, failed.clone())
            .map_err(|e| JournalError::new(&path, JournalProblem::Thread(Arc::new(e))))?;
        Ok(Self {
            path,
            reader: Mutex::new(reader),
            writer,
            owner: format!("{}-{}", std::process::id(), Utc::now().timestamp_micros()),
        })
    }

    /// Reads with `f`, once every write queued before is committed.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        self.writer.flush()?;
        self.peek(f)
    }

    /// Reads with `f` what is committed now, without waiting for this journal's own
    /// queued writes (for what other processes write).
    fn peek<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn).map_err(|source| {
            JournalError::new(&self.path, JournalProblem::Sqlite(Arc::new(source)))
        })
    }

    /// Waits until every write queued so far is committed.
    pub fn flush(&self) -> Result<(), JournalError> {
        self.writer.flush()
    }

    /// Records a new worker (or a resumed one, replacing its row's state). Queued:
    /// committed with the next batch, before any later write of this journal.
    pub fn add_worker(&self, record: &WorkerRecord) {
        let row = (
            record.id.clone(),
            record.colony_id.clone(),
            record.plugin.clone(),
            record.plugin_source.clone(),
            record.task.clone(),
            record.input.to_string(),
            record.mode.as_str(),
            record.state.as_str(),
            record.storage.as_ref().map(|p| p.display().to_string()),
            rfc3339::format(&record.created_at),
            self.owner.clone(),
            record.batch.as_ref().map(|b| b.id.clone()),
            record.batch.as_ref().map(|b| stored(b.index)),
            record.batch.as_ref().map(|b| stored(b.size)),
            record.token_budget.map(stored),
            record.tool_call_budget.map(u64::from).map(stored),
            record.plugin_sha256.clone(),
            record.lineage.as_ref().map(|l| l.source().to_owned()),
            record
                .lineage
                .as_ref()
                .and_then(Lineage::fork_step)
                .map(stored),
            match &record.lineage {
                Some(Lineage::Replay { of }) => Some(of.clone()),
                _ => None,
            },
        );
        let what = format!("journal worker '{}'", record.id);
        self.writer.queue(what, move |c| {
            c.prepare_cached(
                "INSERT INTO workers (id, colony_id, plugin, plugin_source, task, input, mode, state, storage, created_at, owner, batch_id, batch_index, batch_size, token_budget, tool_call_budget, plugin_sha256, forked_from, forked_at, replay_of)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
                 ON CONFLICT(id) DO UPDATE SET state = excluded.state, ended_at = NULL,
                     interrupted_at = NULL, result = NULL, owner = excluded.owner,
                     plugin_source = COALESCE(excluded.plugin_source, plugin_source),
                     plugin_sha256 = COALESCE(excluded.plugin_sha256, plugin_sha256)",
            )?
            .execute(params![
                row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10,
                row.11, row.12, row.13, row.14, row.15, row.16, row.17, row.18, row.19
            ])
            .map(drop)
        });
    }

    /// Records a new batch (a journaled fan-out) of `size` tasks. Queued, as
    /// [`Journal::add_worker`] (before its workers, if called first).
    pub fn add_batch(&self, id: &str, colony: &str, size: u64) {
        let row = (
            id.to_owned(),
            colony.to_owned(),
            stored(size),
            Utc::now().to_rfc3339(),
        );
        self.writer.queue(format!("journal batch '{id}'"), move |c| {
            c.prepare_cached(
                "INSERT OR IGNORE INTO batches (id, colony_id, size, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![row.0, row.1, row.2, row.3])
            .map(drop)
        });
    }

    /// Batch `id`, if the journal knows it, with its workers.
    pub fn batch(&self, id: &str) -> Result<Option<BatchRecord>, JournalError> {
        self.read(|c| {
            let Some((colony_id, size)) = c
                .query_row(
                    "SELECT colony_id, size FROM batches WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut stmt = c.prepare(
                "SELECT * FROM workers WHERE batch_id = ?1 ORDER BY batch_index, created_at, rowid",
            )?;
            let workers = stmt
                .query_map(params![id], WorkerRecord::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(BatchRecord {
                id: id.to_owned(),
                colony_id,
                size: size.max(0) as u64,
                workers,
            }))
        })
    }

    /// Records a worker's new state (and its result, once it has one). Queued, as
    /// [`Journal::add_worker`].
    ///
    /// States only move forward, whatever order the news arrives in (a node's "running"
    /// may reach the colony after its report): an update to an earlier state, or from
    /// one end to another, changes nothing.
    pub fn set_state(&self, info: &WorkerInfo) {
        let advance = Advance::new(&info.id, info.state, info.started_at, info.result.as_ref());
        self.writer
            .queue(format!("journal worker '{}'", info.id), move |c| {
                advance.apply(c).map(drop)
            });
    }

    /// Records the end of a worker this process does not hold (one a previous process
    /// of its colony fanned out), from its report, and the report, in one transaction;
    /// resolves once committed. As [`Journal::end_with_report`].
    pub fn set_ended(
        &self,
        id: &str,
        state: WorkerState,
        result: &WorkerResult,
        report: &AgentEvent,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        self.report(report, Some(Advance::new(id, state, None, Some(result))))
    }

    /// Journals a worker's end (`info`: its terminal state and result) with its report
    /// (a SUBAGENT_REPORT event) in one transaction; resolves once committed.
    pub fn end_with_report(
        &self,
        info: &WorkerInfo,
        report: &AgentEvent,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        let end = Advance::new(&info.id, info.state, info.started_at, info.result.as_ref());
        self.report(report, Some(end))
    }

    /// Appends a report (a SUBAGENT_REPORT event) of a worker that goes on running;
    /// resolves once committed.
    pub fn add_report(
        &self,
        report: &AgentEvent,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        self.report(report, None)
    }

    fn report(
        &self,
        report: &AgentEvent,
        end: Option<Advance>,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + use<> {
        let row = (
            report.worker_id.clone(),
            rfc3339::format(&report.timestamp),
            report.data.to_string(),
        );
        self.writer.commit(move |c| {
            c.prepare_cached("INSERT INTO reports (worker_id, at, report) VALUES (?1, ?2, ?3)")?
                .execute(params![row.0, row.1, row.2])?;
            if let Some(end) = end {
                end.apply(c)?;
            }
            Ok(())
        })
    }

    /// The events journaled after position `after` (0: all), of one worker or all, in the
    /// order they were journaled, at most `limit`; with the position of each.
    pub fn events(
        &self,
        worker: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, AgentEvent)>, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, event FROM events WHERE seq > ?1 AND (?2 IS NULL OR worker_id = ?2)
                 ORDER BY seq LIMIT ?3",
            )?;
            let limit = stored(limit as u64);
            let rows = stmt.query_map(params![after, worker, limit], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut events = Vec::new();
            for row in rows {
                let (seq, text) = row?;
                // A line that does not parse is skipped, not fatal: the rest is readable.
                if let Ok(event) = serde_json::from_str(&text) {
                    events.push((seq, event));
                }
            }
            Ok(events)
        })
    }

    /// The conversation parts journaled for `worker` (an ephemeral worker of a colony),
    /// in `seq` order.
    pub fn parts(&self, worker: &str) -> Result<Vec<MessagePart>, JournalError> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT part FROM parts WHERE worker_id = ?1 ORDER BY seq")?;
            let rows = stmt.query_map(params![worker], |r| r.get::<_, String>(0))?;
            let mut parts = Vec::new();
            for row in rows {
                if let Ok(part) = serde_json::from_str(&row?) {
                    parts.push(part);
                }
            }
            Ok(parts)
        })
    }

    /// Notes that this process is alive (the time an `interrupted` worker is stamped with).
    /// Queued.
    pub fn heartbeat(&self) {
        let (owner, at) = (self.owner.clone(), Utc::now().to_rfc3339());
        self.writer.queue("journal the heartbeat", move |c| {
            c.prepare_cached(
                "INSERT INTO heartbeat (owner, at) VALUES (?1, ?2)
                 ON CONFLICT(owner) DO UPDATE SET at = excluded.at",
            )?
            .execute(params![owner, at])
            .map(drop)
        });
    }

    /// Where colony `colony` has read the NATS report stream up to: the sequence of the
    /// last report it journaled there (or of the stream's end when it first connected).
    /// A colony that connects again reads on from here, not the stream's whole history.
    pub fn report_cursor(&self, colony: &str) -> Result<Option<u64>, JournalError> {
        self.read(|c| {
            c.query_row(
                "SELECT sequence FROM report_cursors WHERE colony_id = ?1",
                params![colony],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|seq| seq.map(|seq| seq.max(0) as u64))
        })
    }

    /// Moves colony `colony`'s report cursor forward to `sequence` (never back). Queued.
    #[cfg(feature = "nats")]
    pub(crate) fn advance_report_cursor(&self, colony: &str, sequence: u64) {
        self.write_report_cursor(colony, sequence, "MAX(sequence, excluded.sequence)")
    }

    /// Sets colony `colony`'s report cursor to `sequence`, also back (the stream was
    /// made anew, its sequences restarted). Queued.
    #[cfg(feature = "nats")]
    pub(crate) fn reset_report_cursor(&self, colony: &str, sequence: u64) {
        self.write_report_cursor(colony, sequence, "excluded.sequence")
    }

    #[cfg(feature = "nats")]
    fn write_report_cursor(&self, colony: &str, sequence: u64, update: &str) {
        let sequence = stored(sequence);
        let sql = format!(
            "INSERT INTO report_cursors (colony_id, sequence) VALUES (?1, ?2)
             ON CONFLICT(colony_id) DO UPDATE SET sequence = {update}"
        );
        let colony = colony.to_owned();
        self.writer.queue("journal the report cursor", move |c| {
            c.prepare_cached(&sql)?
                .execute(params![colony, sequence])
                .map(drop)
        });
    }

    /// Whether colony `colony` has workers the journal does not know the end of
    /// (pending, queued, running or interrupted).
    #[cfg(feature = "nats")]
    pub(crate) fn has_unended(&self, colony: &str) -> Result<bool, JournalError> {
        self.read(|c| {
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
        let owner = self.owner.clone();
        self.writer.commit_blocking(move |c| {
            let mut stmt = c.prepare(
                "SELECT w.id, h.at FROM workers w LEFT JOIN heartbeat h ON h.owner = w.owner
                 WHERE w.state IN ('pending', 'queued', 'running')
                   AND (w.owner IS NULL OR w.owner != ?1)",
            )?;
            let rows = stmt
                .query_map(params![owner], |r| {
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

    /// Every worker, oldest first.
    pub fn workers(&self) -> Result<Vec<WorkerRecord>, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT * FROM workers ORDER BY created_at, rowid")?;
            let rows = stmt.query_map([], WorkerRecord::from_row)?;
            rows.collect()
        })
    }

    /// One worker, if the journal knows it.
    pub fn worker(&self, id: &str) -> Result<Option<WorkerRecord>, JournalError> {
        self.read(|c| {
            c.query_row(
                "SELECT * FROM workers WHERE id = ?1",
                params![id],
                WorkerRecord::from_row,
            )
            .optional()
        })
    }

    /// Every report, in the order they were journaled (optionally of one worker).
    pub fn reports(&self, worker: Option<&str>) -> Result<Vec<ReportRecord>, JournalError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT seq, worker_id, at, report FROM reports
                 WHERE ?1 IS NULL OR worker_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![worker], ReportRecord::from_row)?;
            rows.collect()
        })
    }
}

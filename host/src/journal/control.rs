//! Controls: a request, from any process sharing the home (`colony serve`, say), to stop
//! or inject into a worker that another process runs — and that process's answer.
//!
//! Why through the journal: every process of a home already shares it, so a control
//! needs no socket, no port and no discovery, and it works for workers on NATS nodes
//! too (the colony that fanned them out forwards the stop). A control is a row in
//! `controls`; each open [`Colony`](crate::Colony) reads the rows added since it opened
//! (every [`CONTROL_POLL`]), the one holding the worker acts, and it answers with a row
//! in `control_acks`. A control nobody answers within [`CONTROL_MAX_AGE`] is void: a
//! process opened later never acts on it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::record::time;
use super::{HEARTBEAT_STALE_AFTER, Journal, JournalError};

/// How often an open colony looks for new controls.
pub const CONTROL_POLL: Duration = Duration::from_millis(250);
/// How long a control stays actionable; older ones are ignored, and pruned an hour on.
pub const CONTROL_MAX_AGE: Duration = Duration::from_secs(30);

/// What a control asks of the process holding a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Stop the worker (journaled `stopped`, with its report).
    Stop {
        /// The worker's id.
        worker: String,
    },
    /// Inject a message into the (running) worker.
    Inject {
        /// The worker's id.
        worker: String,
        /// The message.
        message: String,
    },
    /// Stop every worker of every colony open on the home (each colony ends).
    StopAll,
}

/// One process's answer to a control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlAck {
    /// The answering process's journal owner token.
    pub owner: String,
    /// Whether it did what was asked.
    pub ok: bool,
    /// What happened, in a few words (the worker's state after a stop, an error).
    pub outcome: String,
    /// When it answered.
    pub at: DateTime<Utc>,
}

impl Control {
    fn columns(&self) -> (&'static str, Option<&str>, Option<&str>) {
        match self {
            Control::Stop { worker } => ("stop", Some(worker), None),
            Control::Inject { worker, message } => ("inject", Some(worker), Some(message)),
            Control::StopAll => ("stop_all", None, None),
        }
    }

    fn from_columns(action: &str, worker: Option<String>, message: Option<String>) -> Option<Self> {
        match (action, worker, message) {
            ("stop", Some(worker), _) => Some(Control::Stop { worker }),
            ("inject", Some(worker), Some(message)) => Some(Control::Inject { worker, message }),
            ("stop_all", _, _) => Some(Control::StopAll),
            _ => None,
        }
    }
}

/// The workers a live process holds (`?1`: the oldest fresh heartbeat).
const HELD: &str = "FROM workers w JOIN heartbeat h ON h.owner = w.owner
     WHERE w.state IN ('pending', 'queued', 'running') AND h.at >= ?1";

fn cutoff(age: Duration) -> String {
    (Utc::now() - chrono::Duration::from_std(age).unwrap_or_default()).to_rfc3339()
}

impl Journal {
    /// Files `control` for the process holding its worker (or every process, for
    /// [`Control::StopAll`]); resolves with the control's id once committed. Answers
    /// arrive in [`Journal::control_acks`].
    pub async fn request_control(&self, control: &Control) -> Result<i64, JournalError> {
        let (action, worker, message) = control.columns();
        let row = (
            Utc::now().to_rfc3339(),
            action,
            worker.map(str::to_owned),
            message.map(str::to_owned),
            cutoff(Duration::from_secs(3600)),
        );
        self.writer
            .commit(move |c| {
                c.execute(
                    "DELETE FROM control_acks WHERE control IN (SELECT seq FROM controls WHERE at < ?1)",
                    params![row.4],
                )?;
                c.execute("DELETE FROM controls WHERE at < ?1", params![row.4])?;
                c.prepare_cached(
                    "INSERT INTO controls (at, action, worker_id, message) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![row.0, row.1, row.2, row.3])?;
                Ok(c.last_insert_rowid())
            })
            .await
    }

    /// The answers to control `id` so far.
    pub fn control_acks(&self, id: i64) -> Result<Vec<ControlAck>, JournalError> {
        self.peek(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT owner, ok, outcome, at FROM control_acks WHERE control = ?1 ORDER BY rowid",
            )?;
            let rows = stmt.query_map(params![id], |r| {
                Ok(ControlAck {
                    owner: r.get(0)?,
                    ok: r.get(1)?,
                    outcome: r.get(2)?,
                    at: time(Some(r.get(3)?)).unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
    }

    /// Whether a live process holds worker `id`: it is active (pending, queued or
    /// running) and its owner's heartbeat is fresh. Only such a worker can be controlled.
    pub fn is_held(&self, id: &str) -> Result<bool, JournalError> {
        let (id, fresh) = (id.to_owned(), cutoff(HEARTBEAT_STALE_AFTER));
        self.peek(move |c| {
            c.query_row(
                &format!("SELECT EXISTS (SELECT 1 {HELD} AND w.id = ?2)"),
                params![fresh, id],
                |r| r.get(0),
            )
        })
    }

    /// How many workers live processes hold (pending, queued or running, their owner's
    /// heartbeat fresh): what a [`Control::StopAll`] is waiting for.
    pub fn held_count(&self) -> Result<u64, JournalError> {
        let fresh = cutoff(HEARTBEAT_STALE_AFTER);
        self.peek(move |c| {
            c.query_row(&format!("SELECT COUNT(*) {HELD}"), params![fresh], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
        })
    }

    /// The id of the latest control (0: none): a colony acts only on later ones.
    pub(crate) fn last_control(&self) -> Result<i64, JournalError> {
        self.peek(|c| {
            c.query_row("SELECT COALESCE(MAX(seq), 0) FROM controls", [], |r| {
                r.get(0)
            })
        })
    }

    /// The controls filed after `after` that are still actionable, oldest first, with
    /// their ids.
    pub(crate) fn controls_after(&self, after: i64) -> Result<Vec<(i64, Control)>, JournalError> {
        self.peek(|c| read_controls(c, after, &cutoff(CONTROL_MAX_AGE)))
    }

    /// Answers control `id` on behalf of this process. Queued.
    pub(crate) fn acknowledge(&self, id: i64, ok: bool, outcome: String) {
        let row = (self.owner.clone(), Utc::now().to_rfc3339());
        self.writer.queue("journal a control's answer", move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO control_acks (control, owner, ok, outcome, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, row.0, ok, outcome, row.1])
            .map(drop)
        });
    }
}

fn read_controls(c: &Connection, after: i64, since: &str) -> rusqlite::Result<Vec<(i64, Control)>> {
    let mut stmt = c.prepare_cached(
        "SELECT seq, action, worker_id, message FROM controls
         WHERE seq > ?1 AND at >= ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![after, since], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    let mut controls = Vec::new();
    for row in rows {
        let (seq, action, worker, message) = row?;
        // An action this version does not know (a newer `colony serve`) is skipped.
        if let Some(control) = Control::from_columns(&action, worker, message) {
            controls.push((seq, control));
        }
    }
    Ok(controls)
}

//! Reads for viewers of a colony home (`colony serve`): workers a page at a time, a
//! count per colony and state, and a cheap "has anything changed?".
//!
//! Why pages: a home holds tens of thousands of workers; a viewer shows a screenful and
//! asks again when the journal changes, so no read here returns more than a page.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::record::{stored, time};
use super::{HEARTBEAT_STALE_AFTER, Journal, JournalError, RecordState, WorkerRecord};

/// The most workers one [`Journal::page`] returns.
pub const MAX_PAGE: u64 = 500;

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
    pub workers: Vec<WorkerRecord>,
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
                "SELECT * FROM workers WHERE {filter} ORDER BY rowid LIMIT ?3 OFFSET ?4"
            ))?;
            let workers = stmt
                .query_map(
                    params![state, colony, limit, offset],
                    WorkerRecord::from_row,
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

    /// Whether a live process holds worker `id`: it is active (pending, queued or
    /// running) and its owner's heartbeat is fresh. Only such a worker can be controlled.
    pub fn is_held(&self, id: &str) -> Result<bool, JournalError> {
        let fresh = (Utc::now()
            - chrono::Duration::from_std(HEARTBEAT_STALE_AFTER).unwrap_or_default())
        .to_rfc3339();
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM workers w JOIN heartbeat h ON h.owner = w.owner
                     WHERE w.id = ?1 AND w.state IN ('pending', 'queued', 'running')
                       AND h.at >= ?2)",
                params![id, fresh],
                |r| r.get(0),
            )
        })
    }
}

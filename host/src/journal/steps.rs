//! A worker's recording in the journal: table `steps`, one row per step (see
//! [`crate::replay`]).

use rusqlite::params;

use super::record::stored;
use super::{Journal, JournalError};
use crate::replay::{Recording, Step, StepKind, StepLog};

impl StepLog for Journal {
    fn append(&self, worker: &str, step: &Step) {
        let row = (
            worker.to_owned(),
            stored(step.index),
            step.kind.as_str(),
            step.request_hash.clone(),
            step.request.as_ref().map(|r| r.to_string()),
            step.answer.to_string(),
        );
        self.writer.queue("journal a recorded step", move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO steps (worker_id, idx, kind, request_hash, request, answer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![row.0, row.1, row.2, row.3, row.4, row.5])
            .map(drop)
        });
    }
}

impl Journal {
    /// Forgets worker `worker`'s recording (a resumed worker records its run anew).
    /// Queued, as [`Journal::add_worker`].
    pub fn clear_recording(&self, worker: &str) {
        let worker = worker.to_owned();
        self.writer.queue("forget a recording", move |c| {
            c.prepare_cached("DELETE FROM steps WHERE worker_id = ?1")?
                .execute(params![worker])
                .map(drop)
        });
    }

    /// Worker `worker`'s recording: every step it made, in order (none if it was not
    /// recorded). Steps of a kind this version does not know are left out.
    pub fn recording(&self, worker: &str) -> Result<Recording, JournalError> {
        let steps = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT idx, kind, request_hash, request, answer FROM steps
                 WHERE worker_id = ?1 ORDER BY idx",
            )?;
            let rows = stmt.query_map(params![worker], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let steps = steps
            .into_iter()
            .filter_map(|(index, kind, request_hash, request, answer)| {
                Some(Step {
                    index: index.max(0) as u64,
                    kind: StepKind::parse(&kind)?,
                    request_hash,
                    request: request.and_then(|r| serde_json::from_str(&r).ok()),
                    answer: serde_json::from_str(&answer).unwrap_or_default(),
                })
            })
            .collect();
        Ok(Recording {
            worker_id: worker.to_owned(),
            steps,
        })
    }
}

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
    /// How many steps worker `worker`'s recording has, and the bytes they take.
    pub fn recording_size(&self, worker: &str) -> Result<(u64, u64), JournalError> {
        self.read(|c| {
            c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(request_hash) + COALESCE(LENGTH(request), 0)
                     + LENGTH(answer) + 32), 0) FROM steps WHERE worker_id = ?1",
                params![worker],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?.max(0) as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )
        })
    }

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
    /// recorded). It ends before the first step that cannot be read (a kind this version
    /// does not know, a gap in the numbering), with a `cut` step in its place: served by
    /// position, anything after a hole would answer the wrong calls.
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
        let mut read = Vec::with_capacity(steps.len());
        for (index, kind, request_hash, request, answer) in steps {
            let expected = read.len() as u64 + 1;
            let kind = StepKind::parse(&kind).filter(|_| index == expected as i64);
            let answer = serde_json::from_str(&answer).ok();
            let (Some(kind), Some(answer)) = (kind, answer) else {
                read.push(Step {
                    index: expected,
                    kind: StepKind::Cut,
                    request_hash: String::new(),
                    request: None,
                    answer: serde_json::json!({"unreadable_from": index}),
                });
                break;
            };
            read.push(Step {
                index: expected,
                kind,
                request_hash,
                request: request.and_then(|r| serde_json::from_str(&r).ok()),
                answer,
            });
        }
        let steps = read;
        Ok(Recording {
            worker_id: worker.to_owned(),
            steps,
        })
    }
}

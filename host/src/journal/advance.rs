//! [`Advance`]: a worker's move to a later state, the only way the journal changes one.

use std::sync::LazyLock;

use chrono::Utc;
use rusqlite::{Connection, params};

use super::RecordState;
use crate::rfc3339;
use crate::worker::{WorkerResult, WorkerState};

/// The one `UPDATE` every move runs (built once: the statement cache is keyed by it).
static UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE workers SET state = ?2, started_at = COALESCE(?3, started_at),
             ended_at = COALESCE(?4, ended_at), result = COALESCE(?5, result)
         WHERE id = ?1 AND (({rank}) < ?6 OR (({rank}) = ?6 AND ?6 < 4))",
        rank = RecordState::RANK_SQL
    )
});

/// A worker's move to a later state, as one `UPDATE` (see [`Journal::set_state`]).
pub(super) struct Advance {
    id: String,
    state: RecordState,
    started_at: Option<String>,
    result: Option<String>,
}

impl Advance {
    pub(super) fn new(
        id: &str,
        state: WorkerState,
        started_at: Option<chrono::DateTime<Utc>>,
        result: Option<&WorkerResult>,
    ) -> Self {
        Self {
            id: id.to_owned(),
            state: state.into(),
            started_at: started_at.as_ref().map(rfc3339::format),
            result: result.and_then(|r| serde_json::to_string(r).ok()),
        }
    }

    /// Applies it; whether the row changed.
    pub(super) fn apply(self, c: &Connection) -> rusqlite::Result<bool> {
        let ended = self.state.has_ended().then(|| rfc3339::format(&Utc::now()));
        let rank = self.state.rank();
        c.prepare_cached(&UPDATE)?
            .execute(params![
                self.id,
                self.state.as_str(),
                self.started_at,
                ended,
                self.result,
                rank,
            ])
            .map(|changed| changed > 0)
    }
}

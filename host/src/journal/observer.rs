//! How workers reach the journal: [`JournalObserver`] (states and reports) and the
//! journal as a worker's [`EventLog`] and [`ConversationLog`] — all queued to its writer.

use std::pin::Pin;
use std::sync::Arc;

use rusqlite::params;

use super::Journal;
use super::record::stored;
use crate::conversation::ConversationLog;
use crate::events::{AgentEvent, EventLog};
use crate::worker::{WorkerInfo, WorkerObserver};

/// A worker's events, queued to the journal with its other writes.
impl EventLog for Journal {
    fn append(&self, worker: &str, line: Vec<u8>) {
        let line = String::from_utf8(line)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.writer.event(worker.to_owned(), line);
    }
}

/// A worker's conversation parts, queued to the journal with its other writes.
impl ConversationLog for Journal {
    fn append(&self, worker: &str, seq: u64, part: &[u8]) {
        let seq = stored(seq);
        let row = (
            worker.to_owned(),
            String::from_utf8_lossy(part).into_owned(),
        );
        self.writer.queue("journal a conversation part", move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO parts (worker_id, seq, part) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![row.0, seq, row.1])
            .map(drop)
        });
    }
}

/// Journals a worker through the observer hook: states queued, a report committed with
/// the worker's end before it is published.
pub(crate) struct JournalObserver(pub Arc<Journal>);

impl WorkerObserver for JournalObserver {
    fn state_changed(&self, info: &WorkerInfo) {
        // An end is journaled with its report (`reporting`), in the same transaction.
        if !info.state.is_terminal() {
            self.0.set_state(info);
        }
    }

    fn reporting(
        &self,
        report: &AgentEvent,
        ended: Option<&WorkerInfo>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        let committed = match ended {
            Some(info) => futures_util::future::Either::Left(self.0.end_with_report(info, report)),
            None => futures_util::future::Either::Right(self.0.add_report(report)),
        };
        Box::pin(async move { committed.await.map_err(|e| e.to_string()) })
    }
}

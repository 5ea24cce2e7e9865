//! The JSON the page reads: the colonies counted, a page of workers, one worker, its
//! events after a position.

use axum::Json;
use axum::extract::State;
use colony::{
    ColonyCensus, Journal, MAX_PAGE, RecordState, WorkerPage, WorkerQuery, WorkerStorage,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Path, Query};
use super::view::{Conversation, MAX_PARTS, MAX_REPORTS, WorkerView, tail};
use super::{App, DEFAULT_PAGE};

/// The query of the worker list (and of its live stream).
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
    colony: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

impl ListQuery {
    pub(super) fn to_query(&self) -> Result<WorkerQuery, ApiError> {
        let state = match self.state.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(name) => Some(
                RecordState::parse(name)
                    .ok_or_else(|| ApiError::BadRequest(format!("no state '{name}'")))?,
            ),
        };
        Ok(WorkerQuery {
            state,
            colony: self.colony.clone().filter(|c| !c.is_empty()),
            offset: self.offset.unwrap_or(0),
            limit: self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE),
        })
    }
}

pub(super) async fn colonies(State(app): State<App>) -> Result<Json<Vec<ColonyCensus>>, ApiError> {
    app.read(|journal| Ok(journal.census()?)).await.map(Json)
}

pub(super) async fn workers(
    State(app): State<App>,
    Query(list): Query<ListQuery>,
) -> Result<Json<WorkerPage>, ApiError> {
    let query = list.to_query()?;
    app.read(move |journal| Ok(journal.page(&query)?))
        .await
        .map(Json)
}

/// One worker: its record, latest reports and conversation.
pub(super) async fn worker(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    app.read(move |journal| {
        let (view, record) = worker_view(journal, &id)?;
        // A persistent worker's parts are in its folder, an ephemeral one's in the journal.
        let stored = record
            .storage
            .as_ref()
            .and_then(|folder| WorkerStorage::new(folder).read_parts().ok())
            .filter(|parts| !parts.is_empty());
        let (parts, total) = match stored {
            Some(parts) => {
                let total = parts.len() as u64;
                (tail(parts, MAX_PARTS), total)
            }
            None => journal.latest_parts(&id, MAX_PARTS)?,
        };
        Ok(Json(
            json!({"worker": view, "conversation": Conversation::new(parts, total)}),
        ))
    })
    .await
}

/// Worker `id` with its latest reports, and its record.
pub(super) fn worker_view(
    journal: &Journal,
    id: &str,
) -> Result<(WorkerView, colony::WorkerRecord), ApiError> {
    let missing = || ApiError::NoWorker(id.to_owned());
    let record = journal.worker(id)?.ok_or_else(missing)?;
    let row = journal.summary(id)?.ok_or_else(missing)?;
    let view = WorkerView::new(row, &record, journal.latest_reports(id, MAX_REPORTS)?);
    Ok((view, record))
}

#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    after: Option<i64>,
    limit: Option<u64>,
}

/// A worker's journaled events after position `after`, each with its position.
pub(super) async fn events(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let (after, limit) = (
        query.after.unwrap_or(0),
        query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE),
    );
    app.read(move |journal| {
        Ok(journal
            .worker_events(&id, after, limit as usize)?
            .events
            .into_iter()
            .map(|(seq, event)| json!({"seq": seq, "event": event}))
            .collect())
    })
    .await
    .map(Json)
}

//! The JSON the page reads: the colonies counted, a page of workers, one worker, its
//! events after a position.

use axum::Json;
use axum::extract::{Path, Query, State};
use colony::{ColonyCensus, Journal, MAX_PAGE, RecordState, WorkerQuery};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::ApiError;
use super::view::{Conversation, WorkerRow, WorkerView};
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

/// A page of the worker list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct RowsPage {
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub workers: Vec<WorkerRow>,
}

/// The page of workers `query` asks for, as rows.
pub(super) fn rows(journal: &Journal, query: &WorkerQuery) -> Result<RowsPage, ApiError> {
    let page = journal.page(query)?;
    Ok(RowsPage {
        total: page.total,
        offset: query.offset,
        limit: query.limit,
        workers: page.workers.iter().map(WorkerRow::new).collect(),
    })
}

pub(super) async fn colonies(State(app): State<App>) -> Result<Json<Vec<ColonyCensus>>, ApiError> {
    app.read(|journal| Ok(journal.census()?)).await.map(Json)
}

pub(super) async fn workers(
    State(app): State<App>,
    Query(list): Query<ListQuery>,
) -> Result<Json<RowsPage>, ApiError> {
    let query = list.to_query()?;
    app.read(move |journal| rows(journal, &query))
        .await
        .map(Json)
}

/// One worker: its record, reports and conversation.
pub(super) async fn worker(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    app.read(move |journal| {
        let record = journal
            .worker(&id)?
            .ok_or_else(|| ApiError::NoWorker(id.clone()))?;
        let parts = crate::inspect::conversation(journal, &record)
            .map_err(|e| ApiError::Conversation(format!("{e:#}")))?;
        let view = WorkerView::new(&record, journal.reports(Some(&id))?);
        Ok(Json(
            json!({"worker": view, "conversation": Conversation::new(parts)}),
        ))
    })
    .await
}

/// Worker `id` with its latest reports.
pub(super) fn worker_view(journal: &Journal, id: &str) -> Result<WorkerView, ApiError> {
    let record = journal
        .worker(id)?
        .ok_or_else(|| ApiError::NoWorker(id.to_owned()))?;
    Ok(WorkerView::new(&record, journal.reports(Some(id))?))
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
            .events(Some(&id), after, limit as usize)?
            .into_iter()
            .map(|(seq, event)| json!({"seq": seq, "event": event}))
            .collect())
    })
    .await
    .map(Json)
}

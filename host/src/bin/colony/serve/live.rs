//! Live streams (Server-Sent Events): a snapshot first, then what changed.
//!
//! One task polls the journal's `data_version` (every [`WATCH_EVERY`]) and bumps a
//! watch channel; each stream wakes on a bump and reads what it shows. The worker
//! list's stream (`/api/live`) sends the colonies' counts and its page of workers, then
//! only the rows that changed; a worker's stream (`/api/workers/{id}/live`) sends the
//! worker, then each journaled event once, with its journal position as the SSE id — so
//! a browser that reconnects (sending `Last-Event-ID`) gets the events it missed, none
//! twice. A first connection may name a position with `?after=N`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use colony::{ColonyCensus, Journal, MAX_PAGE, WorkerPage, WorkerQuery};
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_util::sync::CancellationToken;

use super::api::{ListQuery, worker_view};
use super::error::ApiError;
use super::extract::{Path, Query};
use super::{App, MAX_LIVE_STREAMS, WATCH_EVERY};

/// How long a browser waits before reconnecting a dropped stream.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
/// How often an idle stream sends a comment: keeps proxies from timing it out, and
/// finds a browser that went away (its permit is then free for another). More often
/// when the server's idle timeout is short ([`keep_alive`]).
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// The keep-alive interval for an idle timeout of `idle`: a stream is written to at
/// least twice within it, so the server never takes a live stream for an idle client.
pub(super) fn keep_alive(idle: Duration) -> Duration {
    KEEP_ALIVE.min(idle / 2)
}

/// The most events a worker's stream starts with when it names no position (the
/// latest ones; the page shows no more).
const TAIL: usize = 2000;

/// What changed, as the watcher saw it: the colonies counted once for every stream.
pub(super) type Census = Arc<Vec<ColonyCensus>>;

/// Publishes the colonies' census in `census` whenever the journal changes, until `stop`.
pub(super) async fn watch_journal(
    journal: Arc<Journal>,
    census: watch::Sender<Census>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let reader = journal.clone();
        let Ok(Ok(version)) = tokio::task::spawn_blocking(move || reader.changes()).await else {
            continue;
        };
        if seen == Some(version) {
            continue;
        }
        let reader = journal.clone();
        if let Ok(Ok(counted)) = tokio::task::spawn_blocking(move || reader.census()).await {
            seen = Some(version);
            census.send_replace(Arc::new(counted));
        }
    }
}

/// What every stream holds: the app, the journal's changes, its permit.
struct Live {
    app: App,
    changes: watch::Receiver<Census>,
    _permit: OwnedSemaphorePermit,
}

impl Live {
    fn open(app: App) -> Result<Self, ApiError> {
        let permit = app
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy(MAX_LIVE_STREAMS))?;
        let mut changes = app.changes.clone();
        changes.mark_unchanged();
        Ok(Self {
            app,
            changes,
            _permit: permit,
        })
    }

    /// Waits for the journal's next change; false once the server stops (or the
    /// watcher is gone).
    async fn changed(&mut self) -> bool {
        tokio::select! {
            changed = self.changes.changed() => changed.is_ok(),
            () = self.app.stop.cancelled() => false,
        }
    }
}

/// An SSE response of the batches `next` makes, until it returns `None`, with a
/// keep-alive comment every `keep_alive` it is idle.
fn respond<S, F>(keep_alive: Duration, state: S, next: impl Fn(S) -> F + Send + 'static) -> Response
where
    S: Send + 'static,
    F: Future<Output = Option<(Vec<Event>, S)>> + Send + 'static,
{
    let first = Event::default().retry(RECONNECT_AFTER);
    let batches: std::pin::Pin<Box<dyn Stream<Item = Vec<Event>> + Send>> =
        Box::pin(stream::unfold(state, next));
    let events = stream::iter([first])
        .chain(batches.flat_map(stream::iter))
        .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response()
}

fn named(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_else(|_| "null".into()))
}

/// The worker list's stream: `census` (the colonies counted) and `page` (the workers
/// the query asks for), then, on each change, `census` if it changed, `rows` with the
/// rows that changed, or `page` if the page holds other workers now.
pub(super) async fn index(
    State(app): State<App>,
    Query(list): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let query = list.to_query()?;
    let keep_alive = app.keep_alive;
    let live = Live::open(app)?;
    let state = ListStream {
        live,
        query,
        census: None,
        page: None,
    };
    Ok(respond(keep_alive, state, ListStream::next))
}

struct ListStream {
    live: Live,
    query: WorkerQuery,
    census: Option<Census>,
    page: Option<WorkerPage>,
}

impl ListStream {
    async fn next(mut self) -> Option<(Vec<Event>, Self)> {
        loop {
            if self.page.is_some() && !self.live.changed().await {
                return None;
            }
            let query = self.query.clone();
            let census = self.live.changes.borrow_and_update().clone();
            let read = self
                .live
                .app
                .read(move |journal| Ok(journal.page(&query)?))
                .await;
            let Ok(page) = read else {
                // A failed read (the journal busy, say) is tried again on the next change;
                // a failed first one ends the stream (the browser reconnects).
                self.page.as_ref()?;
                continue;
            };
            let mut events = Vec::new();
            if self.census.as_ref() != Some(&census) {
                events.push(named("census", &*census));
                self.census = Some(census);
            }
            match &self.page {
                Some(sent) if same_workers(sent, &page) => {
                    let changed: Vec<_> = page
                        .workers
                        .iter()
                        .zip(&sent.workers)
                        .filter(|(new, old)| new != old)
                        .map(|(new, _)| new)
                        .collect();
                    if !changed.is_empty() || sent.total != page.total {
                        events.push(named(
                            "rows",
                            &json!({"total": page.total, "workers": changed}),
                        ));
                    }
                }
                _ => events.push(named("page", &page)),
            }
            self.page = Some(page);
            if !events.is_empty() {
                return Some((events, self));
            }
        }
    }
}

fn same_workers(a: &WorkerPage, b: &WorkerPage) -> bool {
    a.workers.len() == b.workers.len()
        && a.workers.iter().zip(&b.workers).all(|(x, y)| x.id == y.id)
}

#[derive(Debug, Deserialize)]
pub(super) struct WorkerLiveQuery {
    after: Option<i64>,
}

/// A worker's stream: `worker` (the worker and its reports) when it changes, and each
/// journaled event after the resume position as `event`, with its position as id.
pub(super) async fn worker(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(query): Query<WorkerLiveQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A reconnecting browser's Last-Event-ID wins over the first connection's `after`;
    // with neither, the stream starts at the latest events.
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let known = id.clone();
    let cursor = app
        .read(move |journal| {
            worker_view(journal, &known)?;
            Ok(match resumed.or(query.after) {
                Some(position) => position.max(0),
                None => journal.events_tail(&known, TAIL)?,
            })
        })
        .await?;
    let keep_alive = app.keep_alive;
    let state = WorkerStream {
        live: Live::open(app)?,
        id,
        cursor,
        sent: None,
        more: true,
    };
    Ok(respond(keep_alive, state, WorkerStream::next))
}

struct WorkerStream {
    live: Live,
    id: String,
    /// The position of the last event sent.
    cursor: i64,
    /// The worker as last sent.
    sent: Option<String>,
    /// Whether the last read was a full batch (more may be waiting).
    more: bool,
}

impl WorkerStream {
    async fn next(mut self) -> Option<(Vec<Event>, Self)> {
        loop {
            if !self.more && !self.live.changed().await {
                return None;
            }
            let (id, cursor) = (self.id.clone(), self.cursor);
            let read = self
                .live
                .app
                .read(move |journal| {
                    let view =
                        serde_json::to_string(&worker_view(journal, &id)?.0).unwrap_or_default();
                    let window = journal.worker_events(&id, cursor, MAX_PAGE as usize)?;
                    Ok((view, window))
                })
                .await;
            let Ok((view, window)) = read else {
                self.more = false;
                continue;
            };
            // On from the last row read, whether or not it parsed.
            self.more = window.full;
            self.cursor = window.read_to;
            let journaled = window.events;
            let mut events = Vec::new();
            if self.sent.as_ref() != Some(&view) {
                events.push(Event::default().event("worker").data(&view));
                self.sent = Some(view);
            }
            for (seq, event) in journaled {
                events.push(
                    Event::default()
                        .id(seq.to_string())
                        .event("event")
                        .data(json!({"seq": seq, "event": event}).to_string()),
                );
            }
            if !events.is_empty() {
                return Some((events, self));
            }
        }
    }
}

//! The page's controls — stop a worker, inject a message into one, stop all — filed in
//! the journal for the process holding the worker ([`Control`]), and its answer awaited.
//! Only with the token (see `guard::require_token`).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use colony::{CONTROL_POLL, Control, ControlAck};
use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::error::ApiError;
use super::extract::{JsonBody, Path};

/// How long a stop may take to be answered: the holder's poll, then the worker's stop
/// (bounded by its stop timeout).
const STOP_WAIT: Duration = Duration::from_secs(30);
/// How long an injection may take to be answered.
const INJECT_WAIT: Duration = Duration::from_secs(5);
/// How long "stop all" waits for every live process's workers to end (the stops go on
/// after the response).
const STOP_ALL_WAIT: Duration = Duration::from_secs(30);

pub(super) async fn stop(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    held(&app, &id).await?;
    answered(&app, Control::Stop { worker: id }, STOP_WAIT).await
}

#[derive(Debug, Deserialize)]
pub(super) struct Inject {
    message: String,
}

pub(super) async fn inject(
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Inject>,
) -> Result<Json<Value>, ApiError> {
    if body.message.trim().is_empty() {
        return Err(ApiError::BadRequest("the message is empty".into()));
    }
    held(&app, &id).await?;
    let control = Control::Inject {
        worker: id,
        message: body.message,
    };
    answered(&app, control, INJECT_WAIT).await
}

pub(super) async fn stop_all(
    State(app): State<App>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let control = file(&app, &Control::StopAll).await?;
    // Done when no live process holds a worker any more (each colony answers too, but
    // one that ends with its last worker may exit before its answer is written).
    let deadline = tokio::time::Instant::now() + STOP_ALL_WAIT;
    let running = loop {
        let running = app.read(|journal| Ok(journal.held_count()?)).await?;
        if running == 0 || tokio::time::Instant::now() >= deadline {
            break running;
        }
        tokio::time::sleep(CONTROL_POLL).await;
    };
    let answers = acks(&app, control).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"control": control, "answers": answers, "still_running": running})),
    ))
}

/// Refuses a control of a worker no live process holds (unknown, ended, or its
/// process gone).
async fn held(app: &App, id: &str) -> Result<(), ApiError> {
    let id = id.to_owned();
    app.read(move |journal| {
        let record = journal
            .worker(&id)?
            .ok_or_else(|| ApiError::NoWorker(id.clone()))?;
        if !record.state.has_ended() && journal.is_held(&id)? {
            return Ok(());
        }
        Err(ApiError::Conflict {
            worker: id,
            state: record.state.as_str().to_owned(),
            why: if record.state.has_ended() {
                "it has ended"
            } else {
                "no live process holds it"
            },
        })
    })
    .await
}

async fn file(app: &App, control: &Control) -> Result<i64, ApiError> {
    Ok(app.journal.request_control(control).await?)
}

async fn acks(app: &App, control: i64) -> Result<Vec<ControlAck>, ApiError> {
    app.read(move |journal| Ok(journal.control_acks(control)?))
        .await
}

/// Files `control` and waits up to `wait` for the holder's answer — or, for a stop,
/// for the worker's end in the journal (a process that ends with its last worker may
/// exit before its answer is written).
async fn answered(app: &App, control: Control, wait: Duration) -> Result<Json<Value>, ApiError> {
    let id = file(app, &control).await?;
    let stopping = match &control {
        Control::Stop { worker } => Some(worker.clone()),
        _ => None,
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(ack) = acks(app, id).await?.into_iter().next() {
            if !ack.ok {
                return Err(ApiError::Refused(ack.outcome));
            }
            return Ok(Json(json!({"control": id, "answer": ack})));
        }
        if let Some(worker) = stopping.clone() {
            let ended = app
                .read(move |journal| Ok(journal.worker(&worker)?.map(|r| r.state)))
                .await?
                .filter(|state| state.has_ended());
            if let Some(state) = ended {
                let answer = json!({"ok": true, "outcome": state.as_str()});
                return Ok(Json(json!({"control": id, "answer": answer})));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::NoAnswer(wait));
        }
        tokio::time::sleep(CONTROL_POLL / 2).await;
    }
}

//! A worker's background task: instantiate the guest, call `run`, serve persistent
//! turns, and end the worker with the right state, result and events.
//!
//! Stopping works at two levels. The driver races the whole session against the
//! worker's cancellation token, so a stop drops the session future — and with it any
//! host call the guest is waiting in — as soon as the guest is suspended. A guest that
//! never calls the host is suspended by the epoch deadline callback (see
//! [`guest_store`](super::store)), which yields every CPU slice and traps once the
//! token is cancelled.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::WorkerState;
use super::result::{self, RunOutcome, into_object};
use super::shared::WorkerShared;
use super::store::{describe_failure, guest_store};
use crate::bindings::RunContext;
use crate::error::LimitExceeded;
use crate::events::EventType;
use crate::host_api::InboxMessage;
use crate::replay::{Served, StepKind};

/// How a session ended, before it is turned into a result.
enum SessionEnd {
    /// `run` returned (ephemeral workers).
    Ran(RunOutcome),
    /// A trap, a failed instantiation or a host error.
    Crashed(String),
    /// The cancellation token fired.
    Stopped,
}

/// Runs the worker to its end. Spawned by [`Worker::start`](super::Worker::start).
pub(crate) async fn drive(shared: Arc<WorkerShared>, inbox: mpsc::Receiver<InboxMessage>) {
    #[cfg(feature = "telemetry")]
    shared.start_trace();
    shared.publish(
        EventType::ExecutionStarted,
        json!({
            "worker_id": shared.spec.id,
            "colony_id": shared.spec.colony_id,
            "task": shared.spec.task,
            "persistent": shared.spec.is_persistent(),
        }),
    );
    let end = tokio::select! {
        biased;
        () = shared.cancel.cancelled() => SessionEnd::Stopped,
        // Boxed: the session (the store and the guest's call) is large; the spawned task
        // then moves only a pointer to it.
        end = Box::pin(session(&shared, inbox)) => end,
    };
    shared.status.send_modify(|s| s.guest_gone = true);
    let end = if shared.cancel.is_cancelled() {
        // A trap caused by the stop itself (the epoch callback) is a stop.
        SessionEnd::Stopped
    } else {
        end
    };
    finish(&shared, end).await;
}

/// [`drive`], with a host bug contained: should the driver panic, the worker still ends
/// FAILED with a report rather than hanging every waiter.
pub(crate) async fn drive_guarded(shared: Arc<WorkerShared>, inbox: mpsc::Receiver<InboxMessage>) {
    use futures_util::FutureExt;
    let outcome = std::panic::AssertUnwindSafe(drive(shared.clone(), inbox))
        .catch_unwind()
        .await;
    // The run is over: its channel and the task's own allocation (sized for this
    // future) are let go now, not when the last handle to the worker is dropped.
    shared.inbox.close();
    drop(shared.task.lock().unwrap_or_else(|e| e.into_inner()).take());
    if let Err(panic) = outcome {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let message = format!("{}: host error: {what}", shared.label());
        finish(&shared, SessionEnd::Crashed(message)).await;
    }
}

/// Ends the worker for `end`. Also used by `stop` when the driver did not wind down.
pub(crate) async fn finish_stopped(shared: &Arc<WorkerShared>) -> bool {
    finish(shared, SessionEnd::Stopped).await
}

/// Ends the worker for `end`, in a task of its own: once it has claimed the worker's
/// end it journals and publishes it even if the driver is aborted meanwhile (a `stop`
/// past its timeout), so no waiter is left hanging.
async fn finish(shared: &Arc<WorkerShared>, end: SessionEnd) -> bool {
    // Without an observer, ending never waits: nothing to protect from an abort.
    if shared.observer.get().is_none() {
        return end_with(shared, end).await;
    }
    let shared = shared.clone();
    let label = shared.label();
    tokio::spawn(async move { end_with(&shared, end).await })
        .await
        .unwrap_or_else(|e| {
            tracing::error!("{label}: ending it failed: {e}");
            false
        })
}

async fn end_with(shared: &WorkerShared, end: SessionEnd) -> bool {
    let duration = shared.elapsed_seconds();
    let usage = shared.usage();
    match end {
        SessionEnd::Ran(run) => {
            let state = if run.success() {
                WorkerState::Completed
            } else {
                WorkerState::Failed
            };
            let result = result::from_run(
                &shared.spec.task,
                &run,
                shared.take_report(),
                duration,
                usage,
            );
            shared.finish(state, result, Some(&run)).await
        }
        SessionEnd::Crashed(message) => {
            tracing::warn!("{message}");
            shared
                .finish(
                    WorkerState::Failed,
                    result::crashed(message, duration, usage),
                    None,
                )
                .await
        }
        SessionEnd::Stopped => {
            let result = result::stopped(shared.take_report(), duration, usage);
            shared.finish(WorkerState::Stopped, result, None).await
        }
    }
}

async fn session(shared: &Arc<WorkerShared>, inbox: mpsc::Receiver<InboxMessage>) -> SessionEnd {
    let compiled = match shared.plugin.compiled().await {
        Ok(compiled) => compiled,
        Err(e) => return SessionEnd::Crashed(format!("{}: {e}", shared.label())),
    };
    let mut store = match guest_store(shared, inbox, compiled.opens_files) {
        Ok(store) => store,
        Err(e) => return SessionEnd::Crashed(format!("{}: {e}", shared.label())),
    };
    let limits = shared.limits();
    let agent = match compiled.pre.instantiate_async(&mut store).await {
        Ok(agent) => agent,
        Err(e) => {
            let cause = describe_failure(&e, &store, "instantiation failed");
            return SessionEnd::Crashed(format!("{}: {cause}", shared.label()));
        }
    };
    let spec = &shared.spec;
    // A replay shows the guest the recorded worker's ids, so it asks what it asked then.
    let presented = shared.ctx.tape().and_then(|tape| tape.presented());
    let context = match presented {
        Some((worker, colony)) => RunContext {
            worker_id: worker.to_owned(),
            colony_id: colony.to_owned(),
            stream_id: worker.to_owned(),
            execution_id: worker.to_owned(),
            ..run_context(spec)
        },
        None => run_context(spec),
    };
    let run = match timed(
        limits.run_timeout,
        "run",
        agent.call_run(&mut store, &context),
    )
    .await
    {
        Ok(returned) => outcome(shared, "run", returned),
        Err(e) => {
            let cause = describe_failure(&e, &store, "run trapped");
            return SessionEnd::Crashed(format!("{}: {cause}", shared.label()));
        }
    };
    if !spec.is_persistent() {
        return SessionEnd::Ran(run);
    }

    // Persistent: publish the initial run's report and serve turns until stopped.
    let initial = result::from_run(
        &spec.task,
        &run,
        shared.take_report(),
        shared.elapsed_seconds(),
        shared.usage(),
    );
    shared
        .status
        .send_modify(|s| s.result = Some(initial.clone()));
    shared.publish_terminal(&initial, Some(&run)).await;

    let mut turn: u64 = 0;
    loop {
        let Some(message) = store.data_mut().inbox.recv().await else {
            return SessionEnd::Stopped;
        };
        // Delivered: the message's bytes are the guest's now (and this turn's event's).
        let message = message.text;
        turn += 1;
        if let Some(tape) = shared.ctx.tape() {
            let mut asked = json!({"message": message});
            match tape.serve(StepKind::Turn, &mut asked) {
                // The message is the answer too: kept whole, however long (a request
                // is kept only up to its bound), so a replay can give it again.
                Ok(Served::Live) => {
                    tape.record(StepKind::Turn, &asked, Value::String(message.clone()));
                }
                Ok(Served::Answer(_)) => {}
                Err(diverged) => {
                    return SessionEnd::Crashed(format!("{}: {diverged}", shared.label()));
                }
            }
        }
        if let Some(trace) = shared.ctx.trace() {
            trace.begin_turn(turn);
        }
        let call = agent.call_on_message(&mut store, &message);
        let outcome = match timed(limits.turn_timeout, &format!("turn {turn}"), call).await {
            Ok(returned) => outcome(shared, "on-message", returned),
            Err(e) => {
                let cause = describe_failure(&e, &store, &format!("turn {turn} trapped"));
                if let Some(trace) = shared.ctx.trace() {
                    trace.end_turn(Some(&cause));
                }
                return SessionEnd::Crashed(format!("{}: {cause}", shared.label()));
            }
        };
        let failed = outcome.error.clone();
        // A report the guest filed during the turn is read before the turn's event takes
        // the output (moved, not copied: turns are the injection hot path).
        let reported = shared.take_report().map(|report| {
            result::from_run(
                &spec.task,
                &outcome,
                Some(report),
                shared.elapsed_seconds(),
                shared.usage(),
            )
        });
        let mut data = json!({
            "worker_id": spec.id,
            "colony_id": spec.colony_id,
            "turn": turn,
            "message": message,
        });
        let event_type = match outcome.error {
            None => {
                data["output"] = Value::Object(outcome.output);
                EventType::TurnCompleted
            }
            Some(error) => {
                data["error"] = Value::String(error);
                EventType::TurnFailed
            }
        };
        // The turn's report first: whoever waits for the turn's end (to stop the worker,
        // say) then has its report too.
        if let Some(result) = reported {
            shared
                .status
                .send_modify(|s| s.result = Some(result.clone()));
            shared.publish_terminal(&result, None).await;
        }
        shared.publish(event_type, data);
        if let Some(trace) = shared.ctx.trace() {
            trace.end_turn(failed.as_deref());
        }
    }
}

/// What `run` is called with: the worker's own ids, task and input.
fn run_context(spec: &super::WorkerSpec) -> RunContext {
    RunContext {
        worker_id: spec.id.clone(),
        colony_id: spec.colony_id.clone(),
        task: spec.task.clone(),
        stream_id: spec.effective_stream_id().to_owned(),
        execution_id: spec.effective_execution_id().to_owned(),
        persistent: spec.is_persistent(),
        input: spec.input.to_string(),
    }
}

/// `call` within `limit`; past it, the call is dropped (cancelling whatever the guest was
/// doing, host calls included) and a [`LimitExceeded::Time`] error stands for its result.
async fn timed<T>(
    limit: std::time::Duration,
    what: &str,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(wasmtime::Error::new(LimitExceeded::Time {
            what: what.to_owned(),
            limit: humantime::format_duration(limit).to_string(),
        })),
    }
}

/// Turns what `run` / `on-message` returned into an outcome, validating the output: its
/// text within `max_output_bytes`, the tree built from it within what the host may hold
/// for the worker, an error message cut to `max_report_summary_bytes`.
fn outcome(shared: &WorkerShared, export: &str, returned: Result<String, String>) -> RunOutcome {
    let limit = shared.limits().max_output_bytes;
    let returned = returned
        .map_err(|error| crate::text::truncated(error, shared.limits().max_report_summary_bytes));
    let parsed = returned.and_then(|text| {
        if text.len() > limit {
            return Err(format!(
                "{export} returned {} bytes of output, over the limit of {limit} bytes",
                text.len()
            ));
        }
        if text.trim().is_empty() {
            return Ok(serde_json::Map::new());
        }
        let _held = shared
            .ctx
            .memory
            .hold(crate::text::json_tree_cost(&text), "the output")
            .map_err(|e| format!("{export} returned an output the host cannot hold: {e}"))?;
        serde_json::from_str(&text)
            .map(into_object)
            .map_err(|e| format!("{export} returned invalid JSON output: {e}"))
    });
    match parsed {
        Ok(output) => RunOutcome {
            output,
            error: None,
        },
        Err(error) => RunOutcome {
            output: serde_json::Map::new(),
            error: Some(error),
        },
    }
}

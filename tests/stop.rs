//! Stop: idempotent, bounded, and effective whatever the guest is doing — idle between
//! turns, blocked in a host call, asleep in WASI, or spinning in `loop {}`.

use std::time::{Duration, Instant};

use colony::{EventBus, EventFilter, EventType, ReportStatus, WorkerSpec, WorkerState};
use colony_tests::{next_event, probe_spec, worker};
use serde_json::json;

/// How long a stop may take. Measured stops take about one epoch tick (1 ms); the
/// bound leaves room for a loaded CI machine.
const STOP_BOUND: Duration = Duration::from_millis(100);

/// Starts `spec` on the probe, lets it get going, stops it, and checks the outcome.
async fn stop_running(spec: WorkerSpec) {
    let bus = EventBus::new();
    let id = spec.id.clone();
    let mut reports = bus.subscribe(
        EventFilter::all()
            .types([EventType::SubagentReport])
            .worker(&id),
    );
    let w = worker("probe-fixture", spec, &bus).await;
    w.start().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(w.state(), WorkerState::Running);

    let begun = Instant::now();
    let outcome = w.stop().await;
    let took = begun.elapsed();
    assert!(outcome.clean, "{id}: stop was not clean");
    assert_eq!(outcome.state, WorkerState::Stopped);
    assert!(took < STOP_BOUND, "{id}: stop took {took:?}");
    eprintln!("{id}: stopped in {took:?}");

    let report = next_event(&mut reports, Duration::from_secs(1)).await;
    let report = if w.is_persistent() {
        next_event(&mut reports, Duration::from_secs(1)).await
    } else {
        report
    };
    assert_eq!(report.data["status"], "stopped");
    assert_eq!(report.data["error"], "Worker stopped by queen");
    assert_eq!(
        report.data["summary"],
        "Worker was cancelled before completion."
    );
    let result = w.result().unwrap();
    assert_eq!(result.status, ReportStatus::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_an_idle_persistent_worker() {
    stop_running(WorkerSpec::persistent("idle", "").with_input(json!({"action": "echo"}))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_a_worker_blocked_in_a_host_call() {
    stop_running(probe_spec("blocked", "wait", json!({}))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_a_worker_asleep_in_wasi() {
    stop_running(probe_spec("asleep", "sleep", json!({}))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_a_guest_spinning_in_a_loop() {
    stop_running(probe_spec("spinner", "spin", json!({}))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_a_persistent_guest_spinning_in_a_turn() {
    let bus = EventBus::new();
    let spec = WorkerSpec::persistent("turn-spin", "").with_input(json!({"action": "echo"}));
    let w = worker("probe-fixture", spec, &bus).await;
    w.start().unwrap();
    w.inject("spin").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let outcome = w.stop().await;
    assert!(outcome.clean && outcome.elapsed < STOP_BOUND, "{outcome:?}");
    assert_eq!(w.state(), WorkerState::Stopped);
}

#[tokio::test]
async fn a_pending_worker_is_simply_marked_stopped_and_stop_is_idempotent() {
    let bus = EventBus::new();
    let mut reports = bus.subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let w = worker("echo-agent", WorkerSpec::ephemeral("never", "t"), &bus).await;
    let first = w.stop().await;
    assert_eq!(first.state, WorkerState::Stopped);
    assert!(first.clean);
    let second = w.stop().await;
    assert_eq!(second.state, WorkerState::Stopped);
    assert!(second.clean);
    assert!(w.start().is_err(), "a stopped worker cannot start");
    let report = next_event(&mut reports, Duration::from_secs(1)).await;
    assert_eq!(report.data["status"], "stopped");
    assert!(reports.try_recv().unwrap().is_none(), "exactly one report");
}

#[tokio::test]
async fn stopping_a_finished_worker_changes_nothing() {
    let bus = EventBus::new();
    let w = worker(
        "silent-agent",
        WorkerSpec::ephemeral("done-already", "t"),
        &bus,
    )
    .await;
    let result = w.run().await.unwrap();
    let outcome = w.stop().await;
    assert_eq!(outcome.state, WorkerState::Completed);
    assert_eq!(w.result().unwrap(), result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_after_an_explicit_report_keeps_the_report() {
    let bus = EventBus::new();
    let w = worker(
        "probe-fixture",
        probe_spec("reported", "report_then_wait", json!({})),
        &bus,
    )
    .await;
    w.start().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    w.stop().await;
    let result = w.result().unwrap();
    assert_eq!(w.state(), WorkerState::Stopped);
    assert_eq!(result.status, ReportStatus::Success);
    assert_eq!(result.summary, "done before the stop");
    assert_eq!(result.data["stopped_after_report"], true);
    assert_eq!(result.data["k"], 1);
    assert_eq!(result.error.as_deref(), Some("Worker stopped by queen"));
}

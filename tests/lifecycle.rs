//! Worker lifecycle: every state transition, both modes, and the refusals that keep the
//! state machine honest.

use std::time::Duration;

use colony::{EventBus, EventType, WorkerError, WorkerMode, WorkerSpec, WorkerState};
use colony_tests::{next_event, watch, worker};
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn ephemeral_worker_goes_pending_running_completed() {
    let bus = EventBus::new();
    let w = worker(
        "echo-agent",
        WorkerSpec::ephemeral("eph-1", "say hello to the colony"),
        &bus,
    )
    .await;
    assert_eq!(w.state(), WorkerState::Pending);
    assert!(w.is_active());
    assert!(!w.is_persistent());
    assert!(w.info().started_at.is_none());

    w.start().unwrap();
    assert_eq!(w.state(), WorkerState::Running);
    assert!(w.is_active());

    let result = tokio::time::timeout(WITHIN, w.wait()).await.unwrap();
    assert_eq!(w.state(), WorkerState::Completed);
    assert!(!w.is_active());
    assert_eq!(result.output["summary"], "say hello to the colony");
    let info = w.info();
    assert_eq!(info.id, "eph-1");
    assert_eq!(info.task, "say hello to the colony");
    assert_eq!(info.plugin, "echo-agent");
    assert_eq!(info.mode, WorkerMode::Ephemeral);
    assert!(info.started_at.is_some());
    assert_eq!(info.result, Some(result));
}

#[tokio::test]
async fn run_that_returns_err_ends_failed() {
    let bus = EventBus::new();
    let w = worker(
        "failing-agent",
        WorkerSpec::ephemeral("fail-1", "fetch the data"),
        &bus,
    )
    .await;
    let result = w.run().await.unwrap();
    assert_eq!(w.state(), WorkerState::Failed);
    assert_eq!(
        result.error.as_deref(),
        Some("cannot complete 'fetch the data': the data source is unreachable")
    );
}

#[tokio::test]
async fn persistent_worker_serves_turns_on_one_live_instance() {
    let bus = EventBus::new();
    let w = worker("chat-agent", WorkerSpec::persistent("overseer", ""), &bus).await;
    let mut events = watch(&bus, "overseer");
    w.start().unwrap();

    // The initial run reports like an ephemeral one, but the worker stays running.
    loop {
        if next_event(&mut events, WITHIN).await.event_type == EventType::SubagentReport {
            break;
        }
    }
    assert_eq!(w.state(), WorkerState::Running);
    assert!(w.is_persistent());

    for message in ["hello", "how are the workers?", "thanks"] {
        w.inject(message).unwrap();
    }
    let mut turns = Vec::new();
    while turns.len() < 3 {
        let event = next_event(&mut events, WITHIN).await;
        if event.event_type == EventType::TurnCompleted {
            turns.push(event.data);
        }
    }
    for (i, turn) in turns.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(turn["turn"], n);
        // State kept by the guest across turns: it remembers every earlier message.
        assert_eq!(turn["output"]["turn"], n);
        assert_eq!(turn["output"]["remembered"], n);
    }
    assert_eq!(
        turns[1]["output"]["reply"],
        "turn 2: heard 'how are the workers?' (before that: 'hello')"
    );
    assert_eq!(w.state(), WorkerState::Running);

    let stop = w.stop().await;
    assert!(stop.clean);
    assert_eq!(w.state(), WorkerState::Stopped);
    assert!(!w.is_active());
}

#[tokio::test]
async fn a_worker_starts_once_and_takes_no_messages_after_it_ends() {
    let bus = EventBus::new();
    let w = worker("silent-agent", WorkerSpec::ephemeral("once", "a b"), &bus).await;
    w.run().await.unwrap();
    let again = w.start().unwrap_err();
    assert!(
        matches!(
            again,
            WorkerError::WrongState {
                state: WorkerState::Completed,
                ..
            }
        ),
        "{again}"
    );
    let late = w.inject("too late").unwrap_err();
    assert!(
        late.to_string()
            .contains("cannot inject a message while completed"),
        "{late}"
    );
}

#[tokio::test]
async fn an_invalid_spec_is_refused() {
    let plugin = colony_tests::plugin("silent-agent").await;
    let spec = WorkerSpec::ephemeral("bad-input", "t").with_input(json!([1, 2]));
    let err = colony::Worker::new(&plugin, spec, None).unwrap_err();
    assert!(
        err.to_string().contains("input must be a JSON object"),
        "{err}"
    );
    let err = colony::Worker::new(&plugin, WorkerSpec::ephemeral("", "t"), None).unwrap_err();
    assert!(err.to_string().contains("id is empty"), "{err}");
}

#[tokio::test]
async fn the_guest_sees_its_run_context() {
    let bus = EventBus::new();
    let spec = colony_tests::probe_spec("ctx-1", "echo", json!({"n": 7}))
        .with_colony("colony-a")
        .with_stream_id("stream-9")
        .with_execution_id("exec-3");
    let w = worker("probe-fixture", spec, &bus).await;
    let result = w.run().await.unwrap();
    let out = serde_json::Value::Object(result.output);
    assert_eq!(
        out,
        json!({"task": "probe echo", "worker_id": "ctx-1", "colony_id": "colony-a",
            "stream_id": "stream-9", "execution_id": "exec-3", "persistent": false,
            "input": {"action": "echo", "n": 7}})
    );
}

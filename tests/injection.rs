//! Injection: order and completeness across many messages, mid-run delivery to an
//! ephemeral worker, turn failures, reports from turns, and the message size limit.

use std::time::Duration;

use colony::{EventBus, EventFilter, EventType, WorkerError, WorkerSpec, WorkerState};
use colony_tests::{next_event, probe_spec, watch, worker};
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_injected_messages_arrive_in_order_none_lost() {
    let bus = EventBus::new();
    let mut turns = bus.subscribe(
        EventFilter::all()
            .types([EventType::TurnCompleted, EventType::TurnFailed])
            .worker("many"),
    );
    let spec = WorkerSpec::persistent("many", "").with_input(json!({"action": "echo"}));
    let w = worker("probe-fixture", spec, &bus).await;
    // Half injected before the start, half while it runs.
    for i in 0..500 {
        w.inject(format!("m{i}")).unwrap();
    }
    w.start().unwrap();
    for i in 500..1000 {
        w.inject(format!("m{i}")).unwrap();
    }
    for i in 0..1000u64 {
        let event = next_event(&mut turns, WITHIN).await;
        assert_eq!(event.event_type, EventType::TurnCompleted);
        assert_eq!(event.data["turn"], i + 1);
        assert_eq!(event.data["message"], format!("m{i}"));
        assert_eq!(
            event.data["output"]["n"],
            i + 1,
            "the same instance saw every turn"
        );
    }
    assert!(turns.try_recv().unwrap().is_none());
    w.stop().await;
}

#[tokio::test]
async fn an_ephemeral_worker_sees_messages_injected_mid_run() {
    let bus = EventBus::new();
    let w = worker(
        "probe-fixture",
        probe_spec("soft", "collect", json!({})),
        &bus,
    )
    .await;
    w.start().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    w.inject("[SOFT TIMEOUT] wrap up and report").unwrap();
    w.inject("done").unwrap();
    let result = tokio::time::timeout(WITHIN, w.wait()).await.unwrap();
    assert_eq!(w.state(), WorkerState::Completed);
    assert_eq!(
        result.output["messages"],
        json!(["[SOFT TIMEOUT] wrap up and report", "done"])
    );
}

#[tokio::test]
async fn a_failed_turn_is_reported_and_the_worker_goes_on() {
    let bus = EventBus::new();
    let mut events = watch(&bus, "resilient");
    let spec = WorkerSpec::persistent("resilient", "").with_input(json!({"action": "echo"}));
    let w = worker("probe-fixture", spec, &bus).await;
    w.start().unwrap();
    w.inject("fail").unwrap();
    w.inject("after").unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = next_event(&mut events, WITHIN).await;
        if matches!(
            e.event_type,
            EventType::TurnCompleted | EventType::TurnFailed
        ) {
            seen.push(e);
        }
    }
    assert_eq!(seen[0].event_type, EventType::TurnFailed);
    assert_eq!(seen[0].data["error"], "turn failed on purpose");
    assert_eq!(seen[1].event_type, EventType::TurnCompleted);
    assert_eq!(seen[1].data["output"]["n"], 1);
    assert_eq!(w.state(), WorkerState::Running);
    w.stop().await;
}

#[tokio::test]
async fn a_report_filed_in_a_turn_is_published() {
    let bus = EventBus::new();
    let mut reports = bus.subscribe(
        EventFilter::all()
            .types([EventType::SubagentReport])
            .worker("turn-rep"),
    );
    let spec = WorkerSpec::persistent("turn-rep", "").with_input(json!({"action": "echo"}));
    let w = worker("probe-fixture", spec, &bus).await;
    w.start().unwrap();
    let initial = next_event(&mut reports, WITHIN).await;
    assert_eq!(initial.data["status"], "success");
    w.inject("hello").unwrap();
    w.inject("report").unwrap();
    let from_turn = next_event(&mut reports, WITHIN).await;
    assert_eq!(from_turn.data["status"], "partial");
    assert_eq!(from_turn.data["summary"], "reported from a turn");
    assert_eq!(from_turn.data["data"], json!({"turns": 1}));
    assert_eq!(w.result().unwrap().summary, "reported from a turn");
    w.stop().await;
}

#[tokio::test]
async fn an_oversized_message_is_refused() {
    let bus = EventBus::new();
    let w = worker("chat-agent", WorkerSpec::persistent("big-msg", ""), &bus).await;
    let limit = colony::Limits::default().max_message_bytes;
    let err = w.inject("x".repeat(limit + 1)).unwrap_err();
    assert!(
        matches!(err, WorkerError::MessageTooLarge { size, .. } if size == limit + 1),
        "{err}"
    );
    w.inject("x".repeat(limit)).unwrap();
}

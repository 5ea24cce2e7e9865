//! Events: their order, every payload field of the terminal events, the envelope, the
//! guest's own events, filtered subscriptions, and the worker's events.jsonl.

use std::time::Duration;

use colony::{AgentEvent, EventBus, EventFilter, EventType, WorkerSpec};
use colony_tests::{drain, probe_spec, watch, worker};
use serde_json::{Value, json};

fn types(events: &[AgentEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_type.to_string()).collect()
}

#[tokio::test]
async fn ephemeral_run_publishes_events_in_order_with_every_field() {
    let bus = EventBus::new();
    let mut sub = watch(&bus, "ev-1");
    let spec = WorkerSpec::ephemeral("ev-1", "alpha beta gamma")
        .with_colony("col-7")
        .with_stream_id("stream-1");
    let w = worker("echo-agent", spec, &bus).await;
    let result = w.run().await.unwrap();
    let events = drain(&mut sub);
    assert_eq!(
        types(&events),
        [
            "EXECUTION_STARTED",
            "progress",
            "progress",
            "EXECUTION_COMPLETED",
            "SUBAGENT_REPORT"
        ]
    );
    for e in &events {
        assert_eq!(e.stream_id, "stream-1");
        assert_eq!(e.worker_id, "ev-1");
        assert_eq!(
            e.execution_id, "ev-1",
            "execution id defaults to the worker id"
        );
    }
    assert!(events.windows(2).all(|p| p[0].timestamp <= p[1].timestamp));
    assert_eq!(events[1].data, json!({"step": "read", "words": 3}));

    let completed = &events[3].data;
    assert_eq!(
        completed,
        &json!({"worker_id": "ev-1", "colony_id": "col-7", "task": "alpha beta gamma",
            "success": true, "error": null, "output_keys": ["summary", "words"]})
    );
    let report = &events[4].data;
    let fields: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "colony_id",
            "data",
            "duration_seconds",
            "error",
            "status",
            "summary",
            "task",
            "tokens_used",
            "worker_id"
        ]
    );
    assert_eq!(report["worker_id"], "ev-1");
    assert_eq!(report["colony_id"], "col-7");
    assert_eq!(report["task"], "alpha beta gamma");
    assert_eq!(report["status"], "success");
    assert_eq!(report["summary"], "Summary: alpha beta gamma");
    assert_eq!(report["data"], Value::Object(result.data.clone()));
    assert_eq!(report["error"], Value::Null);
    assert_eq!(report["tokens_used"], 0);
    let duration = report["duration_seconds"].as_f64().unwrap();
    assert!(duration > 0.0 && duration < 10.0, "{duration}");
    assert_eq!(duration, result.duration_seconds);
}

#[tokio::test]
async fn failed_run_publishes_execution_failed_then_the_report() {
    let bus = EventBus::new();
    let mut sub = watch(&bus, "ev-fail");
    let w = worker(
        "probe-fixture",
        probe_spec("ev-fail", "fail", json!({"error": "nope"})),
        &bus,
    )
    .await;
    w.run().await.unwrap();
    let events = drain(&mut sub);
    assert_eq!(
        types(&events),
        ["EXECUTION_STARTED", "EXECUTION_FAILED", "SUBAGENT_REPORT"]
    );
    assert_eq!(events[1].data["success"], false);
    assert_eq!(events[1].data["error"], "nope");
    assert_eq!(events[1].data["output_keys"], json!([]));
    assert_eq!(events[2].data["status"], "failed");
}

#[tokio::test]
async fn a_crash_publishes_only_the_report() {
    let bus = EventBus::new();
    let mut sub = watch(&bus, "ev-trap");
    let w = worker(
        "probe-fixture",
        probe_spec("ev-trap", "trap", json!({})),
        &bus,
    )
    .await;
    w.run().await.unwrap();
    let events = drain(&mut sub);
    assert_eq!(types(&events), ["EXECUTION_STARTED", "SUBAGENT_REPORT"]);
    let summary = events[1].data["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Worker crashed: worker 'ev-trap' (plugin 'probe-fixture')"),
        "{summary}"
    );
}

#[tokio::test]
async fn guest_events_are_validated() {
    let bus = EventBus::new();
    let mut sub = bus.subscribe(EventFilter::all().types([EventType::Custom("tick".into())]));
    let big = format!(
        "{{\"pad\": \"{}\"}}",
        "x".repeat(colony::Limits::default().max_event_data_bytes)
    );
    let input = json!({"events": [
        {"type": "tick", "data": "{\"n\": 1}"},
        {"type": "SUBAGENT_REPORT", "data": "{}"},
        {"type": "bad type", "data": "{}"},
        {"type": "tick", "data": "{oops"},
        {"type": "tick", "data": big},
    ]});
    let w = worker("probe-fixture", probe_spec("emitter", "emit", input), &bus).await;
    let result = w.run().await.unwrap();
    let answers = result.output["answers"].as_array().unwrap().clone();
    assert_eq!(answers[0], json!({"ok": true}));
    let errors: Vec<&str> = answers[1..]
        .iter()
        .map(|a| a["error"].as_str().unwrap())
        .collect();
    assert!(errors[0].contains("reserved for the host"), "{}", errors[0]);
    assert!(
        errors[1].contains("outside [A-Za-z0-9_.-]"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].starts_with("event data is not valid JSON"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].contains("over the limit of 65536 bytes"),
        "{}",
        errors[3]
    );
    let published = drain(&mut sub);
    assert_eq!(published.len(), 1, "only the valid event is published");
    assert_eq!(published[0].data, json!({"n": 1}));
}

#[tokio::test]
async fn subscriptions_filter_by_type_and_worker() {
    let bus = EventBus::new();
    let mut reports_of_a = bus.subscribe(
        EventFilter::all()
            .types([EventType::SubagentReport])
            .worker("fa"),
    );
    let mut all_reports = bus.subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let a = worker("silent-agent", WorkerSpec::ephemeral("fa", "x"), &bus).await;
    let b = worker("silent-agent", WorkerSpec::ephemeral("fb", "y"), &bus).await;
    a.start().unwrap();
    b.start().unwrap();
    a.wait().await;
    b.wait().await;
    let only_a = drain(&mut reports_of_a);
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].worker_id, "fa");
    let mut both: Vec<String> = drain(&mut all_reports)
        .iter()
        .map(|e| e.worker_id.clone())
        .collect();
    both.sort();
    assert_eq!(both, ["fa", "fb"]);
}

#[tokio::test]
async fn worker_folder_holds_events_jsonl_and_result_json() {
    let dir = tempfile::tempdir().unwrap();
    let bus = EventBus::new();
    let mut sub = watch(&bus, "stored");
    let spec = WorkerSpec::ephemeral("stored", "keep this").with_storage(dir.path());
    let w = worker("echo-agent", spec, &bus).await;
    let result = w.run().await.unwrap();
    let published = drain(&mut sub);

    let lines = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let stored: Vec<AgentEvent> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(stored, published);

    let on_disk: colony::WorkerResult =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(on_disk, result);
    // The guest's appended summary is a conversation part on disk.
    let part: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("conversations/parts/0000000000.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(part["role"], "assistant");
    assert_eq!(part["content"], "keep this");
    assert_eq!(part["agent_id"], "stored");
}

#[tokio::test]
async fn a_slow_subscriber_never_loses_a_report() {
    let bus = EventBus::new();
    let mut slow = bus.subscribe_with_capacity(EventFilter::all(), 1);
    let mut workers = Vec::new();
    for i in 0..20 {
        let w = worker(
            "echo-agent",
            WorkerSpec::ephemeral(format!("s{i}"), "a b c"),
            &bus,
        )
        .await;
        w.start().unwrap();
        workers.push(w);
    }
    for w in &workers {
        w.wait().await;
    }
    let mut reports = 0;
    let mut lagged = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(50), slow.recv()).await {
            Ok(Ok(e)) if e.event_type == EventType::SubagentReport => reports += 1,
            Ok(Ok(_)) => {}
            Ok(Err(colony::RecvError::Lagged(n))) => lagged += n,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => break,
        }
    }
    assert_eq!(reports, 20, "every report arrives");
    assert!(lagged > 0, "dropped ordinary events are announced");
}

/// The WIT's contract for event data that is not an object: published as given.
#[tokio::test]
async fn event_data_that_is_not_an_object_is_published_as_given() {
    let bus = EventBus::new();
    let mut sub = bus.subscribe(EventFilter::all().types([EventType::Custom("tick".into())]));
    let input = json!({"events": [
        {"type": "tick", "data": "[1, 2]"},
        {"type": "tick", "data": "\"text\""},
        {"type": "tick", "data": ""},
    ]});
    let w = worker(
        "probe-fixture",
        probe_spec("plain-emitter", "emit", input),
        &bus,
    )
    .await;
    let result = w.run().await.unwrap();
    let answers = result.output["answers"].as_array().unwrap();
    assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");
    let published: Vec<_> = drain(&mut sub).into_iter().map(|e| e.data).collect();
    assert_eq!(published, [json!([1, 2]), json!("text"), json!({})]);
}

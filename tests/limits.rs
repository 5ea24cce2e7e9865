//! Every limit: a test that it is obeyed (an honest guest within it is unaffected) and a
//! test that it is enforced (a guest past it gets the named error). The hostile suite
//! covers the limits hostile guests hit (memory, run time, event rate, output).

use std::time::{Duration, Instant};

use colony::{
    AllocatorKind, EventBus, EventFilter, EventType, Manifest, Plugin, PluginError, ReportStatus,
    Runtime, RuntimeConfig, Worker, WorkerError, WorkerSpec, WorkerState,
};
use colony_tests::{drain, guest_path, probe_spec, runtime};
use serde_json::{Value, json};

/// The probe fixture as a plugin whose manifest sets `limits` (TOML lines).
fn probe_with(limits: &str) -> Plugin {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.toml");
    let text = format!(
        "component = {:?}\n[limits]\n{limits}\n",
        guest_path("probe-fixture").display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    runtime()
        .plugin_from_manifest(Manifest::load(&path).unwrap())
        .unwrap()
}

/// Runs the probe of `plugin` as worker `id`, doing `action` with `input`.
async fn probe(
    plugin: &Plugin,
    id: &str,
    action: &str,
    input: Value,
) -> (WorkerState, colony::WorkerResult) {
    run(plugin, probe_spec(id, action, input), None).await
}

async fn run(
    plugin: &Plugin,
    spec: WorkerSpec,
    bus: Option<EventBus>,
) -> (WorkerState, colony::WorkerResult) {
    let w = Worker::new(plugin, spec, bus).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(20), w.run())
        .await
        .unwrap()
        .unwrap();
    (w.state(), result)
}

#[tokio::test]
async fn memory_within_the_limit_is_usable() {
    let plugin = probe_with("memory_bytes = 67108864");
    let (state, result) = probe(&plugin, "alloc-32", "alloc", json!({"mib": 32})).await;
    assert_eq!(state, WorkerState::Completed, "{result:?}");
    assert_eq!(result.output["sum"], 32u64 << 20);
    let (state, result) = probe(&plugin, "alloc-80", "alloc", json!({"mib": 80})).await;
    assert_eq!(state, WorkerState::Failed);
    assert!(
        result
            .error
            .unwrap()
            .contains("memory limit exceeded: 64 MiB")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_time_is_limited_per_turn() {
    let plugin = probe_with("turn_timeout = \"300ms\"");
    let bus = EventBus::new();
    let mut turns = bus.subscribe(EventFilter::all().types([EventType::TurnCompleted]));
    let w = Worker::new(
        &plugin,
        WorkerSpec::persistent("turns", "").with_input(json!({"action": "echo"})),
        Some(bus),
    )
    .unwrap();
    w.start().unwrap();
    w.inject("quick").unwrap();
    colony_tests::next_event(&mut turns, Duration::from_secs(5)).await;
    assert_eq!(
        w.state(),
        WorkerState::Running,
        "a quick turn is within the limit"
    );
    w.inject("spin").unwrap();
    let begun = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(5), w.wait())
        .await
        .unwrap();
    assert_eq!(w.state(), WorkerState::Failed);
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "{:?}",
        begun.elapsed()
    );
    let error = result.error.unwrap();
    assert!(
        error.contains("time limit exceeded: turn 2 took longer than 300ms"),
        "{error}"
    );
}

#[tokio::test]
async fn run_time_is_limited_per_run() {
    let plugin = probe_with("run_timeout = \"300ms\"");
    let (state, _) = probe(&plugin, "in-time", "echo", json!({})).await;
    assert_eq!(state, WorkerState::Completed);
    let (state, result) = probe(&plugin, "too-slow", "sleep", json!({})).await;
    assert_eq!(state, WorkerState::Failed);
    assert!(
        result
            .error
            .unwrap()
            .contains("time limit exceeded: run took longer than 300ms")
    );
}

#[tokio::test]
async fn inbox_waits_are_capped() {
    let plugin = probe_with("max_inbox_wait = \"100ms\"");
    let begun = Instant::now();
    let (state, result) = probe(&plugin, "capped", "wait", json!({})).await;
    assert_eq!(state, WorkerState::Completed);
    assert_eq!(
        result.output["got"],
        Value::Null,
        "the wait ended empty at the cap"
    );
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "{:?}",
        begun.elapsed()
    );

    let w = Worker::new(&plugin, probe_spec("served", "wait", json!({})), None).unwrap();
    w.inject("in time").unwrap();
    let result = w.run().await.unwrap();
    assert_eq!(result.output["got"], "in time");
}

#[tokio::test]
async fn the_inbox_holds_at_most_its_capacity() {
    let plugin = probe_with("inbox_capacity = 2");
    let w = Worker::new(&plugin, WorkerSpec::persistent("full", ""), None).unwrap();
    w.inject("one").unwrap();
    w.inject("two").unwrap();
    let err = w.inject("three").unwrap_err();
    assert!(
        matches!(err, WorkerError::InboxFull { capacity: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn report_data_is_limited_in_size() {
    let plugin = probe_with("max_report_data_bytes = 100");
    let fits = format!("{{\"p\": \"{}\"}}", "x".repeat(100 - 9));
    let over = format!("{{\"p\": \"{}\"}}", "x".repeat(100 - 8));
    let input = json!({"reports": [
        {"status": "success", "summary": "fits", "data": fits},
        {"status": "success", "summary": "over", "data": over},
    ]});
    let (_, result) = run(&plugin, probe_spec("data-size", "report", input), None).await;
    let answers = &result.output["answers"];
    assert_eq!(answers[0], json!({"ok": true}));
    assert_eq!(
        answers[1]["error"],
        "report data is 101 bytes, over the limit of 100 bytes"
    );
    assert_eq!(result.summary, "fits");
}

#[tokio::test]
async fn log_lines_are_truncated_at_the_limit() {
    let plugin = probe_with("max_log_line_bytes = 10");
    let bus = EventBus::new();
    let mut logs = bus.subscribe(EventFilter::all().types([EventType::WorkerLog]));
    run(
        &plugin,
        probe_spec("short", "log", json!({"text": "0123456789"})),
        Some(bus.clone()),
    )
    .await;
    run(
        &plugin,
        probe_spec("long", "log", json!({"text": "0123456789abc"})),
        Some(bus),
    )
    .await;
    let messages: Vec<Value> = drain(&mut logs)
        .into_iter()
        .map(|e| e.data["message"].clone())
        .collect();
    assert_eq!(messages, [json!("0123456789"), json!("0123456789…")]);
}

#[tokio::test]
async fn output_becomes_log_events_until_the_budget_is_spent() {
    let bus = EventBus::new();
    let mut logs = bus.subscribe(EventFilter::all().types([EventType::WorkerLog]));
    let generous = probe_with("max_output_log_bytes = 1000");
    run(
        &generous,
        probe_spec("prints", "print", json!({"lines": 3})),
        Some(bus.clone()),
    )
    .await;
    let lines: Vec<(String, String)> = drain(&mut logs)
        .into_iter()
        .map(|e| {
            (
                e.data["stream"].as_str().unwrap().to_owned(),
                e.data["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("stdout", "line 0"),
        ("stdout", "line 1"),
        ("stdout", "line 2"),
        ("stderr", "to stderr"),
    ];
    assert_eq!(lines, expected.map(|(s, m)| (s.to_owned(), m.to_owned())));

    let tight = probe_with("max_output_log_bytes = 14");
    run(
        &tight,
        probe_spec("prints-more", "print", json!({"lines": 5})),
        Some(bus),
    )
    .await;
    let messages: Vec<String> = drain(&mut logs)
        .into_iter()
        .map(|e| e.data["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages[..2], ["line 0", "line 1"]);
    assert!(messages[2].contains("output limit reached"), "{messages:?}");
    assert_eq!(messages.len(), 3);
}

#[tokio::test]
async fn events_within_the_rate_are_all_published() {
    let plugin = probe_with("max_events_per_second = 500");
    let bus = EventBus::new();
    let mut ticks = bus.subscribe(EventFilter::all().types([EventType::Custom("tick".into())]));
    let (state, _) = run(
        &plugin,
        probe_spec("steady", "emit_many", json!({"count": 400})),
        Some(bus.clone()),
    )
    .await;
    assert_eq!(state, WorkerState::Completed);
    assert_eq!(drain(&mut ticks).len(), 400);
    let (state, result) = run(
        &plugin,
        probe_spec("bursty", "emit_many", json!({"count": 2000})),
        Some(bus),
    )
    .await;
    assert_eq!(state, WorkerState::Failed);
    assert!(
        result
            .error
            .unwrap()
            .contains("event rate limit exceeded: 500 events per second")
    );
}

#[tokio::test]
async fn conversation_parts_are_limited_in_size() {
    let plugin = probe_with("max_part_bytes = 64");
    let (state, _) = probe(
        &plugin,
        "part-ok",
        "conversation",
        json!({"append_bytes": 50}),
    )
    .await;
    assert_eq!(state, WorkerState::Completed);
    let (state, result) = probe(
        &plugin,
        "part-big",
        "conversation",
        json!({"append_bytes": 100}),
    )
    .await;
    assert_eq!(state, WorkerState::Failed);
    assert_eq!(
        result.error.as_deref(),
        Some("conversation part is 109 bytes, over the limit of 64 bytes")
    );
}

#[tokio::test]
async fn instance_counts_are_limited() {
    let (state, result) = run(
        &probe_with("instances = 1"),
        probe_spec("one-instance", "echo", json!({})),
        None,
    )
    .await;
    assert_eq!(state, WorkerState::Failed);
    assert_eq!(result.status, ReportStatus::Failed);
    let error = result.error.unwrap();
    assert!(
        error.contains("instantiation failed") && error.contains("instance"),
        "{error}"
    );
}

#[tokio::test]
async fn compilation_is_limited_in_time() {
    let err = probe_with("compile_timeout = \"1ns\"")
        .load()
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Compile { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("compilation took longer than the limit of 1ns"),
        "{err}"
    );
    probe_with("compile_timeout = \"60s\"")
        .load()
        .await
        .unwrap();
}

#[tokio::test]
async fn components_are_compiled_once_then_loaded_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    };
    let first = Runtime::with_config(config.clone()).unwrap();
    let plugin = first
        .load_plugin("echo", guest_path("echo-agent"))
        .await
        .unwrap();
    assert_eq!(plugin.from_cache(), Some(false));
    let second = Runtime::with_config(config).unwrap();
    let cached = second
        .load_plugin("echo", guest_path("echo-agent"))
        .await
        .unwrap();
    assert_eq!(cached.from_cache(), Some(true));
    assert_eq!(cached.sha256(), plugin.sha256());
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 1);
    let name = entries[0].to_str().unwrap();
    assert!(
        name.starts_with(plugin.sha256().unwrap()) && name.ends_with(".cwasm"),
        "{name}"
    );
    let w = Worker::new(&cached, WorkerSpec::ephemeral("from-cache", "a b"), None).unwrap();
    assert_eq!(w.run().await.unwrap().status, ReportStatus::Success);
}

#[test]
fn the_pooling_allocator_is_used_where_the_platform_allows() {
    let runtime = Runtime::new().unwrap();
    eprintln!("allocator: {:?}", runtime.allocator());
    let on_demand = Runtime::with_config(RuntimeConfig {
        allocator: colony::AllocatorChoice::OnDemand,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(on_demand.allocator(), AllocatorKind::OnDemand);
    if std::env::var_os("COLONY_EXPECT_POOLING").is_some() {
        assert_eq!(runtime.allocator(), AllocatorKind::Pooling);
    }
}

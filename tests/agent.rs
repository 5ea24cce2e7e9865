//! The agent loop guest end to end with the scripted model provider: tool use, budget
//! exhaustion (tokens and tool calls), max iterations, an injected message changing
//! course, ungranted tools, and no model at all.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use colony::llm::{LlmProvider, ScriptedProvider};
use colony::tools::{Tool, ToolContext, ToolError, ToolRegistry};
use colony::{
    EventBus, EventFilter, EventType, Manifest, Plugin, ReportStatus, Runtime, RuntimeConfig,
    Worker, WorkerSpec, WorkerState,
};
use colony_tests::{drain, guest_path};
use serde_json::{Value, json};

/// A tool that takes a while, so a test can inject a message while it runs.
struct Slow;

#[async_trait::async_trait]
impl Tool for Slow {
    fn name(&self) -> &str {
        "test.slow"
    }
    fn description(&self) -> &str {
        "Waits 300 ms."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object"})
    }
    async fn call(&self, _ctx: &ToolContext, _args: Value) -> Result<Value, ToolError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(json!({"waited_ms": 300}))
    }
}

fn runtime_with(script: Value) -> Runtime {
    let provider: Arc<dyn LlmProvider> =
        Arc::new(ScriptedProvider::parse(&script.to_string()).unwrap());
    let mut tools = ToolRegistry::with_builtins();
    tools.register(Arc::new(Slow));
    Runtime::with_parts(RuntimeConfig::default(), Some(provider), tools).unwrap()
}

fn agent_plugin(runtime: &Runtime, dir: &Path, extra: &str) -> Plugin {
    let path = dir.join("agent.toml");
    let component = guest_path("agent-loop").display().to_string();
    std::fs::write(&path, format!("component = {component:?}\n{extra}\n")).unwrap();
    runtime
        .plugin_from_manifest(Manifest::load(&path).unwrap())
        .unwrap()
}

const TOOLS: &str = "[grants]\ntools = [\"files.read\", \"time.now\", \"test.slow\"]";

struct Run {
    worker: Worker,
    result: colony::WorkerResult,
    events: Vec<colony::AgentEvent>,
    home: tempfile::TempDir,
}

impl Run {
    /// The contents of the stored conversation parts with `role`, in order.
    fn contents(&self, role: &str) -> Vec<String> {
        self.conversation()
            .iter()
            .filter(|p| p["role"] == role)
            .map(|p| p["content"].as_str().unwrap().to_owned())
            .collect()
    }

    fn conversation(&self) -> Vec<Value> {
        let mut parts: Vec<(u64, Value)> =
            std::fs::read_dir(self.home.path().join("w/conversations/parts"))
                .unwrap()
                .map(|e| {
                    let v: Value =
                        serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
                    (v["seq"].as_u64().unwrap(), v)
                })
                .collect();
        parts.sort_by_key(|(seq, _)| *seq);
        parts.into_iter().map(|(_, v)| v).collect()
    }
}

async fn run(
    script: Value,
    manifest: &str,
    spec: impl FnOnce(WorkerSpec) -> WorkerSpec,
    during: Option<&str>,
) -> Run {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("w/data")).unwrap();
    std::fs::write(
        home.path().join("w/data/notes.txt"),
        "the launch is on Tuesday",
    )
    .unwrap();
    let runtime = runtime_with(script);
    let plugin = agent_plugin(&runtime, home.path(), manifest);
    let bus = EventBus::new();
    let mut events = bus.subscribe(EventFilter::all());
    let mut iterations =
        bus.subscribe(EventFilter::all().types([EventType::Custom("iteration".into())]));
    let spec = spec(
        WorkerSpec::ephemeral("agent", "Find out when the launch is.")
            .with_storage(home.path().join("w")),
    );
    let worker = Worker::new(&plugin, spec, Some(bus)).unwrap();
    worker.start().unwrap();
    if let Some(message) = during {
        // Mid-run: once the first iteration is under way.
        colony_tests::next_event(&mut iterations, Duration::from_secs(10)).await;
        worker.inject(message).unwrap();
    }
    let result = tokio::time::timeout(Duration::from_secs(20), worker.wait())
        .await
        .unwrap();
    let events = drain(&mut events);
    Run {
        worker,
        result,
        events,
        home,
    }
}

#[tokio::test]
async fn the_loop_calls_tools_and_reports_the_answer() {
    let script = json!([
        {"text": "Let me read the notes.", "tool_calls": [{"name": "files.read", "arguments": {"path": "/data/notes.txt"}}],
         "usage": {"input_tokens": 30, "output_tokens": 10}},
        {"text": "The launch is on Tuesday.", "usage": {"input_tokens": 50, "output_tokens": 6}},
    ]);
    let r = run(script, TOOLS, |s| s, None).await;
    assert_eq!(r.worker.state(), WorkerState::Completed, "{:?}", r.result);
    assert_eq!(r.result.status, ReportStatus::Success);
    assert_eq!(r.result.summary, "The launch is on Tuesday.");
    assert_eq!(r.result.data["iterations"], 2);
    assert_eq!(r.result.data["tool_calls"], 1);
    assert_eq!(
        r.result.tokens_used, 96,
        "input + output tokens summed over calls"
    );
    let report = r
        .events
        .iter()
        .find(|e| e.event_type == EventType::SubagentReport)
        .unwrap();
    assert_eq!(report.data["tokens_used"], 96);
    // The tool's result went back to the model, and is in the conversation on disk.
    let parts = r.conversation();
    let roles: Vec<&str> = parts.iter().map(|p| p["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert!(
        parts[2]["content"]
            .as_str()
            .unwrap()
            .contains("the launch is on Tuesday"),
        "{:?}",
        parts[2]
    );
    assert_eq!(parts[2]["tool_use_id"], "call_0");
    // Text streamed as LLM_TEXT_DELTA events.
    let streamed: String = r
        .events
        .iter()
        .filter(|e| e.event_type == EventType::LlmTextDelta)
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, "Let me read the notes.The launch is on Tuesday.");
}

#[tokio::test]
async fn a_spent_token_budget_ends_model_calls_and_the_report_says_so() {
    let step = json!({"tool_calls": [{"name": "time.now"}], "usage": {"input_tokens": 40, "output_tokens": 20}});
    let script = json!([step, step, step, {"text": "never reached"}]);
    let r = run(script, TOOLS, |s| s.with_budgets(Some(100), None), None).await;
    assert_eq!(r.worker.state(), WorkerState::Completed, "{:?}", r.result);
    assert_eq!(r.result.status, ReportStatus::Partial);
    assert!(
        r.result.summary.starts_with(
            "Stopped early: token budget exhausted (token budget of 100 spent (120 used))"
        ),
        "{}",
        r.result.summary
    );
    assert_eq!(r.result.data["budget_limited"], true);
    assert_eq!(r.result.data["iterations"], 2);
    assert_eq!(r.result.tokens_used, 120);
    assert_eq!(r.result.tool_calls_used, 2);
}

#[tokio::test]
async fn a_spent_tool_call_budget_refuses_further_calls() {
    let script = json!([
        {"tool_calls": [{"name": "time.now"}, {"name": "time.now"}, {"name": "time.now"}]},
        {"text": "Done with what I could get."},
    ]);
    let r = run(script, TOOLS, |s| s.with_budgets(None, Some(2)), None).await;
    assert_eq!(r.result.status, ReportStatus::Success);
    assert_eq!(r.result.data["budget_limited"], true);
    // Three asked for, two allowed: the result counts what the budget allowed.
    assert_eq!(r.result.tool_calls_used, 2);
    let tool_results: Vec<String> = r.contents("tool");
    assert_eq!(tool_results.len(), 3);
    assert!(tool_results[0].contains("rfc3339") && tool_results[1].contains("rfc3339"));
    assert!(
        tool_results[2].contains("tool-call budget of 2 spent"),
        "{}",
        tool_results[2]
    );
}

#[tokio::test]
async fn the_loop_stops_at_max_iterations() {
    let step = json!({"tool_calls": [{"name": "time.now"}]});
    let script = json!([step, step, step, step, step]);
    let r = run(
        script,
        TOOLS,
        |s| s.with_input(json!({"max_iterations": 3})),
        None,
    )
    .await;
    assert_eq!(r.result.status, ReportStatus::Partial);
    assert_eq!(
        r.result.summary,
        "Stopped after 3 iterations without a final answer."
    );
    assert_eq!(r.result.data["tool_calls"], 3);
}

#[tokio::test]
async fn an_injected_message_changes_course() {
    let slow = json!({"text": "Working on it.", "tool_calls": [{"name": "test.slow"}]});
    let script = json!([
        slow, slow, slow, slow, slow,
        {"when": "[SOFT TIMEOUT]", "text": "Wrapping up early as asked: no launch date yet."},
    ]);
    let r = run(script, TOOLS, |s| s, Some("[SOFT TIMEOUT] Wrap up now.")).await;
    assert_eq!(r.result.status, ReportStatus::Success);
    assert_eq!(
        r.result.summary,
        "Wrapping up early as asked: no launch date yet."
    );
    assert_eq!(
        r.result.data["iterations"], 2,
        "the message arrived during the first tool call"
    );
    let users: Vec<String> = r.contents("user");
    assert_eq!(
        users,
        [
            "Find out when the launch is.",
            "[SOFT TIMEOUT] Wrap up now."
        ]
    );
}

#[tokio::test]
async fn ungranted_and_unknown_tools_are_clear_errors_to_the_guest() {
    let script = json!([
        {"tool_calls": [{"name": "files.write", "arguments": {"path": "/data/x", "content": "y"}}, {"name": "rm.rf"}]},
        {"text": "I could not do it."},
    ]);
    let r = run(script, "[grants]\ntools = [\"time.now\"]", |s| s, None).await;
    assert_eq!(r.worker.state(), WorkerState::Completed);
    let tool_results: Vec<String> = r.contents("tool");
    assert!(
        tool_results[0].contains("tool 'files.write' is not granted to plugin 'agent'"),
        "{}",
        tool_results[0]
    );
    assert!(
        tool_results[1].contains("no tool named 'rm.rf'"),
        "{}",
        tool_results[1]
    );
    assert!(!r.home.path().join("w/data/x").exists());
}

#[tokio::test]
async fn without_a_model_the_run_fails_with_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let runtime = colony_tests::runtime();
    let plugin = agent_plugin(&runtime, home.path(), "");
    let worker = Worker::new(&plugin, WorkerSpec::ephemeral("no-model", "think"), None).unwrap();
    let result = worker.run().await.unwrap();
    assert_eq!(worker.state(), WorkerState::Failed);
    assert_eq!(
        result.error.as_deref(),
        Some("no model: no model is configured on this host")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colony_task_carries_its_own_budget() {
    let home = tempfile::tempdir().unwrap();
    let step = json!({"tool_calls": [{"name": "time.now"}], "usage": {"input_tokens": 40, "output_tokens": 20}});
    let runtime = runtime_with(json!([step, step, step]));
    let plugin = agent_plugin(&runtime, home.path(), TOOLS);
    let colony = colony::Colony::open(
        runtime,
        colony::ColonyConfig::new("budgets", home.path().join("home")),
    )
    .unwrap();
    let task = colony::Task::new("spend").with_budgets(Some(50), None);
    let ids = colony.run_parallel(&plugin, vec![task]).unwrap();
    let report = colony
        .wait_for_reports(&ids, Duration::from_secs(10))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(report.status, ReportStatus::Partial);
    assert_eq!(report.data["budget_limited"], true);
    assert_eq!(report.tokens_used, 60);
    colony.stop_all().await;
}

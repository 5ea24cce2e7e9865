//! Traces as an operator receives them: real OTLP/HTTP from the host (the `colony`
//! binary configured only by the standard `OTEL_*` variables, and a colony on NATS with a
//! node in another process), decoded here with the official protobuf definitions by a
//! small OTLP receiver, and checked as a tree: colony → worker → chat / execute_tool,
//! persistent turns, attribute values, token counts equal to the budget accounting, and
//! one trace across a NATS node. The `--trace-file` output is checked the same way.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

use support::{Nats, NodeProcess, guest};

/// An OTLP/HTTP (protobuf) receiver on loopback, keeping every span it is sent.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    async fn start() -> Self {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    let mut kept = kept.lock().unwrap();
                    for resource in request.resource_spans {
                        for scope in resource.scope_spans {
                            kept.extend(scope.spans);
                        }
                    }
                    (
                        [("content-type", "application/x-protobuf")],
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, spans }
    }

    /// The spans received so far, once `enough` says they are all there.
    async fn wait_for(&self, what: &str, enough: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let begun = Instant::now();
        loop {
            let spans = self.spans.lock().unwrap().clone();
            if enough(&spans) {
                return spans;
            }
            assert!(
                begun.elapsed() < Duration::from_secs(60),
                "{what}: got {:#?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An attribute's value as JSON (strings, integers, booleans, arrays of strings).
fn attr(span: &Span, key: &str) -> Value {
    let Some(value) = span
        .attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
    else {
        return Value::Null;
    };
    match value {
        any_value::Value::StringValue(s) => json!(s),
        any_value::Value::IntValue(i) => json!(i),
        any_value::Value::BoolValue(b) => json!(b),
        any_value::Value::DoubleValue(d) => json!(d),
        any_value::Value::ArrayValue(a) => a
            .values
            .iter()
            .filter_map(|v| match &v.value {
                Some(any_value::Value::StringValue(s)) => Some(json!(s)),
                _ => None,
            })
            .collect(),
        other => json!(format!("{other:?}")),
    }
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id && s.trace_id == parent.trace_id)
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A home with a host config (scripted model, shared compile cache) and a manifest of
/// the agent-loop guest granted `time.now` (not `files.write`: its calls fail).
fn home_with_agent() -> (tempfile::TempDir, std::path::PathBuf) {
    let home = tempfile::tempdir().unwrap();
    support::write_scripted_host_config(home.path());
    let manifest = home.path().join("agent.toml");
    std::fs::write(
        &manifest,
        format!(
            "name = \"agent-loop\"\ncomponent = {:?}\n[grants]\ntools = [\"time.now\"]\n",
            guest("agent_loop")
        ),
    )
    .unwrap();
    (home, manifest)
}

fn colony_cli(home: &Path, receiver: &Receiver) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_colony"));
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)
        .env("OTEL_SERVICE_NAME", "colony-under-test")
        .arg("--home")
        .arg(home)
        .arg("--config")
        .arg(home.join("host.toml"));
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_is_one_trace_of_colony_workers_model_and_tool_calls() {
    let receiver = Receiver::start().await;
    let (home, manifest) = home_with_agent();
    let tasks = home.path().join("tasks.txt");
    std::fs::write(&tasks, "summarise the notes\nsummarise the news\n").unwrap();
    let trace_file = home.path().join("spans.jsonl");
    let status = colony_cli(home.path(), &receiver)
        .arg("--trace-file")
        .arg(&trace_file)
        .arg("fanout")
        .arg(&manifest)
        .arg("--tasks")
        .arg(&tasks)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let spans = receiver
        .wait_for("a colony, two workers and their calls", |spans| {
            named(spans, "invoke_agent cli").len() == 1
                && named(spans, "invoke_agent agent-loop").len() == 2
                && named(spans, "chat scripted").len() == 4
        })
        .await;

    // The colony's span is the root; both workers are its children, in its trace.
    let colonies = named(&spans, "invoke_agent cli");
    assert_eq!(colonies.len(), 1, "{spans:#?}");
    let colony = colonies[0];
    assert!(colony.parent_span_id.is_empty());
    assert_eq!(attr(colony, "gen_ai.operation.name"), "invoke_agent");
    assert!(
        spans.iter().all(|s| s.trace_id == colony.trace_id),
        "one trace"
    );
    let workers = named(&spans, "invoke_agent agent-loop");
    assert_eq!(workers.len(), 2);
    let journal = colony::Journal::open(home.path().join("journal.db")).unwrap();
    for worker in workers {
        assert_eq!(worker.parent_span_id, colony.span_id);
        assert_eq!(attr(worker, "gen_ai.operation.name"), "invoke_agent");
        assert_eq!(attr(worker, "gen_ai.agent.name"), "agent-loop");
        assert_eq!(attr(worker, "colony.id"), "cli");
        assert_eq!(
            attr(worker, "colony.plugin.sha256"),
            sha256_hex(&guest("agent_loop"))
        );
        let id = attr(worker, "gen_ai.agent.id");
        let record = journal.worker(id.as_str().unwrap()).unwrap().unwrap();
        let result = record.result.unwrap();
        assert_eq!(attr(worker, "colony.worker.state"), "completed");
        assert_eq!(attr(worker, "colony.report.status"), "success");
        // Lifecycle and the report as span events.
        let events: Vec<&str> = worker.events.iter().map(|e| e.name.as_str()).collect();
        for expected in [
            "EXECUTION_STARTED",
            "EXECUTION_COMPLETED",
            "SUBAGENT_REPORT",
        ] {
            assert!(events.contains(&expected), "{events:?}");
        }
        assert!(!events.contains(&"LLM_TEXT_DELTA"), "model text is content");

        // Its model calls: GenAI attributes, tokens adding up to what the budget counted.
        let calls = children(&spans, worker);
        let chats: Vec<&&Span> = calls.iter().filter(|s| s.name == "chat scripted").collect();
        assert_eq!(chats.len(), 2);
        let mut tokens = 0;
        for chat in &chats {
            assert_eq!(attr(chat, "gen_ai.operation.name"), "chat");
            assert_eq!(attr(chat, "gen_ai.request.model"), "scripted");
            assert_eq!(attr(chat, "gen_ai.provider.name"), "scripted");
            assert!(attr(chat, "gen_ai.response.finish_reasons").is_array());
            tokens += attr(chat, "gen_ai.usage.input_tokens").as_i64().unwrap()
                + attr(chat, "gen_ai.usage.output_tokens").as_i64().unwrap();
            assert!(
                attr(chat, "gen_ai.input.messages").is_null(),
                "no content by default"
            );
        }
        assert_eq!(tokens as u64, result.tokens_used);
        assert_eq!(
            attr(worker, "colony.tokens_used"),
            json!(result.tokens_used)
        );

        // Its tool calls: one granted and answered, one refused (an error span).
        let tool = |name: &str| {
            calls
                .iter()
                .find(|s| s.name == format!("execute_tool {name}"))
                .unwrap_or_else(|| panic!("no {name} span"))
        };
        let now = tool("time.now");
        assert_eq!(attr(now, "gen_ai.tool.name"), "time.now");
        assert_eq!(attr(now, "gen_ai.operation.name"), "execute_tool");
        assert_ne!(
            now.status.as_ref().map_or(0, |s| s.code),
            2,
            "time.now failed"
        );
        let write = tool("files.write");
        assert_eq!(write.status.as_ref().unwrap().code, 2, "an error status");
        assert!(
            write
                .status
                .as_ref()
                .unwrap()
                .message
                .contains("not granted")
        );
        assert_eq!(attr(write, "error.type"), "tool_error");
    }

    // The trace file has the same spans, as OTLP JSON lines.
    let text = std::fs::read_to_string(&trace_file).unwrap();
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        let request: Value = serde_json::from_str(line).unwrap();
        for resource in request["resourceSpans"].as_array().unwrap() {
            for scope in resource["scopeSpans"].as_array().unwrap() {
                for span in scope["spans"].as_array().unwrap() {
                    assert_eq!(span["traceId"].as_str().unwrap().len(), 32, "hex trace ids");
                    names.push(span["name"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    names.sort();
    let mut received: Vec<String> = spans.iter().map(|s| s.name.clone()).collect();
    received.sort();
    assert_eq!(names, received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_persistent_turn_is_a_span_of_its_overseer() {
    let receiver = Receiver::start().await;
    let (home, _) = home_with_agent();
    let mut chat = colony_cli(home.path(), &receiver)
        .arg("chat")
        .arg(guest("chat_agent"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = chat.stdin.take().unwrap();
        writeln!(stdin, "first\nsecond").unwrap();
    }
    assert!(chat.wait().unwrap().success());
    let spans = receiver
        .wait_for("the overseer and its turns", |spans| {
            named(spans, "invoke_agent chat_agent").len() == 3
        })
        .await;
    let overseer = named(&spans, "invoke_agent chat_agent")
        .into_iter()
        .find(|s| attr(s, "colony.turn").is_null())
        .expect("the overseer's run");
    assert_eq!(attr(overseer, "colony.worker.mode"), "persistent");
    let turns: HashMap<i64, &Span> = children(&spans, overseer)
        .into_iter()
        .filter_map(|s| attr(s, "colony.turn").as_i64().map(|t| (t, s)))
        .collect();
    assert_eq!(turns.len(), 2, "{spans:#?}");
    for turn in turns.values() {
        assert_eq!(
            attr(turn, "gen_ai.agent.id"),
            attr(overseer, "gen_ai.agent.id")
        );
        let events: Vec<&str> = turn.events.iter().map(|e| e.name.as_str()).collect();
        assert!(events.contains(&"TURN_COMPLETED"), "{events:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_a_nats_node_joins_its_colony_trace() {
    let receiver = Receiver::start().await;
    let nats = Nats::start();
    let node_home = tempfile::tempdir().unwrap();
    let _node = NodeProcess::spawn_with_env(
        &nats,
        node_home.path(),
        "traced",
        &[],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)],
    )
    .wait_serving();

    let home = tempfile::tempdir().unwrap();
    let mut config = colony::RuntimeConfig::default();
    config.telemetry.endpoint = Some(receiver.url.clone());
    let runtime = colony::Runtime::with_config(config).unwrap();
    let mut colony_config = colony::ColonyConfig::new("traced", home.path());
    colony_config.nats = Some(nats.url.clone());
    colony_config.max_batch = 10;
    let colony = colony::Colony::connect(runtime.clone(), colony_config)
        .await
        .unwrap();
    let plugin = runtime
        .load_plugin("probe_fixture", guest("probe_fixture"))
        .await
        .unwrap();
    let ids = colony
        .run_parallel(&plugin, support::tasks(3, json!({"action": "echo"})))
        .unwrap();
    colony
        .wait_for_reports(&ids, Duration::from_secs(60))
        .await
        .unwrap();
    colony.stop_all().await;
    let telemetry = runtime.telemetry().unwrap().clone();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();

    let spans = receiver
        .wait_for("the node's worker spans", |spans| {
            named(spans, "invoke_agent probe_fixture").len() == 3
                && named(spans, "invoke_agent traced").len() == 1
        })
        .await;
    let colony_span = named(&spans, "invoke_agent traced")[0];
    for worker in named(&spans, "invoke_agent probe_fixture") {
        assert_eq!(worker.trace_id, colony_span.trace_id, "one trace");
        assert_eq!(worker.parent_span_id, colony_span.span_id);
        assert!(ids.contains(&attr(worker, "gen_ai.agent.id").as_str().unwrap().to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_and_completions_are_recorded_only_when_asked() {
    let (home, manifest) = home_with_agent();
    let file = home.path().join("spans.jsonl");
    let mut config = colony::RuntimeConfig::load(home.path().join("host.toml")).unwrap();
    config.telemetry.file = Some(file.clone());
    config.telemetry.capture_content = true;
    let runtime = colony::Runtime::with_config(config).unwrap();
    let plugin = runtime.load_manifest(&manifest).await.unwrap();
    let spec = colony::WorkerSpec::ephemeral("w-content", "summarise the notes");
    let worker = colony::Worker::new(&plugin, spec, None).unwrap();
    assert_eq!(
        worker.run().await.unwrap().status,
        colony::ReportStatus::Success
    );
    let telemetry = runtime.telemetry().unwrap().clone();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let chats: Vec<Value> = text
        .lines()
        .flat_map(|line| {
            let request: Value = serde_json::from_str(line).unwrap();
            request["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|span| span["name"] == "chat scripted")
        .collect();
    assert_eq!(chats.len(), 2);
    let value = |span: &Value, key: &str| -> String {
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| {
                a["value"]["stringValue"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    assert!(value(&chats[0], "gen_ai.input.messages").contains("summarise the notes"));
    assert!(value(&chats[0], "gen_ai.output.messages").contains("I will check the time"));
}

#[tokio::test]
async fn traces_are_off_unless_configured() {
    assert!(
        std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none(),
        "run the tests without OTEL_* variables"
    );
    assert!(!colony::telemetry::TelemetryConfig::default().is_enabled());
    assert!(colony::Runtime::new().unwrap().telemetry().is_none());
    let mut config = colony::RuntimeConfig::default();
    config.telemetry.file = Some(std::env::temp_dir().join("colony-off-test.jsonl"));
    assert!(
        colony::Runtime::with_config(config)
            .unwrap()
            .telemetry()
            .is_some()
    );
}

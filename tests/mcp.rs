//! Guests using MCP servers' tools through `tools`, against real MCP software: the
//! published `mcp-server-time` (PyPI) and a hostile server on the official Python SDK
//! (`tests/mcp-servers/hostile_server.py`), both installed by `make mcp-servers`.
//! Granted and ungranted tools, listing with schemas, a server that hangs, answers
//! 100 MB, dies mid-call (and is restarted), never answers at start, and the streamable
//! HTTP transport.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use colony::llm::{CallContext, ChatRequest, ChatResponse, LlmError, LlmProvider};
use colony::tools::ToolRegistry;
use colony::tools::mcp::McpServerConfig;
use colony::{Manifest, Plugin, Runtime, RuntimeConfig, Worker, WorkerSpec};
use colony_tests::{guest_path, target_dir};
use serde_json::{Value, json};

fn venv(program: &str) -> PathBuf {
    let path = target_dir().join("mcpvenv/bin").join(program);
    assert!(
        path.exists(),
        "{} is missing: run `make mcp-servers`",
        path.display()
    );
    path
}

fn hostile_script() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("mcp-servers/hostile_server.py")
        .display()
        .to_string()
}

fn stdio(command: PathBuf, args: &[&str]) -> McpServerConfig {
    let text = format!(
        "command = {:?}\nargs = {:?}\nstart_timeout = \"15s\"",
        command.display().to_string(),
        args
    );
    toml_config(&text)
}

fn toml_config(text: &str) -> McpServerConfig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.toml");
    std::fs::write(&path, format!("[mcp.x]\n{text}\n")).unwrap();
    RuntimeConfig::load(&path).unwrap().mcp.remove("x").unwrap()
}

fn runtime(servers: Vec<(&str, McpServerConfig)>, tool_timeout: &str) -> Runtime {
    let limits = colony::Limits {
        tool_timeout: humantime::parse_duration(tool_timeout).unwrap(),
        ..colony::Limits::default()
    };
    Runtime::with_config(RuntimeConfig {
        mcp: servers
            .into_iter()
            .map(|(n, c)| (n.to_owned(), c))
            .collect::<BTreeMap<_, _>>(),
        limits,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// The hostile fixture granted `grants`, loaded (compiled) once.
async fn caller(runtime: &Runtime, grants: &[&str]) -> Plugin {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caller.toml");
    let component = guest_path("hostile-fixture").display().to_string();
    std::fs::write(
        &path,
        format!("component = {component:?}\n[grants]\ntools = {grants:?}\n"),
    )
    .unwrap();
    let plugin = runtime
        .plugin_from_manifest(Manifest::load(&path).unwrap())
        .unwrap();
    plugin.load().await.unwrap();
    plugin
}

/// Runs the hostile fixture's `tool` attack: calls `name` with `args` from inside the
/// guest, granted `grants`. Returns the guest's output: `{"result": …}` or
/// `{"denied": …}`.
async fn call(runtime: &Runtime, grants: &[&str], name: &str, args: Value) -> Value {
    call_with(&caller(runtime, grants).await, name, args).await
}

async fn call_with(plugin: &Plugin, name: &str, args: Value) -> Value {
    let spec = WorkerSpec::ephemeral("caller", "tool")
        .with_input(json!({"attack": "tool", "arg": name, "args": args}));
    let worker = Worker::new(plugin, spec, None).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), worker.run())
        .await
        .expect("the worker ended")
        .unwrap();
    assert!(result.error.is_none(), "{result:?}");
    Value::Object(result.output)
}

/// Calls until the server answers: Python takes a while to start on a loaded machine,
/// so a call made while it (re)starts may time out; the start goes on without it, and a
/// later call finds the server up.
async fn until_answered(plugin: &Plugin, name: &str, args: Value) -> Value {
    let mut out = Value::Null;
    for _ in 0..15 {
        out = call_with(plugin, name, args.clone()).await;
        if !out["result"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    out
}

#[tokio::test]
async fn a_guest_calls_a_published_mcp_servers_tool_only_when_granted() {
    let rt = runtime(
        vec![(
            "time",
            stdio(venv("mcp-server-time"), &["--local-timezone", "UTC"]),
        )],
        "30s",
    );
    let args = json!({"timezone": "Europe/Oslo"});
    let out = call(
        &rt,
        &["mcp:time/get_current_time"],
        "mcp:time/get_current_time",
        args.clone(),
    )
    .await;
    assert!(out["result"].to_string().contains("Europe/Oslo"), "{out}");
    // The whole server granted by its name.
    let out = call(
        &rt,
        &["mcp:time"],
        "mcp:time/get_current_time",
        args.clone(),
    )
    .await;
    assert!(out["result"].to_string().contains("Europe/Oslo"), "{out}");
    // Another of its tools granted, not this one.
    let out = call(
        &rt,
        &["mcp:time/convert_time"],
        "mcp:time/get_current_time",
        args.clone(),
    )
    .await;
    assert!(
        out["denied"].as_str().unwrap().contains("not granted"),
        "{out}"
    );
    // Nothing granted.
    let out = call(&rt, &["time.now"], "mcp:time/get_current_time", args).await;
    assert!(
        out["denied"].as_str().unwrap().contains("not granted"),
        "{out}"
    );
}

/// Records the tools each model request offers, and answers at once.
#[derive(Default)]
struct Recorder(Mutex<Vec<Vec<String>>>, Mutex<Vec<Value>>);

#[async_trait::async_trait]
impl LlmProvider for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    async fn complete(
        &self,
        _: &CallContext,
        request: &ChatRequest,
    ) -> Result<ChatResponse, LlmError> {
        self.0
            .lock()
            .unwrap()
            .push(request.tools.iter().map(|t| t.name.clone()).collect());
        self.1
            .lock()
            .unwrap()
            .extend(request.tools.iter().map(|t| t.parameters.clone()));
        Ok(ChatResponse {
            text: "done".into(),
            ..Default::default()
        })
    }
}

#[tokio::test]
async fn granted_mcp_tools_are_listed_with_their_schemas() {
    let mut config = RuntimeConfig::default();
    config
        .mcp
        .insert("time".into(), stdio(venv("mcp-server-time"), &[]));
    let recorder = Arc::new(Recorder::default());
    let rt = Runtime::with_parts(
        config,
        Some(recorder.clone()),
        ToolRegistry::with_builtins(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let component = guest_path("agent-loop").display().to_string();
    std::fs::write(
        &path,
        format!("component = {component:?}\n[grants]\ntools = [\"time.now\", \"mcp:time\"]\n"),
    )
    .unwrap();
    let plugin = rt
        .plugin_from_manifest(Manifest::load(&path).unwrap())
        .unwrap();
    let worker = Worker::new(
        &plugin,
        WorkerSpec::ephemeral("lister", "what time is it"),
        None,
    )
    .unwrap();
    let result = worker.run().await.unwrap();
    assert!(result.error.is_none(), "{result:?}");
    let offered = recorder.0.lock().unwrap()[0].clone();
    assert_eq!(offered[0], "time.now");
    assert!(
        offered.contains(&"mcp:time/get_current_time".to_owned()),
        "{offered:?}"
    );
    assert!(
        offered.contains(&"mcp:time/convert_time".to_owned()),
        "{offered:?}"
    );
    let schemas = recorder.1.lock().unwrap().clone();
    assert!(
        schemas
            .iter()
            .any(|s| s["properties"]["timezone"].is_object()),
        "{schemas:?}"
    );
}

#[tokio::test]
async fn a_hostile_server_gets_timeouts_and_errors_and_is_restarted_after_it_dies() {
    let python = venv("python");
    let rt = runtime(vec![("bad", stdio(python, &[&hostile_script()]))], "2s");
    let grant = ["mcp:bad"];
    let plugin = caller(&rt, &grant).await;
    let out = until_answered(&plugin, "mcp:bad/echo", json!({"text": "hi"})).await;
    assert_eq!(out["result"]["result"], "echo: hi", "{out}");

    let begun = Instant::now();
    let out = call(&rt, &grant, "mcp:bad/hang", json!({})).await;
    assert!(
        out["denied"]
            .as_str()
            .unwrap()
            .contains("took longer than 2s"),
        "{out}"
    );
    assert!(begun.elapsed() < Duration::from_secs(10));

    // 100 MB is over the 4 MiB message bound: dropped unread, the call times out.
    let out = call(&rt, &grant, "mcp:bad/huge", json!({})).await;
    assert!(out["denied"].is_string(), "{out}");

    let before =
        until_answered(&plugin, "mcp:bad/pid", json!({})).await["result"]["result"].clone();
    let out = call(&rt, &grant, "mcp:bad/die", json!({})).await;
    let denied = out["denied"].as_str().unwrap();
    assert!(denied.contains("MCP server 'bad'"), "{out}");
    assert!(
        !denied.contains("hostile_server.py") && !denied.contains("python"),
        "{out}"
    );
    // The next call starts it again.
    let after = until_answered(&plugin, "mcp:bad/pid", json!({})).await["result"]["result"].clone();
    assert!(after.is_string() && after != before, "{before} {after}");
}

#[tokio::test]
async fn a_server_that_never_answers_at_start_blocks_only_its_own_callers() {
    let python = venv("python");
    let mut stuck = stdio(python, &[&hostile_script(), "--hang-at-start"]);
    stuck.start_timeout = Duration::from_secs(1);
    let rt = runtime(
        vec![
            ("stuck", stuck),
            ("time", stdio(venv("mcp-server-time"), &[])),
        ],
        "30s",
    );
    let begun = Instant::now();
    let (stuck_out, time_out) = tokio::join!(
        call(&rt, &["mcp:stuck"], "mcp:stuck/echo", json!({"text": "x"})),
        call(
            &rt,
            &["mcp:time"],
            "mcp:time/get_current_time",
            json!({"timezone": "UTC"})
        ),
    );
    assert!(
        stuck_out["denied"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{stuck_out}"
    );
    assert!(time_out["result"].to_string().contains("UTC"), "{time_out}");
    assert!(begun.elapsed() < Duration::from_secs(15));
    // After a failed start the next try waits out a backoff (0.5 s, doubling): calls
    // made meanwhile fail at once instead of waiting for the start timeout again.
    let plugin = caller(&rt, &["mcp:stuck"]).await;
    let mut took = Vec::new();
    for _ in 0..3 {
        let begun = Instant::now();
        let again = call_with(&plugin, "mcp:stuck/echo", json!({"text": "x"})).await;
        assert!(
            again["denied"].as_str().unwrap().contains("unavailable"),
            "{again}"
        );
        took.push(begun.elapsed());
    }
    assert!(
        took.iter().any(|t| *t < Duration::from_millis(500)),
        "{took:?}"
    );
    assert!(took.iter().all(|t| *t < Duration::from_secs(4)), "{took:?}");
}

#[tokio::test]
async fn a_server_over_streamable_http_is_called_with_its_bearer_token() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(venv("python"))
        .args([hostile_script(), "--http".into(), port.to_string()])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the HTTP MCP server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("COLONY_TEST_MCP_TOKEN", "s3cret-token") };
    let config = toml_config(&format!(
        "url = \"http://127.0.0.1:{port}/mcp\"\nbearer_token_env = \"COLONY_TEST_MCP_TOKEN\""
    ));
    let rt = runtime(vec![("web", config)], "20s");
    let out = call(
        &rt,
        &["mcp:web/echo"],
        "mcp:web/echo",
        json!({"text": "over http"}),
    )
    .await;
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(out["result"]["result"], "echo: over http", "{out}");
    assert!(!out.to_string().contains("s3cret"));
}

#[test]
fn mcp_configuration_mistakes_are_refused_with_the_server_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.toml");
    for (text, expected) in [
        (
            "[mcp.a]\ncommand = \"x\"\nurl = \"http://h\"",
            "mcp.a: give `command` or `url`, not both",
        ),
        (
            "[mcp.b]\nargs = [\"x\"]",
            "mcp.b: give `command` (stdio) or `url` (HTTP)",
        ),
        ("[mcp.\"c d\"]\ncommand = \"x\"", "a server name is"),
        ("[mcp.e]\ncomand = \"x\"", "comand"),
        (
            "[mcp.f]\nurl = \"http://mcp.example.com/mcp\"",
            "must be https://",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let error = match RuntimeConfig::load(&path) {
            Err(e) => e.to_string(),
            Ok(config) => Runtime::with_config(config)
                .err()
                .expect("refused")
                .to_string(),
        };
        assert!(error.contains(expected), "{text}: {error}");
    }
}

//! The OpenAI-compatible provider against a local HTTP server started by the test that
//! speaks the wire format: streaming with tool calls, 429 then success, errors, and a hang
//! that must time out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use colony::llm::{
    CallContext, ChatMessage, ChatRequest, LlmConfig, LlmError, LlmProvider, OpenAiProvider,
    ProviderKind, Role, StopReason, ToolCall, ToolSpec,
};
use colony::{Limits, Manifest, RuntimeConfig, Worker, WorkerSpec, WorkerState};
use colony_tests::guest_path;
use colony_tests::openai::{Reply, serve};
use serde_json::{Value, json};

fn answer_with_tool_call() -> Vec<Value> {
    vec![
        json!({"choices": [{"delta": {"role": "assistant", "content": "Hel"}}]}),
        json!({"choices": [{"delta": {"content": "lo"}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "time_now", "arguments": "{\"tz\":"}}]}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"UTC\"}"}}]}}]}),
        json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}),
    ]
}

fn request() -> ChatRequest {
    ChatRequest {
        system: Some("be brief".into()),
        messages: vec![
            ChatMessage {
                role: Role::User,
                content: "what time is it?".into(),
                tool_calls: vec![],
                tool_call_id: None,
            },
            ChatMessage {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_0".into(),
                    name: "time.now".into(),
                    arguments: json!({}),
                }],
                tool_call_id: None,
            },
            ChatMessage {
                role: Role::Tool,
                content: "{\"unix\": 1}".into(),
                tool_calls: vec![],
                tool_call_id: Some("call_0".into()),
            },
        ],
        tools: vec![ToolSpec {
            name: "time.now".into(),
            description: "now".into(),
            parameters: json!({"type": "object"}),
        }],
        max_tokens: Some(64),
        temperature: Some(0.5),
    }
}

/// A call that may receive up to `max_bytes`, and the text deltas it heard.
fn collector_of(max_bytes: usize) -> (CallContext, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let call = CallContext::new("w", max_bytes).with_deltas(Arc::new(move |d: &str| {
        sink.lock().unwrap().push(d.to_owned())
    }));
    (call, seen)
}

fn collector() -> (CallContext, Arc<Mutex<Vec<String>>>) {
    collector_of(1 << 20)
}

#[tokio::test]
async fn streams_text_and_assembles_tool_calls_in_the_openai_wire_format() {
    let server = serve(vec![Reply::Stream(answer_with_tool_call())]).await;
    let provider = OpenAiProvider::new(&server.base_url, "test-model", Some("sk-test".into()));
    let (sink, deltas) = collector();
    let response = provider.complete(&sink, &request()).await.unwrap();
    assert_eq!(response.text, "Hello");
    assert_eq!(*deltas.lock().unwrap(), ["Hel", "lo"]);
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        response.tool_calls,
        [ToolCall {
            id: "call_a".into(),
            name: "time.now".into(),
            arguments: json!({"tz": "UTC"})
        }]
    );
    assert_eq!(
        (response.usage.input_tokens, response.usage.output_tokens),
        (12, 5)
    );

    let requests = server.requests.lock().unwrap();
    let (head, body) = &requests[0];
    assert!(head.starts_with("POST /v1/chat/completions"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer sk-test"),
        "{head}"
    );
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 64);
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool"]);
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
    assert_eq!(body["messages"][3]["tool_call_id"], "call_0");
    // In the API's alphabet: real endpoints refuse dots (mapped back in answers).
    assert_eq!(body["tools"][0]["function"]["name"], "time_now");
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["name"],
        "time_now"
    );
}

#[tokio::test]
async fn a_429_is_retried_then_succeeds() {
    let server = serve(vec![
        Reply::Status(429, "Retry-After: 0\r\n"),
        Reply::Stream(answer_with_tool_call()),
    ])
    .await;
    let provider =
        OpenAiProvider::new(&server.base_url, "m", None).with_retries(3, Duration::from_millis(10));
    let (sink, _) = collector();
    let response = provider.complete(&sink, &request()).await.unwrap();
    assert_eq!(response.text, "Hello");
    assert_eq!(server.requests.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_and_client_errors_are_not_retried() {
    let server = serve(vec![Reply::Status(503, ""), Reply::Status(500, "")]).await;
    let provider =
        OpenAiProvider::new(&server.base_url, "m", None).with_retries(1, Duration::from_millis(10));
    let (sink, _) = collector();
    let err = provider.complete(&sink, &request()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Unavailable(m) if m.contains("HTTP 500")),
        "{err}"
    );
    assert_eq!(server.requests.lock().unwrap().len(), 2);

    let server = serve(vec![Reply::Status(400, "")]).await;
    let provider =
        OpenAiProvider::new(&server.base_url, "m", None).with_retries(3, Duration::from_millis(10));
    let err = provider.complete(&sink, &request()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::InvalidRequest(m) if m.contains("HTTP 400")),
        "{err}"
    );
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_hanging_endpoint_times_out_and_the_worker_says_so() {
    let server = serve(vec![Reply::Hang]).await;
    // Configured the way a user would: the host config's [llm] table.
    let config = RuntimeConfig {
        limits: Limits {
            llm_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        llm: Some(LlmConfig {
            provider: ProviderKind::Openai,
            base_url: server.base_url.clone(),
            model: "m".into(),
            api_key_env: "COLONY_TEST_NO_SUCH_KEY".into(),
            max_retries: 0,
            backoff: Duration::from_millis(10),
            script: None,
        }),
        ..RuntimeConfig::default()
    };
    let runtime = colony::Runtime::with_config(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("agent.toml");
    std::fs::write(
        &manifest,
        format!(
            "component = {:?}\n",
            guest_path("agent-loop").display().to_string()
        ),
    )
    .unwrap();
    let plugin = runtime
        .plugin_from_manifest(Manifest::load(&manifest).unwrap())
        .unwrap();
    let worker = Worker::new(&plugin, WorkerSpec::ephemeral("waits", "hello?"), None).unwrap();
    let begun = std::time::Instant::now();
    let result = worker.run().await.unwrap();
    assert_eq!(worker.state(), WorkerState::Failed);
    assert_eq!(
        result.error.as_deref(),
        Some("model timeout: no answer within 300ms")
    );
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "{:?}",
        begun.elapsed()
    );
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_character_split_across_two_chunks_arrives_whole() {
    let line = format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"choices": [{"delta": {"content": "a€b"}}]})
    );
    let bytes = line.into_bytes();
    // Cut inside the three bytes of '€'.
    let cut = bytes.windows(3).position(|w| w == "€".as_bytes()).unwrap() + 1;
    let server = serve(vec![Reply::Pieces(vec![
        bytes[..cut].to_vec(),
        bytes[cut..].to_vec(),
    ])])
    .await;
    let provider = OpenAiProvider::new(&server.base_url, "m", None);
    let (call, deltas) = collector();
    let response = provider.complete(&call, &request()).await.unwrap();
    assert_eq!(response.text, "a€b");
    assert_eq!(*deltas.lock().unwrap(), ["a€b"]);
}

#[tokio::test]
async fn retry_after_values_that_are_not_durations_are_ignored_not_panicked_on() {
    let server = serve(vec![
        Reply::Status(429, "Retry-After: -1\r\n"),
        Reply::Status(429, "Retry-After: NaN\r\n"),
        Reply::Status(503, "Retry-After: inf\r\n"),
        Reply::Status(503, "Retry-After: 1e400\r\n"),
        Reply::Stream(answer_with_tool_call()),
    ])
    .await;
    let provider =
        OpenAiProvider::new(&server.base_url, "m", None).with_retries(4, Duration::from_millis(5));
    let (call, _) = collector();
    let begun = std::time::Instant::now();
    let response = provider.complete(&call, &request()).await.unwrap();
    assert_eq!(response.text, "Hello");
    assert_eq!(server.requests.lock().unwrap().len(), 5);
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "{:?}",
        begun.elapsed()
    );
}

#[tokio::test]
async fn an_endless_answer_stops_at_the_bound_and_says_so() {
    let server = serve(vec![Reply::EndlessStream]).await;
    let provider = OpenAiProvider::new(&server.base_url, "m", None);
    let (call, deltas) = collector_of(256 * 1024);
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        provider.complete(&call, &request()),
    )
    .await
    .expect("the provider stops reading")
    .unwrap_err();
    assert!(
        matches!(&err, LlmError::Unavailable(m) if m.contains("larger than the 262144 bytes")),
        "{err}"
    );
    let heard: usize = deltas.lock().unwrap().iter().map(String::len).sum();
    assert!(heard <= 256 * 1024, "{heard} bytes of deltas");
}

#[tokio::test]
async fn an_endless_error_body_is_not_read_whole() {
    let server = serve(vec![Reply::EndlessError]).await;
    let provider = OpenAiProvider::new(&server.base_url, "m", None).with_retries(0, Duration::ZERO);
    let (call, _) = collector();
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        provider.complete(&call, &request()),
    )
    .await
    .expect("the provider stops reading")
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("HTTP 500") && text.len() < 1000, "{text}");
}

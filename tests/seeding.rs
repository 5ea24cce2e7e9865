//! Seeding: only while pending, only with an explicit storage folder, in the reference's
//! file layout — and the guest reads exactly what was seeded.

use colony::{EventBus, MessagePart, WorkerError, WorkerSpec, WorkerState};
use colony_tests::{probe_spec, worker};
use serde_json::{Value, json};

fn seed_messages() -> Vec<MessagePart> {
    let mut system = MessagePart::new("system", "You are the overseer.");
    system.phase = Some("setup".into());
    let user = MessagePart::new("user", "Split the report into chapters.");
    let mut assistant = MessagePart::new("assistant", "Calling the splitter.");
    assistant.tool_calls = Some(json!([{"id": "call-1", "name": "split"}]));
    assistant.created_at = Some(json!(1712345678.5));
    let mut tool = MessagePart::new("tool", "3 chapters");
    tool.tool_use_id = Some("call-1".into());
    vec![system, user, assistant, tool]
}

#[tokio::test]
async fn the_guest_reads_the_seeded_conversation_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let bus = EventBus::new();
    let spec = probe_spec("seeded", "conversation", json!({})).with_storage(dir.path());
    let w = worker("probe-fixture", spec, &bus).await;
    assert_eq!(w.seed_conversation(seed_messages()).unwrap(), 4);

    let parts_dir = dir.path().join("conversations/parts");
    let first: Value =
        serde_json::from_slice(&std::fs::read(parts_dir.join("0000000000.json")).unwrap()).unwrap();
    assert_eq!(
        first,
        json!({"seq": 0, "role": "system", "content": "You are the overseer.", "tool_calls": null,
            "tool_use_id": null, "created_at": null, "phase": "setup", "agent_id": "seeded"})
    );

    let result = w.run().await.unwrap();
    assert_eq!(w.state(), WorkerState::Completed);
    let parts = result.output["parts"].as_array().unwrap();
    let roles: Vec<&str> = parts.iter().map(|p| p["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool"]);
    let seqs: Vec<u64> = parts.iter().map(|p| p["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert_eq!(parts[0]["phase"], "setup");
    assert_eq!(
        parts[2]["tool_calls"],
        r#"[{"id":"call-1","name":"split"}]"#
    );
    assert_eq!(parts[2]["created_at"], "1712345678.5");
    assert_eq!(parts[3]["tool_use_id"], "call-1");
    // The guest's own append continues the sequence.
    assert_eq!(result.output["appended_seq"], 4);
    let appended: Value =
        serde_json::from_slice(&std::fs::read(parts_dir.join("0000000004.json")).unwrap()).unwrap();
    assert_eq!(appended["content"], "probe was here");
    assert_eq!(appended["agent_id"], "seeded");
}

#[tokio::test]
async fn explicit_seq_and_agent_id_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let bus = EventBus::new();
    let w = worker(
        "chat-agent",
        WorkerSpec::persistent("keeps", "").with_storage(dir.path()),
        &bus,
    )
    .await;
    let mut part = MessagePart::new("user", "from the queen's DM");
    part.seq = Some(41);
    part.agent_id = Some("queen-dm".into());
    w.seed_conversation(vec![part]).unwrap();
    let stored: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("conversations/parts/0000000041.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(stored["agent_id"], "queen-dm");
}

#[tokio::test]
async fn seeding_after_start_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bus = EventBus::new();
    let w = worker(
        "chat-agent",
        WorkerSpec::persistent("late-seed", "").with_storage(dir.path()),
        &bus,
    )
    .await;
    w.start().unwrap();
    let err = w.seed_conversation(seed_messages()).unwrap_err();
    assert!(
        matches!(
            err,
            WorkerError::WrongState {
                state: WorkerState::Running,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("cannot seed the conversation while running"),
        "{err}"
    );
    assert!(
        !dir.path()
            .join("conversations/parts/0000000003.json")
            .exists()
    );
    w.stop().await;
}

#[tokio::test]
async fn seeding_without_a_storage_path_is_refused_and_writes_nothing() {
    let cwd_before: Vec<_> = std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let bus = EventBus::new();
    let w = worker("chat-agent", WorkerSpec::persistent("no-home", ""), &bus).await;
    let err = w.seed_conversation(seed_messages()).unwrap_err();
    assert!(matches!(err, WorkerError::NoStoragePath { .. }), "{err}");
    assert!(err.to_string().contains("explicit storage path"), "{err}");
    let cwd_after: Vec<_> = std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        cwd_before, cwd_after,
        "nothing leaks into the working directory"
    );
}

#[tokio::test]
async fn the_overseer_resumes_from_its_seeded_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let bus = EventBus::new();
    let w = worker(
        "chat-agent",
        WorkerSpec::persistent("resumed", "").with_storage(dir.path()),
        &bus,
    )
    .await;
    w.seed_conversation(seed_messages()).unwrap();
    w.start().unwrap();
    let mut rx =
        bus.subscribe(colony::EventFilter::all().types([colony::EventType::ExecutionCompleted]));
    let done = colony_tests::next_event(&mut rx, std::time::Duration::from_secs(10)).await;
    assert_eq!(done.data["output_keys"], json!(["ready", "seeded_parts"]));
    assert_eq!(w.result().unwrap().output["seeded_parts"], 4);
    w.stop().await;
}

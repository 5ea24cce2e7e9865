//! Record, replay and fork (`colony::replay`): the agent-loop guest recorded against a
//! local OpenAI-wire server (with a tool call), replayed after the server is gone, made
//! to diverge, forked onto the scripted provider, exported as a script; a persistent
//! worker's turns; the recording's bound and its switch.

use std::path::Path;
use std::time::Duration;

use colony::llm::{LlmConfig, ProviderKind};
use colony::replay::StepKind;
use colony::{
    Colony, ColonyConfig, ColonyError, EventType, Lineage, Plugin, ReplayOutcome, Runtime,
    RuntimeConfig, Task, WorkerRecord, WorkerReport,
};
use colony_tests::guest_path;
use colony_tests::openai::{Reply, serve};
use serde_json::{Value, json};

/// The model's two answers: a tool call, then the final text.
fn model_answers() -> Vec<Reply> {
    vec![
        Reply::Stream(vec![
            json!({"choices": [{"delta": {"role": "assistant", "content": "Let me "}}]}),
            json!({"choices": [{"delta": {"content": "check the time."}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "time_now", "arguments": "{}"}}]}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 9}}),
        ]),
        Reply::Stream(vec![
            json!({"choices": [{"delta": {"content": "It is "}}]}),
            json!({"choices": [{"delta": {"content": "late; all done."}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 70, "completion_tokens": 6}}),
        ]),
    ]
}

fn runtime_with(llm: LlmConfig) -> Runtime {
    Runtime::with_config(RuntimeConfig {
        llm: Some(llm),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn openai(base_url: &str) -> LlmConfig {
    LlmConfig {
        provider: ProviderKind::Openai,
        base_url: base_url.to_owned(),
        model: "test-model".into(),
        api_key_env: "COLONY_TEST_NO_SUCH_KEY".into(),
        max_retries: 0,
        backoff: Duration::from_millis(10),
        script: None,
    }
}

fn scripted(dir: &Path, script: Value) -> LlmConfig {
    let path = dir.join("script.json");
    std::fs::write(&path, script.to_string()).unwrap();
    LlmConfig {
        provider: ProviderKind::Scripted,
        script: Some(path),
        ..openai("http://127.0.0.1:9/v1")
    }
}

/// The agent loop, granted `time.now`.
async fn agent_loop(runtime: &Runtime, dir: &Path) -> Plugin {
    let manifest = dir.join("agent.toml");
    std::fs::write(
        &manifest,
        format!(
            "component = {:?}\n[grants]\ntools = [\"time.now\"]\n",
            guest_path("agent-loop").display().to_string()
        ),
    )
    .unwrap();
    runtime.load_manifest(&manifest).await.unwrap()
}

async fn open(runtime: &Runtime, home: &Path, configure: impl FnOnce(&mut ColonyConfig)) -> Colony {
    let mut config = ColonyConfig::new("replay-test", home);
    configure(&mut config);
    Colony::open(runtime.clone(), config).unwrap()
}

/// Runs `tasks` of `plugin` in `colony` to their reports; the workers' ids and reports.
async fn run_tasks(
    colony: &Colony,
    plugin: &Plugin,
    tasks: Vec<Task>,
) -> (Vec<String>, Vec<WorkerReport>) {
    let ids = colony.run_parallel(plugin, tasks).unwrap();
    let reports = colony
        .wait_for_reports(&ids, Duration::from_secs(30))
        .await
        .unwrap();
    (ids, reports)
}

/// Runs one task of `plugin` in `colony` to its report; the worker's id.
async fn run_one(colony: &Colony, plugin: &Plugin, task: &str) -> String {
    let (ids, reports) = run_tasks(colony, plugin, vec![Task::new(task)]).await;
    assert!(reports[0].error.is_none(), "{:?}", reports[0]);
    ids[0].clone()
}

/// Replays worker `id` with `plugin` to its end.
async fn replayed(
    colony: &Colony,
    plugin: &Plugin,
    id: &str,
    input: Option<Value>,
) -> ReplayOutcome {
    colony.replay(plugin, id, input).unwrap().finish().await
}

/// Worker `id`'s journal row.
fn row(colony: &Colony, id: &str) -> WorkerRecord {
    colony.journal().worker(id).unwrap().unwrap()
}

/// The probe fixture, and a colony in `home`.
async fn probe_colony(home: &Path) -> (Plugin, Colony) {
    let runtime = colony_tests::runtime();
    let plugin = colony_tests::plugin("probe-fixture").await;
    (plugin, open(&runtime, home, |_| {}).await)
}

/// A worker's journaled events as (type, data) with what differs between runs of the
/// same steps left out: ids, timestamps, durations.
fn events_of(colony: &Colony, worker: &str) -> Vec<(String, Value)> {
    colony
        .journal()
        .events(Some(worker), 0, 10_000)
        .unwrap()
        .into_iter()
        .map(|(_, event)| {
            let mut data = event.data;
            if let Some(object) = data.as_object_mut() {
                for key in ["worker_id", "colony_id", "duration_seconds", "timestamp"] {
                    object.remove(key);
                }
            }
            (event.event_type.to_string(), data)
        })
        .collect()
}

/// Records the agent loop's run against the OpenAI-wire server, which is gone after.
async fn recorded_run(home: &Path) -> (Runtime, Plugin, String) {
    let server = serve(model_answers()).await;
    let runtime = runtime_with(openai(&server.base_url));
    let plugin = agent_loop(&runtime, home).await;
    let colony = open(&runtime, home, |_| {}).await;
    let id = run_one(&colony, &plugin, "What time is it?").await;
    assert_eq!(server.requests.lock().unwrap().len(), 2);
    colony.stop_all().await;
    (runtime, plugin, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_replays_offline_with_the_same_events_and_report() {
    let home = tempfile::tempdir().unwrap();
    let (runtime, plugin, id) = recorded_run(home.path()).await;
    let colony = open(&runtime, home.path(), |_| {}).await;
    let recording = colony.journal().recording(&id).unwrap();
    let kinds: Vec<StepKind> = recording.steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            StepKind::ToolList,
            StepKind::Llm,
            StepKind::Tool,
            StepKind::Llm,
        ]
    );
    let per_step = recording.bytes() / recording.len() as u64;
    assert!(per_step < 2_000, "{per_step} bytes a step");
    eprintln!(
        "recording: {} steps, {} bytes ({per_step} a step)",
        recording.len(),
        recording.bytes()
    );

    // The server is gone: anything reaching for the model would fail.
    let outcome = replayed(&colony, &plugin, &id, None).await;
    assert_eq!(outcome.divergence, None);
    assert_eq!(outcome.report_difference(), None);
    assert!(outcome.matches());
    assert_eq!((outcome.steps, outcome.recorded_steps), (4, 4));
    assert_eq!(outcome.result.summary, "It is late; all done.");
    assert_eq!(
        outcome.result.tokens_used,
        outcome.recorded_result.as_ref().unwrap().tokens_used
    );
    assert_eq!(outcome.result.tool_calls_used, 1);
    let recorded = events_of(&colony, &id);
    let replayed = events_of(&colony, &outcome.worker_id);
    assert!(recorded.iter().any(|(t, _)| t == "LLM_TEXT_DELTA"));
    assert_eq!(recorded, replayed);

    // The replay's journal row says what it replays; its own run is recorded too.
    let row = row(&colony, &outcome.worker_id);
    assert_eq!(row.lineage, Some(Lineage::Replay { of: id.clone() }));
    let again = colony.journal().recording(&outcome.worker_id).unwrap();
    assert_eq!(again.steps, recording.steps);
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_prompt_or_plugin_diverges_where_the_requests_differ() {
    let home = tempfile::tempdir().unwrap();
    let (runtime, plugin, id) = recorded_run(home.path()).await;
    let colony = open(&runtime, home.path(), |_| {}).await;

    let what_if = Some(json!({"system": "You are terse."}));
    let outcome = replayed(&colony, &plugin, &id, what_if).await;
    let divergence = outcome.divergence.clone().unwrap();
    assert_eq!(divergence.step, 2);
    assert_eq!(divergence.recorded, Some(StepKind::Llm));
    assert_eq!(divergence.called, Some(StepKind::Llm));
    assert!(
        divergence
            .detail
            .contains("at system, recorded \"You are a worker agent")
            && divergence.detail.ends_with("now \"You are terse.\""),
        "{}",
        divergence.detail
    );
    // The guest was stopped there, with the divergence as its error.
    let error = outcome.result.error.clone().unwrap();
    assert!(error.contains("replay diverged at step 2"), "{error}");
    assert!(!outcome.matches());

    // Another guest: it makes other calls from the first.
    let echo = colony_tests::plugin("echo-agent").await;
    let outcome = replayed(&colony, &echo, &id, None).await;
    let divergence = outcome.divergence.unwrap();
    assert_eq!(divergence.step, 1);
    assert_eq!(divergence.recorded, Some(StepKind::ToolList));
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_replays_to_its_step_then_goes_live_on_another_model() {
    let home = tempfile::tempdir().unwrap();
    let (_, _, id) = recorded_run(home.path()).await;
    let scripts = tempfile::tempdir().unwrap();
    let runtime = runtime_with(scripted(
        scripts.path(),
        json!([{"text": "Forked: no time needed."}]),
    ));
    let plugin = agent_loop(&runtime, scripts.path()).await;
    let colony = open(&runtime, home.path(), |_| {}).await;
    let worker = colony.fork(&plugin, &id, 2).await.unwrap();
    let result = worker.wait().await;
    assert_eq!(result.error, None);
    assert_eq!(result.summary, "Forked: no time needed.");

    let row = colony.journal().worker(worker.id()).unwrap().unwrap();
    assert_eq!(
        row.lineage,
        Some(Lineage::Fork {
            from: id.clone(),
            at: 2
        })
    );
    let recorded = colony.journal().recording(&id).unwrap();
    let forked = colony.journal().recording(worker.id()).unwrap();
    // Steps 1 and 2 (the tool list, the model's tool call) from the record; the tool
    // then really called; the next answer from the script.
    assert_eq!(forked.steps[..2], recorded.steps[..2]);
    assert_eq!(forked.steps[2].kind, StepKind::Tool);
    assert_eq!(forked.steps[2].request, recorded.steps[2].request);
    assert_eq!(forked.steps[3].kind, StepKind::Llm);
    assert_ne!(forked.steps[3].answer, recorded.steps[3].answer);
    assert_eq!(
        forked.steps[3].answer["ok"]["text"],
        "Forked: no time needed."
    );
    assert_eq!(forked.len(), 4);

    // Past the end of the recording is refused.
    let err = colony.fork(&plugin, &id, 5).await.unwrap_err();
    assert!(
        matches!(&err, ColonyError::NotReplayable { reason, .. } if reason.contains("has 4 step(s)")),
        "{err}"
    );
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_exports_as_a_script_that_reproduces_the_run_offline() {
    let home = tempfile::tempdir().unwrap();
    let (_, _, id) = recorded_run(home.path()).await;
    let scripts = tempfile::tempdir().unwrap();
    let probe = Runtime::new().unwrap();
    let colony = open(&probe, home.path(), |_| {}).await;
    let script = colony.journal().recording(&id).unwrap().to_script();
    colony.stop_all().await;
    assert_eq!(script.as_array().unwrap().len(), 2);
    assert_eq!(script[0]["tool_calls"][0]["name"], "time.now");

    let runtime = runtime_with(scripted(scripts.path(), script));
    let plugin = agent_loop(&runtime, scripts.path()).await;
    let fresh = tempfile::tempdir().unwrap();
    let colony = open(&runtime, fresh.path(), |_| {}).await;
    let again = run_one(&colony, &plugin, "What time is it?").await;
    let result = row(&colony, &again).result.unwrap();
    assert_eq!(result.summary, "It is late; all done.");
    assert_eq!(result.tokens_used, 40 + 9 + 70 + 6);
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_worker_s_turns_replay_in_order() {
    let home = tempfile::tempdir().unwrap();
    let runtime = colony_tests::runtime();
    let plugin = colony_tests::plugin("chat-agent").await;
    let colony = open(&runtime, home.path(), |_| {}).await;
    let overseer = colony.start_overseer(&plugin, "chat", Vec::new()).unwrap();
    let mut turns = colony.bus().subscribe(
        colony::EventFilter::all()
            .worker(overseer.id())
            .types([EventType::TurnCompleted]),
    );
    for message in ["hello", "again", "report"] {
        overseer.inject(message).unwrap();
        tokio::time::timeout(Duration::from_secs(10), turns.recv())
            .await
            .unwrap()
            .unwrap();
    }
    overseer.stop().await;
    let recording = colony.journal().recording(overseer.id()).unwrap();
    assert_eq!(recording.turns(), ["hello", "again", "report"]);

    let outcome = replayed(&colony, &plugin, overseer.id(), None).await;
    assert_eq!(outcome.divergence, None);
    assert_eq!(outcome.report_difference(), None);
    assert_eq!((outcome.steps, outcome.recorded_steps), (3, 3));
    let turns_and_reports = |worker: &str| -> Vec<(String, Value)> {
        events_of(&colony, worker)
            .into_iter()
            .filter(|(t, _)| t == "TURN_COMPLETED" || t == "SUBAGENT_REPORT")
            .collect()
    };
    let replayed = turns_and_reports(&outcome.worker_id);
    assert_eq!(turns_and_reports(overseer.id()), replayed);
    // The initial run's report, three turns (the last after its report), the stop's.
    assert_eq!(replayed.len(), 6, "{replayed:?}");
    assert_eq!(replayed[3].1["summary"], "3 turns, 0 worker reports heard");
    let summaries = |worker: &str| -> Vec<Value> {
        colony
            .journal()
            .reports(Some(worker))
            .unwrap()
            .into_iter()
            .map(|r| r.report["summary"].clone())
            .collect()
    };
    assert_eq!(summaries(overseer.id()), summaries(&outcome.worker_id));
    assert!(
        summaries(&outcome.worker_id).contains(&json!("3 turns, 0 worker reports heard")),
        "{:?}",
        summaries(&outcome.worker_id)
    );

    // Forked after its second turn: it has had those two, and goes on live.
    let fork = colony.fork(&plugin, overseer.id(), 2).await.unwrap();
    let mut fork_turns = colony.bus().subscribe(
        colony::EventFilter::all()
            .worker(fork.id())
            .types([EventType::TurnCompleted]),
    );
    fork.inject("report").unwrap();
    let turn = tokio::time::timeout(Duration::from_secs(10), fork_turns.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(turn.data["turn"], 3);
    assert_eq!(turn.data["output"]["remembered"], 3);
    assert_eq!(
        fork.result().unwrap().summary,
        "3 turns, 0 worker reports heard"
    );
    fork.stop().await;
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_cut_at_its_bound_and_can_be_turned_off() {
    let home = tempfile::tempdir().unwrap();
    let server = serve(model_answers()).await;
    let runtime = runtime_with(openai(&server.base_url));
    let plugin = agent_loop(&runtime, home.path()).await;
    // Room for the first step only (the tool list, not the model call).
    let colony = open(&runtime, home.path(), |c| c.max_recording_bytes = 700).await;
    let id = run_one(&colony, &plugin, "What time is it?").await;
    let recording = colony.journal().recording(&id).unwrap();
    assert!(recording.is_cut(), "{:?}", recording.steps);
    assert!(recording.bytes() <= 700 + 200, "{}", recording.bytes());
    let cut_at = recording.steps.last().unwrap().index;
    let outcome = replayed(&colony, &plugin, &id, None).await;
    let divergence = outcome.divergence.unwrap();
    assert_eq!(
        (divergence.step, divergence.recorded),
        (cut_at, Some(StepKind::Cut))
    );
    assert!(
        divergence.detail.contains("cut here at its size bound"),
        "{}",
        divergence.detail
    );
    colony.stop_all().await;

    let off = tempfile::tempdir().unwrap();
    let server = serve(model_answers()).await;
    let runtime = runtime_with(openai(&server.base_url));
    let plugin = agent_loop(&runtime, off.path()).await;
    let colony = open(&runtime, off.path(), |c| c.record = false).await;
    let id = run_one(&colony, &plugin, "What time is it?").await;
    assert!(colony.journal().recording(&id).unwrap().is_empty());
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_reads_the_same_clocks_and_random_every_time() {
    let home = tempfile::tempdir().unwrap();
    let (plugin, colony) = probe_colony(home.path()).await;
    let world = Task::new("world").with_input(json!({"action": "world"}));
    let (ids, _) = run_tasks(&colony, &plugin, vec![world]).await;
    let started = row(&colony, &ids[0]).started_at.unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let outcome = replayed(&colony, &plugin, &ids[0], None).await;
        assert_eq!(outcome.divergence, None);
        seen.push(outcome.result.output);
    }
    assert_eq!(seen[0], seen[1]);
    // Insecure random (which seeds std's hash maps) repeats the recorded run's too.
    let recorded = row(&colony, &ids[0]).result.unwrap();
    assert_eq!(recorded.output["hash"], seen[0]["hash"]);
    // The replay's wall clock starts at the recorded run's start.
    let wall_ms = seen[0]["wall_ms"].as_u64().unwrap() as i64;
    let from_start = wall_ms - started.timestamp_millis();
    assert!((0..1_000).contains(&from_start), "{from_start} ms");
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_injected_mid_run_is_served_at_its_place() {
    let home = tempfile::tempdir().unwrap();
    let (plugin, colony) = probe_colony(home.path()).await;
    let ids = colony
        .run_parallel(
            &plugin,
            vec![Task::new("wait").with_input(json!({"action": "wait"}))],
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    colony
        .inject(&ids[0], "the injected message")
        .await
        .unwrap();
    colony
        .wait_for_reports(&ids, Duration::from_secs(30))
        .await
        .unwrap();
    let recording = colony.journal().recording(&ids[0]).unwrap();
    assert_eq!(recording.len(), 1);
    assert_eq!(recording.steps[0].kind, StepKind::InboxWait);

    // Nobody injects into the replay: the message comes from the recording, at once.
    let begun = std::time::Instant::now();
    let outcome = replayed(&colony, &plugin, &ids[0], None).await;
    assert!(begun.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.divergence, None);
    assert_eq!(outcome.result.output["got"], "the injected message");
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_reaches_no_network_and_writes_no_granted_folder() {
    let home = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            use std::io::{BufRead, Write};
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Hear the guest's line before answering and closing (closing first could
            // fail its write).
            let mut stream = stream.unwrap();
            let mut line = String::new();
            let _ = std::io::BufReader::new(&stream).read_line(&mut line);
            let _ = stream.write_all(b"pong\n");
        }
    });
    let shared = home.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let manifest = home.path().join("hostile.toml");
    std::fs::write(
        &manifest,
        format!(
            "component = {:?}\n[grants]\nnetwork = [\"127.0.0.1:{port}\"]\n\
             [[grants.dirs]]\nhost = \"shared\"\nguest = \"/shared\"\naccess = \"read-write\"\n",
            guest_path("hostile-fixture").display().to_string()
        ),
    )
    .unwrap();
    let runtime = colony_tests::runtime();
    let plugin = runtime.load_manifest(&manifest).await.unwrap();
    let colony = open(&runtime, home.path(), |_| {}).await;
    let connect = Task::new("connect")
        .with_input(json!({"attack": "connect", "arg": format!("127.0.0.1:{port}")}));
    let write =
        Task::new("write").with_input(json!({"attack": "write-file", "arg": "/shared/out.txt"}));
    let (ids, _) = run_tasks(&colony, &plugin, vec![connect, write]).await;
    let output = |id: &str| {
        let record = row(&colony, id);
        record.result.unwrap().output
    };
    assert!(
        output(&ids[0]).contains_key("leaked"),
        "{:?}",
        output(&ids[0])
    );
    assert!(
        output(&ids[1]).contains_key("leaked"),
        "{:?}",
        output(&ids[1])
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    std::fs::remove_file(shared.join("out.txt")).unwrap();

    for id in &ids {
        let outcome = replayed(&colony, &plugin, id, None).await;
        assert!(
            outcome.result.output.contains_key("denied"),
            "{:?}",
            outcome.result.output
        );
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(!shared.join("out.txt").exists());
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_s_report_is_not_news_for_the_overseer_and_a_gap_ends_a_recording() {
    let home = tempfile::tempdir().unwrap();
    let (runtime, plugin, id) = recorded_run(home.path()).await;
    let colony = open(&runtime, home.path(), |_| {}).await;
    let chat = colony_tests::plugin("chat-agent").await;
    let overseer = colony.start_overseer(&chat, "oversee", Vec::new()).unwrap();
    let mut turns = colony.bus().subscribe(
        colony::EventFilter::all()
            .worker(overseer.id())
            .types([EventType::TurnCompleted]),
    );
    let outcome = replayed(&colony, &plugin, &id, None).await;
    assert!(outcome.matches());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), turns.recv())
            .await
            .is_err(),
        "the overseer heard of a replay"
    );

    // A hole in the numbering (a lost write, a journal edited by hand) ends it there.
    colony.stop_all().await;
    let db = rusqlite::Connection::open(home.path().join("journal.db")).unwrap();
    db.execute(
        "DELETE FROM steps WHERE worker_id = ?1 AND idx = 2",
        rusqlite::params![id],
    )
    .unwrap();
    let journal = colony::Journal::open(home.path().join("journal.db")).unwrap();
    let recording = journal.recording(&id).unwrap();
    assert_eq!(recording.len(), 2);
    assert!(recording.is_cut());
    assert_eq!(recording.steps[1].index, 2);
}

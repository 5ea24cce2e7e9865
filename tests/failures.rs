//! Bad plugins and crashing guests fail alone, with errors that name the plugin (and the
//! worker) and the cause, while other workers complete.

use colony::{EventBus, PluginError, ReportStatus, WorkerSpec, WorkerState};
use colony_tests::{guest_path, probe_spec, runtime, worker};
use serde_json::json;

async fn load_bytes(name: &str, bytes: Vec<u8>) -> PluginError {
    match runtime().load_plugin_bytes(name, bytes).await {
        Ok(_) => panic!("plugin {name} loaded"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn files_that_are_not_components_are_refused_by_name() {
    let not_wasm = load_bytes("notes", b"# just some text".to_vec()).await;
    assert!(
        matches!(not_wasm, PluginError::NotAComponent { .. }),
        "{not_wasm}"
    );
    assert_eq!(
        not_wasm.to_string(),
        "plugin 'notes' is not a WebAssembly component: the file does not start with the WebAssembly magic number"
    );
    let core = load_bytes("core", b"\0asm\x01\0\0\0".to_vec()).await;
    assert!(
        core.to_string().contains("it is a core WebAssembly module"),
        "{core}"
    );
    let empty = load_bytes("empty", Vec::new()).await;
    assert!(empty.to_string().contains("the file is empty"), "{empty}");
    let mut truncated = std::fs::read(guest_path("echo-agent")).unwrap();
    truncated.truncate(truncated.len() / 2);
    let broken = load_bytes("truncated", truncated).await;
    assert!(matches!(broken, PluginError::Compile { .. }), "{broken}");
    assert!(
        broken
            .to_string()
            .starts_with("plugin 'truncated' failed to compile"),
        "{broken}"
    );
}

#[tokio::test]
async fn a_missing_file_is_a_read_error() {
    let err = runtime()
        .load_plugin("ghost", "/nonexistent/ghost.wasm")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/ghost.wasm"), "{err}");
}

#[tokio::test]
async fn a_component_missing_an_export_is_refused() {
    let path = guest_path("missing-export-fixture");
    let err = runtime().load_plugin("half", path).await.err().unwrap();
    assert!(matches!(err, PluginError::MissingExport { .. }), "{err}");
    assert!(
        err.to_string().contains("plugin 'half' does not export"),
        "{err}"
    );
}

#[tokio::test]
async fn a_component_importing_what_the_host_lacks_is_refused() {
    let path = guest_path("unknown-import-fixture");
    let err = runtime().load_plugin("smuggler", path).await.err().unwrap();
    assert!(matches!(err, PluginError::UnknownImport { .. }), "{err}");
    assert!(err.to_string().contains("fixture:smuggler/socket"), "{err}");
}

/// Runs the probe with `action` next to an honest echo worker; returns the probe's error.
async fn crash_alone(id: &str, action: &str) -> String {
    let bus = EventBus::new();
    let honest = worker(
        "echo-agent",
        WorkerSpec::ephemeral(format!("{id}-honest"), "still fine"),
        &bus,
    )
    .await;
    let crasher = worker("probe-fixture", probe_spec(id, action, json!({})), &bus).await;
    crasher.start().unwrap();
    honest.start().unwrap();
    let crashed = crasher.wait().await;
    let fine = honest.wait().await;
    assert_eq!(honest.state(), WorkerState::Completed);
    assert_eq!(fine.status, ReportStatus::Success);
    assert_eq!(crasher.state(), WorkerState::Failed);
    assert_eq!(crashed.status, ReportStatus::Failed);
    let error = crashed.error.clone().unwrap();
    assert!(
        error.starts_with(&format!(
            "worker '{id}' (plugin 'probe-fixture'): run trapped: "
        )),
        "{error}"
    );
    assert_eq!(crashed.summary, format!("Worker crashed: {error}"));
    error
}

#[tokio::test]
async fn a_trap_fails_only_its_worker() {
    let error = crash_alone("trapper", "trap").await;
    assert!(error.contains("unreachable instruction"), "{error}");
}

#[tokio::test]
async fn a_panic_fails_only_its_worker_with_the_panic_message() {
    let error = crash_alone("panicker", "panic").await;
    assert!(error.contains("probe panicked on purpose"), "{error}");
}

#[tokio::test]
async fn unbounded_memory_growth_hits_the_memory_limit() {
    let error = crash_alone("hoarder", "grow").await;
    assert!(error.contains("memory limit exceeded: 64 MiB"), "{error}");
}

/// Starts a worker of the lazily loaded plugin at `path` next to an honest worker;
/// returns the error of the worker that could not run.
async fn worker_of_bad_plugin(id: &str, plugin: &str, path: std::path::PathBuf) -> String {
    let bus = EventBus::new();
    let mut reports = bus.subscribe(
        colony::EventFilter::all()
            .types([colony::EventType::SubagentReport])
            .worker(id),
    );
    let bad = colony::Worker::new(
        &runtime().plugin(plugin, path),
        WorkerSpec::ephemeral(id, "anything"),
        Some(bus.clone()),
    )
    .unwrap();
    let honest = worker(
        "echo-agent",
        WorkerSpec::ephemeral(format!("{id}-ok"), "fine"),
        &bus,
    )
    .await;
    bad.start().unwrap();
    honest.start().unwrap();
    let failed = bad.wait().await;
    assert_eq!(honest.wait().await.status, ReportStatus::Success);
    assert_eq!(bad.state(), WorkerState::Failed);
    let report = reports.recv().await.unwrap();
    assert_eq!(report.data["status"], "failed");
    let error = failed.error.unwrap();
    assert!(
        error.starts_with(&format!(
            "worker '{id}' (plugin '{plugin}'): plugin '{plugin}'"
        )),
        "{error}"
    );
    error
}

#[tokio::test]
async fn a_worker_of_a_file_that_is_not_a_component_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let error = worker_of_bad_plugin("junk-1", "junk", junk).await;
    assert!(error.contains("is not a WebAssembly component"), "{error}");
}

#[tokio::test]
async fn a_worker_of_a_plugin_missing_an_export_fails_alone() {
    let error = worker_of_bad_plugin("half-1", "half", guest_path("missing-export-fixture")).await;
    assert!(
        error.contains("does not export the colony:agent world"),
        "{error}"
    );
}

#[tokio::test]
async fn a_worker_of_a_plugin_with_an_unknown_import_fails_alone() {
    let error = worker_of_bad_plugin(
        "smuggler-1",
        "smuggler",
        guest_path("unknown-import-fixture"),
    )
    .await;
    assert!(error.contains("fixture:smuggler/socket"), "{error}");
}

#[tokio::test]
async fn a_lazily_loaded_plugin_is_compiled_once_for_all_its_workers() {
    let plugin = runtime().plugin("lazy-echo", guest_path("echo-agent"));
    assert_eq!(
        plugin.size(),
        None,
        "nothing is read before the first worker starts"
    );
    let bus = EventBus::new();
    let workers: Vec<_> = (0..8)
        .map(|i| {
            colony::Worker::new(
                &plugin,
                WorkerSpec::ephemeral(format!("lazy-{i}"), "x y"),
                Some(bus.clone()),
            )
            .unwrap()
        })
        .collect();
    for w in &workers {
        w.start().unwrap();
    }
    for w in &workers {
        assert_eq!(w.wait().await.status, ReportStatus::Success);
    }
    assert_eq!(
        plugin.size(),
        Some(std::fs::metadata(guest_path("echo-agent")).unwrap().len() as usize)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_while_its_plugin_compiles_leaves_the_plugin_usable() {
    // A lazily loaded plugin: its first worker starts the compilation...
    let plugin = runtime().plugin("compiling", guest_path("echo-agent"));
    let first = colony::Worker::new(&plugin, WorkerSpec::ephemeral("first", "t"), None).unwrap();
    first.start().unwrap();
    // ...and is stopped before it finishes (compiling takes ~100 ms here), cancelling
    // the compilation's only waiter.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(plugin.size(), None, "still compiling");
    first.stop().await;
    assert_eq!(first.state(), WorkerState::Stopped);
    let second =
        colony::Worker::new(&plugin, WorkerSpec::ephemeral("second", "a b"), None).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(30), second.run())
        .await
        .expect("the second worker ends")
        .unwrap();
    assert_eq!(second.state(), WorkerState::Completed, "{result:?}");
    assert!(plugin.size().is_some());
}

/// A journal that records states but cannot record reports (a full disk, say).
struct BrokenJournal;

impl colony::WorkerObserver for BrokenJournal {
    fn state_changed(&self, _info: &colony::WorkerInfo) {}
    fn reporting(
        &self,
        _report: &colony::AgentEvent,
        _ended: Option<&colony::WorkerInfo>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        Box::pin(std::future::ready(Err("database or disk is full".into())))
    }
}

#[tokio::test]
async fn a_report_that_cannot_be_journaled_is_withheld_and_the_worker_fails() {
    let bus = EventBus::new();
    let mut reports =
        bus.subscribe(colony::EventFilter::all().types([colony::EventType::SubagentReport]));
    let w = worker(
        "echo-agent",
        WorkerSpec::ephemeral("unjournaled", "alpha beta"),
        &bus,
    )
    .await;
    w.observe(std::sync::Arc::new(BrokenJournal)).unwrap();
    let result = w.run().await.unwrap();
    // Fail closed: not the guest's success, but a failure that says why.
    assert_eq!(w.state(), WorkerState::Failed);
    assert_eq!(result.status, ReportStatus::Failed);
    let error = result.error.unwrap();
    assert!(
        error.contains("worker 'unjournaled' (plugin 'echo-agent')")
            && error.contains("database or disk is full")
            && error.contains("withheld"),
        "{error}"
    );
    let published = reports.recv().await.unwrap();
    assert_eq!(published.data["status"], "failed");
    assert_eq!(published.data["error"], json!(error));
}

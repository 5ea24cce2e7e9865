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

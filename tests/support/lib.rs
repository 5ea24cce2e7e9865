//! Shared helpers for the integration tests: one runtime per test binary, guest
//! components located in the workspace's target folder and loaded once each.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub mod openai;

use colony::{
    AgentEvent, EventBus, EventFilter, Plugin, RecvError, Runtime, Subscription, Worker, WorkerSpec,
};

/// The workspace's target folder (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Path of a guest component built by `make guests` (crate name with underscores).
pub fn guest_path(crate_name: &str) -> PathBuf {
    let path = target_dir()
        .join("wasm32-wasip2/guest")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(
        path.is_file(),
        "guest component {} is missing: build the guests first with `make guests`",
        path.display()
    );
    path
}

/// The runtime shared by every test of this binary.
pub fn runtime() -> Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::new().expect("runtime"))
        .clone()
}

/// The guest crate `crate_name`, loaded once per test binary.
pub async fn plugin(crate_name: &str) -> Plugin {
    static PLUGINS: OnceLock<Mutex<HashMap<String, Plugin>>> = OnceLock::new();
    let cache = PLUGINS.get_or_init(Default::default);
    if let Some(plugin) = cache.lock().unwrap().get(crate_name) {
        return plugin.clone();
    }
    let plugin = runtime()
        .load_plugin(crate_name, guest_path(crate_name))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cache
        .lock()
        .unwrap()
        .insert(crate_name.to_owned(), plugin.clone());
    plugin
}

/// A worker of guest `crate_name` on `bus`.
pub async fn worker(crate_name: &str, spec: WorkerSpec, bus: &EventBus) -> Worker {
    Worker::new(&plugin(crate_name).await, spec, Some(bus.clone())).expect("worker")
}

/// The probe fixture told to do `action`, with extra input fields.
pub fn probe_spec(id: &str, action: &str, extra: serde_json::Value) -> WorkerSpec {
    let mut input = serde_json::json!({"action": action});
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    WorkerSpec::ephemeral(id, format!("probe {action}")).with_input(input)
}

/// The next event within `within`, failing the test otherwise.
pub async fn next_event(sub: &mut Subscription, within: Duration) -> AgentEvent {
    match tokio::time::timeout(within, sub.recv()).await {
        Ok(Ok(event)) => event,
        Ok(Err(RecvError::Lagged(n))) => panic!("subscriber lagged by {n}"),
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("no event within {within:?}"),
    }
}

/// Every event already queued on `sub`.
pub fn drain(sub: &mut Subscription) -> Vec<AgentEvent> {
    let mut events = Vec::new();
    while let Ok(Some(event)) = sub.try_recv() {
        events.push(event);
    }
    events
}

/// A subscription to everything `worker_id` publishes.
pub fn watch(bus: &EventBus, worker_id: &str) -> Subscription {
    bus.subscribe(EventFilter::all().worker(worker_id))
}

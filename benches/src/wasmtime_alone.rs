//! Tables 1 and 2's ceiling: the same guest run by wasmtime alone, without Colony.
//!
//! Why it is here: the bare-path target was set by a throwaway wasmtime program on this
//! machine class, and the machine's speed drifts up to 2× between runs, so a number from
//! another day says little. This row is that program, measured in the same run as
//! Colony's rows: an engine configured as a fast embedder would (pooling allocator with
//! copy-on-write images, resident slots reset by page-map scanning, no concurrent-call
//! bookkeeping, epoch interruption), one `InstancePre` for the guest, and per worker a
//! tokio task that makes a store with an empty WASI context, instantiates, calls `run`,
//! parses its JSON output and publishes a SUBAGENT_REPORT on the same kind of bus. The
//! agent imports are linked as traps (the guests measured call none of them): no limits,
//! no lifecycle events, no output capture, no stop — what Colony adds is the difference.
//! For table 2, a persistent instance calls `on-message` for each message from a channel
//! and publishes a TURN_COMPLETED.

use colony::{AgentEvent, EventBus, EventType};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wasmtime::component::{
    Component, ComponentType, Instance, InstancePre, Linker, Lower, ResourceTable,
};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The guest's `run-context` record, lowered as the WIT declares it.
#[derive(ComponentType, Lower)]
#[component(record)]
struct RunContext {
    #[component(name = "worker-id")]
    worker_id: String,
    #[component(name = "colony-id")]
    colony_id: String,
    task: String,
    #[component(name = "stream-id")]
    stream_id: String,
    #[component(name = "execution-id")]
    execution_id: String,
    persistent: bool,
    input: String,
}

/// A store's data: the WASI context and its resource table, nothing else.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// An engine and the guest, linked once.
#[derive(Clone)]
pub struct WasmtimeAlone {
    engine: Engine,
    pre: InstancePre<Bare>,
}

impl WasmtimeAlone {
    /// Loads the guest at `path` into an engine of its own.
    pub fn new(path: &std::path::Path) -> wasmtime::Result<Self> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(1000)
            .total_core_instances(4000)
            .total_memories(2000)
            .total_tables(4000)
            .total_stacks(1000)
            .linear_memory_keep_resident(64 << 10)
            .table_keep_resident(16 << 10)
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .memory_init_cow(true)
            .concurrency_support(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, path)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        linker.define_unknown_imports_as_traps(&component)?;
        let pre = linker.instantiate_pre(&component)?;
        Ok(Self { engine, pre })
    }

    /// A store and an instance of the guest, `run` called with `task` and `input`:
    /// the store, the instance, and what `run` returned.
    async fn start(
        &self,
        id: &str,
        task: &str,
        input: &str,
        persistent: bool,
    ) -> wasmtime::Result<(Store<Bare>, Instance, Result<String, String>)> {
        let bare = Bare {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, bare);
        // No epoch ticker runs: the deadline is never reached, but it is checked as a
        // sandbox's would be.
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let run = instance
            .get_typed_func::<(RunContext,), (Result<String, String>,)>(&mut store, "run")?;
        let context = RunContext {
            worker_id: id.to_owned(),
            colony_id: String::new(),
            task: task.to_owned(),
            stream_id: id.to_owned(),
            execution_id: id.to_owned(),
            persistent,
            input: input.to_owned(),
        };
        let (returned,) = run.call_async(&mut store, (context,)).await?;
        Ok((store, instance, returned))
    }

    /// One ephemeral worker: instantiate, `run`, publish its report on `bus`.
    pub async fn run(&self, id: String, task: &str, bus: &EventBus) -> wasmtime::Result<()> {
        let (store, _, returned) = self.start(&id, task, "{}", false).await?;
        drop(store);
        let data = json!({"worker_id": id, "colony_id": "", "task": task,
            "status": if returned.is_ok() { "success" } else { "failed" },
            "data": parsed(&returned)?});
        bus.publish(event(EventType::SubagentReport, &id, data));
        Ok(())
    }

    /// One persistent worker: instantiate, `run` with `input`, then each message of
    /// `inbox` an `on-message` call and a TURN_COMPLETED on `bus`, until the inbox closes.
    pub async fn serve(
        &self,
        id: String,
        input: &str,
        mut inbox: mpsc::UnboundedReceiver<String>,
        bus: &EventBus,
    ) -> wasmtime::Result<()> {
        let (mut store, instance, _) = self.start(&id, "", input, true).await?;
        let on_message = instance
            .get_typed_func::<(&str,), (Result<String, String>,)>(&mut store, "on-message")?;
        let mut turn = 0u64;
        while let Some(message) = inbox.recv().await {
            turn += 1;
            let (returned,) = on_message.call_async(&mut store, (&message,)).await?;
            let data = json!({"worker_id": id, "turn": turn, "message": message,
                "output": parsed(&returned)?});
            bus.publish(event(EventType::TurnCompleted, &id, data));
        }
        Ok(())
    }
}

/// A call's JSON output as a tree (null for an error).
fn parsed(returned: &Result<String, String>) -> serde_json::Result<Value> {
    match returned {
        Ok(text) => serde_json::from_str(text),
        Err(_) => Ok(Value::Null),
    }
}

fn event(event_type: EventType, id: &str, data: Value) -> AgentEvent {
    AgentEvent {
        event_type,
        stream_id: id.to_owned(),
        worker_id: id.to_owned(),
        execution_id: id.to_owned(),
        data,
        timestamp: chrono::Utc::now(),
    }
}

/// Ephemeral workers run by wasmtime alone in a closed loop; one table row.
pub async fn row(guest: &WasmtimeAlone, total: usize, concurrency: usize) -> String {
    let bus = EventBus::new();
    let consumer = crate::consume(&bus);
    let (guest, b) = (guest.clone(), bus.clone());
    let (elapsed, mut lat) = crate::closed_loop(total, concurrency, move |i| {
        let (guest, bus) = (guest.clone(), b.clone());
        async move {
            tokio::spawn(async move {
                guest
                    .run(format!("w{i}"), "count these words", &bus)
                    .await
                    .expect("the guest runs")
            })
            .await
            .expect("the worker's task");
        }
    })
    .await;
    drop(bus);
    consumer.await.expect("the consumer");
    crate::row("wasmtime alone", concurrency, total, elapsed, &mut lat)
}

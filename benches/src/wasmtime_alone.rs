//! Table 1's ceiling: the same guest run by wasmtime alone, without Colony.
//!
//! Why it is here: the bare-path target was set by a throwaway wasmtime program on this
//! machine class, and the machine's speed drifts up to 2× between runs, so a number from
//! another day says little. This row is that program, measured in the same run as
//! Colony's rows: an engine configured as a fast embedder would (pooling allocator with
//! copy-on-write images, resident slots reset by page-map scanning, no concurrent-call
//! bookkeeping, epoch interruption), one `InstancePre` for the guest, and per worker a
//! tokio task that makes a store with an empty WASI context, instantiates, calls `run`,
//! parses its JSON output and publishes a SUBAGENT_REPORT on the same kind of bus. The
//! agent imports are linked as traps (the silent guest calls none of them): no limits, no
//! lifecycle events, no output capture, no stop — what Colony adds is the difference.

use colony::{AgentEvent, EventBus, EventType};
use serde_json::{Value, json};
use wasmtime::component::{Component, ComponentType, InstancePre, Linker, Lower, ResourceTable};
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

    /// One worker: instantiate, `run`, publish its report on `bus`.
    pub async fn run(&self, id: String, task: &str, bus: &EventBus) -> wasmtime::Result<()> {
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
            worker_id: id.clone(),
            colony_id: String::new(),
            task: task.to_owned(),
            stream_id: id.clone(),
            execution_id: id.clone(),
            persistent: false,
            input: "{}".to_owned(),
        };
        let (returned,) = run.call_async(&mut store, (context,)).await?;
        drop(store);
        let output: Value = match &returned {
            Ok(text) => serde_json::from_str(text)?,
            Err(_) => Value::Null,
        };
        bus.publish(AgentEvent {
            event_type: EventType::SubagentReport,
            stream_id: id.clone(),
            worker_id: id.clone(),
            execution_id: id.clone(),
            data: json!({"worker_id": id, "colony_id": "", "task": task,
                "status": if returned.is_ok() { "success" } else { "failed" },
                "data": output}),
            timestamp: chrono::Utc::now(),
        });
        Ok(())
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

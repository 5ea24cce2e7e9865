//! The wasmtime `Engine`: its configuration, the pooling-allocator probe, the epoch ticker
//! and the on-disk cache of precompiled components.
//!
//! Why pooling: instantiating from pre-reserved slots with copy-on-write memory images
//! makes a worker's start a few page faults instead of fresh mappings, about twice as
//! fast here (`../shared/recipes/performance.md`). It needs a large address-space
//! reservation, which some platforms refuse, so `auto` probes it and falls back to the
//! on-demand allocator.
//!
//! Why a cache: compiling an untrusted component is the costly step (a 20 MB JavaScript
//! guest takes seconds). The cache key is the component's sha256 plus the engine's
//! compatibility hash, so a cached artifact is only ever loaded by an engine that
//! produced an identical one.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{
    Config, Enabled, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use crate::config::{AllocatorChoice, RuntimeConfig};
use crate::error::RuntimeError;

/// Which allocator the engine ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorKind {
    /// Instances come from pre-reserved slots with copy-on-write memory images.
    Pooling,
    /// Each instance maps its memories fresh (the fallback where pooling is refused).
    OnDemand,
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.memory_init_cow(true);
    // Colony calls each guest one export at a time; without WASIp3's concurrent calls
    // a store need not set up their bookkeeping (≈ 5 µs per worker here).
    config.concurrency_support(false);
    config
}

fn pooling(settings: &RuntimeConfig) -> PoolingAllocationConfig {
    let n = settings.pool_instances.max(1);
    let per_component = |limit: usize| u32::try_from(limit).unwrap_or(u32::MAX).max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_core_instances_per_component(per_component(settings.limits.instances))
        .max_memories_per_component(per_component(settings.limits.memories))
        .max_tables_per_component(per_component(settings.limits.tables))
        .table_elements(settings.limits.table_elements)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        // Keep a little of each freed slot resident, reset by scanning dirty pages.
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(16 << 10)
        .pagemap_scan(Enabled::Auto);
    pool
}

/// Builds the engine for `settings`, probing the pooling allocator when asked.
pub(crate) fn build(settings: &RuntimeConfig) -> Result<(Engine, AllocatorKind), RuntimeError> {
    let on_demand = || {
        Engine::new(&base_config())
            .map(|e| (e, AllocatorKind::OnDemand))
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))
    };
    let with_pooling = || {
        let mut config = base_config();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(settings)));
        Engine::new(&config)
            .map(|e| (e, AllocatorKind::Pooling))
            .map_err(|e| RuntimeError::Engine(format!("pooling allocator: {e:#}")))
    };
    match settings.allocator {
        AllocatorChoice::OnDemand => on_demand(),
        AllocatorChoice::Pooling => with_pooling(),
        AllocatorChoice::Auto => with_pooling().or_else(|e| {
            tracing::info!("{e}; using the on-demand allocator");
            on_demand()
        }),
    }
}

/// Advances the engine's epoch every `tick` until the engine is dropped. A dedicated
/// thread keeps ticks regular even when every tokio worker is busy running guests.
/// Fails closed: without the ticker a spinning guest could never be stopped, so a
/// runtime that cannot start it is not created.
pub(crate) fn spawn_epoch_ticker(engine: EngineWeak, tick: Duration) -> Result<(), RuntimeError> {
    std::thread::Builder::new()
        .name("colony-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .map(drop)
        .map_err(|e| RuntimeError::EpochTicker(e.to_string()))
}

/// The cache file for a component with `sha256` under `engine`.
fn cache_path(dir: &Path, engine: &Engine, sha256: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()))
}

/// Compiles `bytes`, through the cache in `cache_dir` when there is one. Returns the
/// component and whether it came from the cache.
pub(crate) fn compile(
    engine: &Engine,
    cache_dir: Option<&Path>,
    sha256: &str,
    bytes: &[u8],
) -> wasmtime::Result<(Component, bool)> {
    let Some(dir) = cache_dir else {
        return Ok((Component::from_binary(engine, bytes)?, false));
    };
    let path = cache_path(dir, engine, sha256);
    if path.is_file() {
        // SAFETY: the file was written by `precompile_component` of an engine with the
        // same compatibility hash (it is in the name) into the host's own cache folder;
        // wasmtime validates the header before trusting it.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok((component, true)),
            Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e:#}", path.display()),
        }
    }
    let serialized = engine.precompile_component(bytes)?;
    if let Err(e) = crate::storage::write_atomic(&path, &serialized) {
        tracing::warn!("cannot write the component cache: {e}");
    }
    // SAFETY: `serialized` was just produced by this engine.
    let component = unsafe { Component::deserialize(engine, &serialized)? };
    Ok((component, false))
}

//! The [`Runtime`]: one wasmtime `Engine` and one `Linker` shared by every plugin and
//! worker, plus the epoch ticker that lets the host interrupt guests.
//!
//! Why one of each: compiling a component and linking ~50 host functions are the costly
//! steps; a runtime does them once per plugin ([`Runtime::load_plugin`]) so that starting a
//! worker is only an instantiation from a pre-linked `InstancePre`.
//!
//! Secure defaults: WASI preview 2 is linked, but each worker's WASI context grants
//! nothing — no preopened directories, no environment variables, no arguments, no
//! network (TCP, UDP and name lookup are off), stdin empty, stdout discarded, stderr
//! captured (bounded) only to explain crashes. Clocks and randomness are available.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, EngineWeak};

use crate::bindings::Agent;
use crate::error::{PluginError, RuntimeError};
use crate::host_api::HostState;
use crate::limits::Limits;
use crate::plugin::Plugin;

/// The shared engine, linker and limits. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) limits: Limits,
}

impl Runtime {
    /// A runtime with the default [`Limits`].
    pub fn new() -> Result<Self, RuntimeError> {
        Self::with_limits(Limits::default())
    }

    /// A runtime whose workers obey `limits`.
    pub fn with_limits(limits: Limits) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Link(format!("{e:#}")))?;
        Agent::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(|e| RuntimeError::Link(format!("{e:#}")))?;

        spawn_epoch_ticker(engine.weak(), limits.epoch_tick);
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                limits,
            }),
        })
    }

    /// The limits every worker of this runtime obeys.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Loads, validates and compiles the component at `path` as plugin `name`.
    /// Compilation runs on a blocking thread, never on the async workers.
    pub async fn load_plugin(
        &self,
        name: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Plugin, PluginError> {
        let name = name.into();
        let path = path.as_ref();
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| PluginError::Read {
                plugin: name.clone(),
                path: path.to_owned(),
                source,
            })?;
        self.load_plugin_bytes(name, bytes).await
    }

    /// Like [`Runtime::load_plugin`], from the component's bytes.
    pub async fn load_plugin_bytes(
        &self,
        name: impl Into<String>,
        bytes: Vec<u8>,
    ) -> Result<Plugin, PluginError> {
        let runtime = self.clone();
        let name = name.into();
        let join = tokio::task::spawn_blocking(move || Plugin::compile(runtime, name, &bytes));
        join.await.unwrap_or_else(|e| {
            Err(PluginError::Compile {
                plugin: "?".into(),
                reason: format!("compiler task failed: {e}"),
            })
        })
    }
}

/// Advances the engine's epoch every `tick` until the engine is dropped. A dedicated
/// thread keeps ticks regular even when every tokio worker is busy running guests.
fn spawn_epoch_ticker(engine: EngineWeak, tick: Duration) {
    let spawned = std::thread::Builder::new()
        .name("colony-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the epoch ticker thread: {e}; guests cannot be interrupted");
    }
}

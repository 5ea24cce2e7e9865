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

    /// Loads, validates and compiles the component at `path` as plugin `name`, so
    /// that any problem with it is reported here. Compilation runs on a blocking thread.
    pub async fn load_plugin(
        &self,
        name: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Plugin, PluginError> {
        let plugin = self.plugin(name, path);
        plugin.load().await?;
        Ok(plugin)
    }

    /// Like [`Runtime::load_plugin`], from the component's bytes.
    pub async fn load_plugin_bytes(
        &self,
        name: impl Into<String>,
        bytes: Vec<u8>,
    ) -> Result<Plugin, PluginError> {
        let plugin = Plugin::from_bytes(self.clone(), name.into(), bytes);
        plugin.load().await?;
        Ok(plugin)
    }

    /// The component at `path` as plugin `name`, loaded when its first worker starts
    /// (or on [`Plugin::load`]). A worker of a plugin that fails to load ends FAILED
    /// with the load error.
    pub fn plugin(&self, name: impl Into<String>, path: impl AsRef<Path>) -> Plugin {
        Plugin::from_file(self.clone(), name.into(), path.as_ref().to_owned())
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

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

use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::Agent;
use crate::config::RuntimeConfig;
use crate::engine::{self, AllocatorKind};
use crate::error::RuntimeError;
use crate::host_api::{HostServices, HostState};
use crate::limits::Limits;
use crate::llm::LlmProvider;
use crate::tools::ToolRegistry;

/// The shared engine, linker and settings. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    allocator: AllocatorKind,
    services: Arc<HostServices>,
}

impl Runtime {
    /// A runtime with the default [`RuntimeConfig`].
    pub fn new() -> Result<Self, RuntimeError> {
        Self::with_config(RuntimeConfig::default())
    }

    /// A runtime whose workers obey `limits` (other settings default).
    pub fn with_limits(limits: Limits) -> Result<Self, RuntimeError> {
        Self::with_config(RuntimeConfig {
            limits,
            ..RuntimeConfig::default()
        })
    }

    /// A runtime with `config`: its model provider from `config.llm`, and the built-in
    /// tools.
    pub fn with_config(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let llm = match &config.llm {
            Some(llm) => Some(llm.build().map_err(RuntimeError::Llm)?),
            None => None,
        };
        Self::with_parts(config, llm, ToolRegistry::with_builtins())
    }

    /// A runtime with `config`, the model provider `llm` and the host tools `tools`
    /// (`config.llm` is ignored).
    pub fn with_parts(
        config: RuntimeConfig,
        llm: Option<Arc<dyn LlmProvider>>,
        tools: ToolRegistry,
    ) -> Result<Self, RuntimeError> {
        let (engine, allocator) = engine::build(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Link(format!("{e:#}")))?;
        Agent::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(|e| RuntimeError::Link(format!("{e:#}")))?;
        crate::sandbox::network::shadow_name_lookup(&mut linker)
            .map_err(|e| RuntimeError::Link(format!("name lookup policy: {e:#}")))?;
        crate::sandbox::files::shadow_filesystem(&mut linker)
            .map_err(|e| RuntimeError::Link(format!("filesystem policy: {e:#}")))?;
        #[cfg(feature = "mcp")]
        let mcp =
            Arc::new(crate::tools::mcp::McpServers::new(&config.mcp).map_err(RuntimeError::Mcp)?);
        let telemetry = crate::telemetry::Telemetry::start(&config.telemetry)?;
        engine::spawn_epoch_ticker(engine.weak(), config.epoch_tick)?;
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                config,
                allocator,
                services: Arc::new(HostServices {
                    llm,
                    tools,
                    #[cfg(feature = "mcp")]
                    mcp,
                    telemetry,
                }),
            }),
        })
    }

    /// The default limits of this runtime's workers.
    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    /// The runtime's settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Whether a model provider is configured.
    pub fn has_llm(&self) -> bool {
        self.inner.services.llm.is_some()
    }

    /// Its tracer, if traces are configured (see [`crate::telemetry`]).
    pub fn telemetry(&self) -> Option<&Arc<crate::telemetry::Telemetry>> {
        self.inner.services.telemetry.as_ref()
    }

    /// The instance allocator in use (pooling unless the platform refused it).
    pub fn allocator(&self) -> AllocatorKind {
        self.inner.allocator
    }

    /// The engine every plugin is compiled for and every store belongs to.
    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The linker holding the host's side of the world.
    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// What the runtime offers its guests (model, tools).
    pub(crate) fn services(&self) -> Arc<HostServices> {
        self.inner.services.clone()
    }
}

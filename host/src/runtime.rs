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

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::Agent;
use crate::config::RuntimeConfig;
use crate::engine::{self, AllocatorKind};
use crate::error::{PluginError, RuntimeError};
use crate::host_api::HostState;
use crate::limits::Limits;
use crate::llm::LlmProvider;
use crate::manifest::Manifest;
use crate::plugin::{Plugin, PluginSettings};
use crate::tools::ToolRegistry;

/// The shared engine, linker and settings. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) config: RuntimeConfig,
    allocator: AllocatorKind,
    pub(crate) llm: Option<Arc<dyn LlmProvider>>,
    pub(crate) tools: ToolRegistry,
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
        engine::spawn_epoch_ticker(engine.weak(), config.epoch_tick)?;
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                config,
                allocator,
                llm,
                tools,
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
        self.inner.llm.is_some()
    }

    /// The instance allocator in use (pooling unless the platform refused it).
    pub fn allocator(&self) -> AllocatorKind {
        self.inner.allocator
    }

    /// Loads, validates and compiles the component at `path` as plugin `name`, with no
    /// grants and the runtime's limits, so that any problem is reported here.
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
        let settings = PluginSettings::ungranted(name.into(), self.limits().clone());
        let plugin = Plugin::from_bytes(self.clone(), settings, bytes);
        plugin.load().await?;
        Ok(plugin)
    }

    /// The component at `path` as plugin `name` (no grants, the runtime's limits),
    /// loaded when its first worker starts or on [`Plugin::load`]. A worker of a plugin
    /// that fails to load ends FAILED with the load error.
    pub fn plugin(&self, name: impl Into<String>, path: impl AsRef<Path>) -> Plugin {
        let mut settings = PluginSettings::ungranted(name.into(), self.limits().clone());
        settings.origin = Some(path.as_ref().to_owned());
        Plugin::from_file(self.clone(), settings, path.as_ref().to_owned())
    }

    /// The plugin a manifest describes (its component, sha256 pin, grants and limits),
    /// loaded and checked now.
    pub async fn load_manifest(&self, path: impl AsRef<Path>) -> Result<Plugin, PluginError> {
        let manifest = Manifest::load(path).map_err(PluginError::Manifest)?;
        let plugin = self.plugin_from_manifest(manifest)?;
        plugin.load().await?;
        Ok(plugin)
    }

    /// The plugin `manifest` describes, loaded on first use.
    pub fn plugin_from_manifest(&self, manifest: Manifest) -> Result<Plugin, PluginError> {
        let limits = self.limits().overlay(&manifest.limits).map_err(|reason| {
            PluginError::Manifest(crate::error::ManifestError::Invalid {
                path: manifest.path.clone(),
                reason,
            })
        })?;
        let settings = PluginSettings {
            name: manifest.name,
            limits,
            grants: manifest.grants,
            sha256: manifest.sha256,
            origin: Some(manifest.path),
        };
        Ok(Plugin::from_file(
            self.clone(),
            settings,
            manifest.component,
        ))
    }
}

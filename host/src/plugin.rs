//! A plugin: a guest component, validated, compiled once and pre-linked against the host,
//! ready to be instantiated per worker.
//!
//! Everything that can be wrong with a component file is found when it is loaded, before
//! any guest code runs: not wasm, a core module instead of a component, a compile error,
//! an import the host does not provide, a missing export. Each gets its own
//! [`PluginError`] variant.
//!
//! A plugin is loaded either eagerly ([`Runtime::load_plugin`]: the error comes back to
//! the caller) or on first use ([`Runtime::plugin`]: the first worker to start compiles it,
//! every later one reuses the result, and a worker of a plugin that fails to load ends
//! FAILED with the load error — so one bad plugin in a fan-out fails only its own
//! workers). Either way a component is compiled once per plugin, never per worker.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use wasmtime::component::Component;
use wasmtime::wasmparser::Parser;

use crate::bindings::AgentPre;
use crate::error::PluginError;
use crate::host_api::HostState;
use crate::runtime::Runtime;

/// A guest component known to a runtime. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    name: String,
    pub(crate) runtime: Runtime,
    /// Where the component comes from, until it is compiled.
    source: Mutex<Option<Source>>,
    compiled: OnceCell<Result<Compiled, PluginError>>,
}

enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

pub(crate) struct Compiled {
    pub(crate) pre: AgentPre<HostState>,
    size: usize,
}

impl Plugin {
    pub(crate) fn from_file(runtime: Runtime, name: String, path: PathBuf) -> Self {
        Self::new(runtime, name, Source::File(path))
    }

    pub(crate) fn from_bytes(runtime: Runtime, name: String, bytes: Vec<u8>) -> Self {
        Self::new(runtime, name, Source::Bytes(bytes))
    }

    fn new(runtime: Runtime, name: String, source: Source) -> Self {
        Self {
            inner: Arc::new(PluginInner {
                name,
                runtime,
                source: Mutex::new(Some(source)),
                compiled: OnceCell::new(),
            }),
        }
    }

    /// The plugin's name, used in every error and event about it.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The runtime the plugin belongs to.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// Size of the component in bytes, once loaded.
    pub fn size(&self) -> Option<usize> {
        match self.inner.compiled.get() {
            Some(Ok(compiled)) => Some(compiled.size),
            _ => None,
        }
    }

    /// Reads, validates and compiles the component (once; later calls return the first
    /// outcome). Compilation runs on a blocking thread, never on the async workers.
    pub async fn load(&self) -> Result<(), PluginError> {
        self.compiled().await.map(|_| ())
    }

    pub(crate) async fn compiled(&self) -> Result<&Compiled, PluginError> {
        let outcome = self
            .inner
            .compiled
            .get_or_init(|| async {
                let source = self
                    .inner
                    .source
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                let name = self.inner.name.clone();
                let bytes = match source {
                    Some(Source::Bytes(bytes)) => bytes,
                    Some(Source::File(path)) => match tokio::fs::read(&path).await {
                        Ok(bytes) => bytes,
                        Err(source) => {
                            return Err(PluginError::Read {
                                plugin: name,
                                path,
                                source: Arc::new(source),
                            });
                        }
                    },
                    None => unreachable!("the source is taken only inside this once-cell"),
                };
                let runtime = self.inner.runtime.clone();
                tokio::task::spawn_blocking(move || compile(&runtime, &name, &bytes))
                    .await
                    .unwrap_or_else(|e| {
                        Err(PluginError::Compile {
                            plugin: self.inner.name.clone(),
                            reason: format!("the compiler task failed: {e}"),
                        })
                    })
            })
            .await;
        outcome.as_ref().map_err(Clone::clone)
    }
}

fn compile(runtime: &Runtime, name: &str, bytes: &[u8]) -> Result<Compiled, PluginError> {
    check_is_component(name, bytes)?;
    let component =
        Component::from_binary(&runtime.inner.engine, bytes).map_err(|e| PluginError::Compile {
            plugin: name.to_owned(),
            reason: format!("{e:#}"),
        })?;
    let instance_pre = runtime
        .inner
        .linker
        .instantiate_pre(&component)
        .map_err(|e| PluginError::UnknownImport {
            plugin: name.to_owned(),
            reason: format!("{e:#}"),
        })?;
    let pre = AgentPre::new(instance_pre).map_err(|e| PluginError::MissingExport {
        plugin: name.to_owned(),
        reason: format!("{e:#}"),
    })?;
    Ok(Compiled {
        pre,
        size: bytes.len(),
    })
}

fn check_is_component(plugin: &str, bytes: &[u8]) -> Result<(), PluginError> {
    let reason = if Parser::is_component(bytes) {
        return Ok(());
    } else if Parser::is_core_wasm(bytes) {
        "it is a core WebAssembly module; build it for wasm32-wasip2 or wrap it with \
         `wasm-tools component new`"
    } else if bytes.is_empty() {
        "the file is empty"
    } else {
        "the file does not start with the WebAssembly magic number"
    };
    Err(PluginError::NotAComponent {
        plugin: plugin.to_owned(),
        reason: reason.to_owned(),
    })
}

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
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use wasmtime::wasmparser::Parser;

use crate::bindings::AgentPre;
use crate::error::PluginError;
use crate::host_api::HostState;
use crate::limits::Limits;
use crate::runtime::Runtime;
use crate::sandbox::Grants;

/// A guest component known to a runtime. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

/// What a plugin is allowed and held to (from its manifest, or the runtime's defaults).
#[derive(Debug, Clone)]
pub(crate) struct PluginSettings {
    pub name: String,
    pub limits: Limits,
    pub grants: Grants,
    /// The pinned sha256, if any.
    pub sha256: Option<String>,
    /// The file the plugin was described by: its manifest, or its component.
    pub origin: Option<PathBuf>,
}

impl PluginSettings {
    pub fn ungranted(name: String, limits: Limits) -> Self {
        Self {
            name,
            limits,
            grants: Grants::default(),
            sha256: None,
            origin: None,
        }
    }
}

pub(crate) struct PluginInner {
    pub(crate) settings: PluginSettings,
    pub(crate) runtime: Runtime,
    /// Where the component comes from. Kept (not taken) so that a compilation whose
    /// first waiter was cancelled can be started again by the next.
    source: Source,
    compiled: OnceCell<Result<Compiled, PluginError>>,
}

#[derive(Clone)]
enum Source {
    File(PathBuf),
    Bytes(Arc<[u8]>),
}

pub(crate) struct Compiled {
    pub(crate) pre: AgentPre<HostState>,
    size: usize,
    sha256: String,
    from_cache: bool,
}

impl Plugin {
    pub(crate) fn from_file(runtime: Runtime, settings: PluginSettings, path: PathBuf) -> Self {
        Self::new(runtime, settings, Source::File(path))
    }

    pub(crate) fn from_bytes(runtime: Runtime, settings: PluginSettings, bytes: Vec<u8>) -> Self {
        Self::new(runtime, settings, Source::Bytes(bytes.into()))
    }

    fn new(runtime: Runtime, settings: PluginSettings, source: Source) -> Self {
        Self {
            inner: Arc::new(PluginInner {
                settings,
                runtime,
                source,
                compiled: OnceCell::new(),
            }),
        }
    }

    /// The plugin's name, used in every error and event about it.
    pub fn name(&self) -> &str {
        &self.inner.settings.name
    }

    /// The runtime the plugin belongs to.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The file the plugin was described by (its manifest, or its component), if any.
    pub fn origin(&self) -> Option<&std::path::Path> {
        self.inner.settings.origin.as_deref()
    }

    /// The limits its workers obey (the runtime's, overridden by the manifest).
    pub fn limits(&self) -> &Limits {
        &self.inner.settings.limits
    }

    /// What its workers may reach.
    pub fn grants(&self) -> &Grants {
        &self.inner.settings.grants
    }

    fn loaded(&self) -> Option<&Compiled> {
        self.inner.compiled.get().and_then(|c| c.as_ref().ok())
    }

    /// Size of the component in bytes, once loaded.
    pub fn size(&self) -> Option<usize> {
        self.loaded().map(|c| c.size)
    }

    /// The component's sha256 (lower-case hex), once loaded.
    pub fn sha256(&self) -> Option<&str> {
        self.loaded().map(|c| c.sha256.as_str())
    }

    /// Whether the compiled component came from the on-disk cache, once loaded.
    pub fn from_cache(&self) -> Option<bool> {
        self.loaded().map(|c| c.from_cache)
    }

    /// Reads, checks and compiles the component (once; later calls return the first
    /// outcome). Compilation runs on a blocking thread, never on the async workers, and
    /// within the plugin's `compile_timeout`.
    pub async fn load(&self) -> Result<(), PluginError> {
        self.compiled().await.map(|_| ())
    }

    pub(crate) async fn compiled(&self) -> Result<&Compiled, PluginError> {
        let outcome = self.inner.compiled.get_or_init(|| self.compile()).await;
        outcome.as_ref().map_err(Clone::clone)
    }

    async fn compile(&self) -> Result<Compiled, PluginError> {
        let name = self.name().to_owned();
        let bytes: Arc<[u8]> = match self.inner.source.clone() {
            Source::Bytes(bytes) => bytes,
            Source::File(path) => tokio::fs::read(&path)
                .await
                .map_err(|source| PluginError::Read {
                    plugin: name.clone(),
                    path,
                    source: Arc::new(source),
                })?
                .into(),
        };
        let sha256 = format!("{:x}", Sha256::digest(&bytes));
        if let Some(expected) = &self.inner.settings.sha256
            && *expected != sha256
        {
            return Err(PluginError::HashMismatch {
                plugin: name,
                expected: expected.clone(),
                actual: sha256,
            });
        }
        check_is_component(&name, &bytes)?;
        let runtime = self.inner.runtime.clone();
        let timeout = self.limits().compile_timeout;
        let task = tokio::task::spawn_blocking({
            let name = name.clone();
            move || compile(&runtime, &name, sha256, &bytes)
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(PluginError::Compile {
                plugin: name,
                reason: format!("the compiler task failed: {e}"),
            }),
            Err(_) => Err(PluginError::Compile {
                plugin: name,
                reason: format!(
                    "compilation took longer than the limit of {}",
                    humantime::format_duration(timeout)
                ),
            }),
        }
    }
}

fn compile(
    runtime: &Runtime,
    name: &str,
    sha256: String,
    bytes: &[u8],
) -> Result<Compiled, PluginError> {
    let inner = &runtime.inner;
    let (component, from_cache) = crate::engine::compile(
        &inner.engine,
        inner.config.cache_dir.as_deref(),
        &sha256,
        bytes,
    )
    .map_err(|e| PluginError::Compile {
        plugin: name.to_owned(),
        reason: format!("{e:#}"),
    })?;
    let instance_pre =
        inner
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
        sha256,
        from_cache,
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

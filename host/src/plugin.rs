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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use wasmtime::wasmparser::Parser;

use crate::bindings::AgentPre;
use crate::error::{ManifestError, PluginError};
use crate::host_api::HostState;
use crate::limits::Limits;
use crate::manifest::Manifest;
use crate::runtime::Runtime;
use crate::sandbox::{Grants, Policy};

/// A guest component known to a runtime. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

/// Where a plugin comes from and what it is allowed and held to (from its manifest, or
/// the runtime's defaults).
#[derive(Debug, Clone)]
pub(crate) struct PluginSettings {
    pub policy: Policy,
    /// The pinned sha256, if any.
    pub sha256: Option<String>,
    /// The file the plugin was described by: its manifest, or its component.
    pub origin: Option<PathBuf>,
}

impl PluginSettings {
    pub fn ungranted(name: String, limits: Limits) -> Self {
        Self {
            policy: Policy {
                name,
                limits,
                grants: Grants::default(),
            },
            sha256: None,
            origin: None,
        }
    }
}

pub(crate) struct PluginInner {
    policy: Arc<Policy>,
    sha256: Option<String>,
    origin: Option<PathBuf>,
    runtime: Runtime,
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
    /// Whether the component imports `wasi:filesystem/preopens`, the only way it can
    /// reach its `/data` folder.
    pub(crate) opens_files: bool,
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
                policy: Arc::new(settings.policy),
                sha256: settings.sha256,
                origin: settings.origin,
                runtime,
                source,
                compiled: OnceCell::new(),
            }),
        }
    }

    /// The plugin's name, used in every error and event about it.
    pub fn name(&self) -> &str {
        &self.inner.policy.name
    }

    /// The runtime the plugin belongs to.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The file the plugin was described by (its manifest, or its component), if any.
    pub fn origin(&self) -> Option<&std::path::Path> {
        self.inner.origin.as_deref()
    }

    /// The limits its workers obey (the runtime's, overridden by the manifest).
    pub fn limits(&self) -> &Limits {
        &self.inner.policy.limits
    }

    /// What its workers may reach.
    pub fn grants(&self) -> &Grants {
        &self.inner.policy.grants
    }

    /// Its name, grants and limits, shared with its workers' host functions.
    pub(crate) fn policy(&self) -> Arc<Policy> {
        self.inner.policy.clone()
    }

    /// The engine its workers' stores belong to.
    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        self.runtime().engine()
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
        if let Some(expected) = &self.inner.sha256
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

/// Loading plugins. Here rather than in `runtime.rs` so that a runtime does not depend
/// on the plugins it loads.
impl Runtime {
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
            PluginError::Manifest(ManifestError::Invalid {
                path: manifest.path.clone(),
                reason,
            })
        })?;
        let settings = PluginSettings {
            policy: Policy {
                name: manifest.name,
                limits,
                grants: manifest.grants,
            },
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

fn compile(
    runtime: &Runtime,
    name: &str,
    sha256: String,
    bytes: &[u8],
) -> Result<Compiled, PluginError> {
    let (component, from_cache) = crate::engine::compile(
        runtime.engine(),
        runtime.config().cache_dir.as_deref(),
        &sha256,
        bytes,
    )
    .map_err(|e| PluginError::Compile {
        plugin: name.to_owned(),
        reason: format!("{e:#}"),
    })?;
    let instance_pre =
        runtime
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| PluginError::UnknownImport {
                plugin: name.to_owned(),
                reason: format!("{e:#}"),
            })?;
    let pre = AgentPre::new(instance_pre).map_err(|e| PluginError::MissingExport {
        plugin: name.to_owned(),
        reason: format!("{e:#}"),
    })?;
    // Without `wasi:filesystem/preopens` a guest cannot see a preopened folder: its
    // workers need no `/data` (saves two folder creations per worker).
    let opens_files = component
        .component_type()
        .imports(runtime.engine())
        .any(|(name, _)| name.starts_with("wasi:filesystem/preopens"));
    Ok(Compiled {
        pre,
        opens_files,
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

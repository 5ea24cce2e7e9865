//! A loaded plugin: a guest component, validated, compiled once and pre-linked against the
//! host, ready to be instantiated per worker.
//!
//! Everything that can be wrong with a component file is found here, before any worker
//! exists: not wasm, a core module instead of a component, a compile error, an import the
//! host does not provide, a missing export. Each gets its own [`PluginError`] variant.

use std::sync::Arc;

use wasmtime::component::Component;
use wasmtime::wasmparser::Parser;

use crate::bindings::AgentPre;
use crate::error::PluginError;
use crate::host_api::HostState;
use crate::runtime::Runtime;

/// A compiled, pre-linked guest component. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    pub(crate) name: String,
    pub(crate) pre: AgentPre<HostState>,
    pub(crate) runtime: Runtime,
    size: usize,
}

impl Plugin {
    pub(crate) fn compile(
        runtime: Runtime,
        name: String,
        bytes: &[u8],
    ) -> Result<Self, PluginError> {
        check_is_component(&name, bytes)?;
        let engine = &runtime.inner.engine;
        let component =
            Component::from_binary(engine, bytes).map_err(|e| PluginError::Compile {
                plugin: name.clone(),
                reason: format!("{e:#}"),
            })?;
        let instance_pre = runtime
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::UnknownImport {
                plugin: name.clone(),
                reason: format!("{e:#}"),
            })?;
        let pre = AgentPre::new(instance_pre).map_err(|e| PluginError::MissingExport {
            plugin: name.clone(),
            reason: format!("{e:#}"),
        })?;
        Ok(Self {
            inner: Arc::new(PluginInner {
                name,
                pre,
                runtime,
                size: bytes.len(),
            }),
        })
    }

    /// The plugin's name, used in every error and event about it.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Size of the component file in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The runtime the plugin was compiled for.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }
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

//! Host tools: functions a guest may call by name (`colony:agent/tools`), registered in
//! Rust behind the [`Tool`] trait and granted per plugin by its manifest
//! (`grants.tools = ["files.read", …]`).
//!
//! Tools run in the host, so each one is written to respect the worker's sandbox: the
//! built-ins ([`builtin`]) reach only the worker's granted folders and allowed hosts.
//! Every call has a timeout and counts against the worker's tool-call budget.

pub mod builtin;
#[cfg(feature = "mcp")]
pub mod mcp;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::sandbox::DiskQuota;
use crate::sandbox::{DirGrant, HostPattern};

/// A tool failed in a way the guest should hear about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool's schema (missing, mistyped or not an object);
    /// holds what is wrong.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The arguments were valid but the tool could not do its work (e.g. a path outside
    /// the granted folders, an I/O error); holds the message the guest sees.
    #[error("{0}")]
    Failed(String),
}

/// What a tool may reach on behalf of one worker.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The calling worker.
    pub worker_id: String,
    /// Its own data folder (guest path `/data`), if it has storage.
    pub data_dir: Option<PathBuf>,
    /// Its plugin's granted folders.
    pub dirs: Vec<DirGrant>,
    /// Its plugin's network allow-list.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) network: Vec<HostPattern>,
    /// Bytes the result may take (the worker's host memory budget left): a tool that
    /// reads a file or a body stops at this, and a larger result is refused.
    pub max_result_bytes: usize,
    /// The worker's disk quota: a tool that writes files charges it first.
    pub disk: Arc<DiskQuota>,
}

/// A host function guests can call.
#[async_trait::async_trait]
pub trait Tool: Send + Sync {
    /// The name guests call it by (and manifests grant), e.g. `files.read`.
    fn name(&self) -> &str;
    /// What it does, for the model.
    fn description(&self) -> &str;
    /// JSON schema of its arguments object.
    fn parameters(&self) -> Value;
    /// Runs it.
    async fn call(&self, ctx: &ToolContext, arguments: Value) -> Result<Value, ToolError>;
}

/// The tools a runtime offers, by name.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl ToolRegistry {
    /// No tools.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in tools: `time.now`, `files.read`, `files.write`, `files.list`, and
    /// `http.fetch` (with the `http` feature).
    pub fn with_builtins() -> Self {
        let mut registry = Self::default();
        for tool in builtin::all() {
            registry.register(tool);
        }
        registry
    }

    /// Adds (or replaces) a tool.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.name().to_owned(), tool);
    }

    /// The tool named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// Every tool's name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }
}

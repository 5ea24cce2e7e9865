//! The host's typed errors. Each names what failed and with which plugin or worker.
//!
//! These are errors for the *embedder* (the code driving Colony). A guest's own
//! mistakes never surface here: they end the worker (see [`WorkerResult`]) or come back
//! to the guest as an `err` from the host function it called.
//!
//! [`WorkerResult`]: crate::WorkerResult

use std::path::PathBuf;
use std::sync::Arc;

use crate::WorkerState;

/// Setting up the runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The wasmtime engine could not be configured on this platform.
    #[error("cannot configure the wasmtime engine: {0}")]
    Engine(String),
    /// The model provider could not be set up.
    #[error("cannot set up the model provider: {0}")]
    Llm(String),
    /// The host interfaces could not be linked.
    /// The thread that lets the host interrupt guests could not start; without it a
    /// spinning guest could never be stopped, so no runtime is created.
    #[error("cannot start the epoch ticker thread, so guests could not be interrupted: {0}")]
    EpochTicker(String),
    #[error("cannot link the host interfaces: {0}")]
    Link(String),
}

/// Loading a plugin (a guest component) failed. Nothing is left half-loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The component file could not be read.
    #[error("plugin '{plugin}': cannot read {}: {source}", path.display())]
    Read {
        plugin: String,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The bytes are not a WebAssembly component (e.g. a core module or not wasm).
    #[error("plugin '{plugin}' is not a WebAssembly component: {reason}")]
    NotAComponent { plugin: String, reason: String },
    /// The component failed validation or compilation.
    #[error("plugin '{plugin}' failed to compile: {reason}")]
    Compile { plugin: String, reason: String },
    /// The component imports something the host does not provide.
    #[error("plugin '{plugin}' imports something Colony does not provide: {reason}")]
    UnknownImport { plugin: String, reason: String },
    /// The component's sha256 differs from the one its manifest pins.
    #[error(
        "plugin '{plugin}': sha256 mismatch: the manifest pins {expected}, the component is {actual}"
    )]
    HashMismatch {
        plugin: String,
        expected: String,
        actual: String,
    },
    /// The plugin's manifest could not be read or is invalid.
    #[error("plugin manifest {0}")]
    Manifest(#[source] ManifestError),
    /// The component does not export the `colony:agent/agent` world's functions.
    #[error("plugin '{plugin}' does not export the colony:agent world: {reason}")]
    MissingExport { plugin: String, reason: String },
}

/// A request to a [`Worker`](crate::Worker) was refused. The worker is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker specification is invalid.
    #[error("worker '{worker}': invalid specification: {reason}")]
    InvalidSpec { worker: String, reason: String },
    /// The operation needs a state the worker is not in.
    #[error("worker '{worker}': cannot {action} while {state}")]
    WrongState {
        worker: String,
        action: &'static str,
        state: WorkerState,
    },
    /// `seed_conversation` needs an explicit storage folder.
    #[error(
        "worker '{worker}': seed_conversation needs an explicit storage path (the working directory is never used)"
    )]
    NoStoragePath { worker: String },
    /// An injected message is larger than the limit.
    #[error("worker '{worker}': message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        worker: String,
        size: usize,
        limit: usize,
    },
    /// The worker's inbox is full.
    #[error("worker '{worker}': inbox full ({capacity} messages waiting)")]
    InboxFull { worker: String, capacity: usize },
    /// The messages waiting in the worker's inbox hold its whole host memory budget.
    #[error("worker '{worker}': inbox full: {source}")]
    InboxOverBudget {
        worker: String,
        #[source]
        source: crate::worker::OverBudget,
    },
    /// The worker's storage folder could not be written or read.
    #[error("worker '{worker}': storage: {source}")]
    Storage {
        worker: String,
        #[source]
        source: StorageError,
    },
}

/// Reading or writing a worker's storage folder failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A manifest or host config file could not be read or is invalid.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// A limit a guest exceeded. Raised as a trap from inside the store, so the worker ends
/// FAILED with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("memory limit exceeded: {0}")]
    Memory(String),
    #[error("table limit exceeded: {0} elements")]
    TableElements(usize),
    #[error("{what} limit exceeded: {limit}")]
    Count { what: &'static str, limit: usize },
    #[error("time limit exceeded: {what} took longer than {limit}")]
    Time { what: String, limit: String },
    #[error("event rate limit exceeded: {0} events per second")]
    EventRate(u32),
}

//! The host's typed errors. Each names what failed and with which plugin or worker.
//!
//! These are errors for the *embedder* (the code driving Colony). A guest's own
//! mistakes never surface here: they end the worker (see [`WorkerResult`]) or come back
//! to the guest as an `err` from the host function it called.
//!
//! [`WorkerResult`]: crate::WorkerResult

use std::path::PathBuf;
use std::sync::Arc;

/// Setting up the runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The wasmtime engine could not be configured on this platform.
    #[error("cannot configure the wasmtime engine: {0}")]
    Engine(String),
    /// The model provider could not be set up.
    #[error("cannot set up the model provider: {0}")]
    Llm(String),
    /// The thread that lets the host interrupt guests could not start; without it a
    /// spinning guest could never be stopped, so no runtime is created.
    #[error("cannot start the epoch ticker thread, so guests could not be interrupted: {0}")]
    EpochTicker(String),
    /// The host interfaces (WASI, the `colony:agent` imports or the sandbox's name-lookup
    /// and filesystem policies) could not be added to the linker.
    #[error("cannot link the host interfaces: {0}")]
    Link(String),
    /// An MCP server's configuration is unusable (holds what is wrong).
    #[error("MCP server configuration: {0}")]
    Mcp(String),
    /// Traces are configured but cannot be exported.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
}

/// Loading a plugin (a guest component) failed. Nothing is left half-loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The component file could not be read.
    #[error("plugin '{plugin}': cannot read {}: {source}", path.display())]
    Read {
        /// The plugin's name.
        plugin: String,
        /// The component file that could not be read.
        path: PathBuf,
        /// The I/O error from reading it (shared, so the error can be cloned).
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The bytes are not a WebAssembly component (e.g. a core module or not wasm).
    #[error("plugin '{plugin}' is not a WebAssembly component: {reason}")]
    NotAComponent {
        /// The plugin's name.
        plugin: String,
        /// What the bytes are instead: a core module, an empty file, or not wasm at all.
        reason: String,
    },
    /// The component failed validation or compilation, or compiling it took longer than
    /// the plugin's `compile_timeout`.
    #[error("plugin '{plugin}' failed to compile: {reason}")]
    Compile {
        /// The plugin's name.
        plugin: String,
        /// The compiler's error, or the time limit it exceeded.
        reason: String,
    },
    /// The component imports something the host does not provide.
    #[error("plugin '{plugin}' imports something Colony does not provide: {reason}")]
    UnknownImport {
        /// The plugin's name.
        plugin: String,
        /// The linker's error, naming the import it could not satisfy.
        reason: String,
    },
    /// The component's sha256 differs from the one its manifest pins.
    #[error(
        "plugin '{plugin}': sha256 mismatch: the manifest pins {expected}, the component is {actual}"
    )]
    HashMismatch {
        /// The plugin's name.
        plugin: String,
        /// The sha256 the manifest pins (lower-case hex).
        expected: String,
        /// The sha256 of the component bytes actually read (lower-case hex).
        actual: String,
    },
    /// The plugin's manifest could not be read or is invalid.
    #[error("plugin manifest {0}")]
    Manifest(#[source] ManifestError),
    /// The component does not export the `colony:agent/agent` world's functions.
    #[error("plugin '{plugin}' does not export the colony:agent world: {reason}")]
    MissingExport {
        /// The plugin's name.
        plugin: String,
        /// What the bindings found missing or mistyped among the component's exports.
        reason: String,
    },
}

/// Reading or writing a worker's storage folder failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file or folder in the storage folder could not be created, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A value could not be serialised to JSON, or a stored file does not parse as the
    /// JSON expected.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The file being written or read.
        path: PathBuf,
        /// The serde_json error.
        #[source]
        source: serde_json::Error,
    },
}

/// A manifest or host config file could not be read or is invalid.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read (missing, unreadable, or not UTF-8).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The manifest or config file.
        path: PathBuf,
        /// The I/O error from reading it (shared, so the error can be cloned).
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The file was read but its content is rejected: bad TOML, a bad field value, or
    /// an invalid `[limits]` override.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The manifest or config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// A limit a guest exceeded. Raised as a trap from inside the store, so the worker ends
/// FAILED with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// Growing a memory or table would take the guest past its memory budget; holds
    /// that budget in human-readable form (e.g. `64 MiB`).
    #[error("memory limit exceeded: {0}")]
    Memory(String),
    /// A table would grow past the `table_elements` limit, which it holds.
    #[error("table limit exceeded: {0} elements")]
    TableElements(usize),
    /// The guest holds as many of some resource as it may (e.g. WASI resource handles)
    /// and asked for another.
    #[error("{what} limit exceeded: {limit}")]
    Count {
        /// The kind of resource, e.g. `WASI resource`.
        what: &'static str,
        /// The most the guest may hold at once.
        limit: usize,
    },
    /// A guest call ran past its time limit and was dropped.
    #[error("time limit exceeded: {what} took longer than {limit}")]
    Time {
        /// The call that ran too long: `run` or `turn N`.
        what: String,
        /// The limit, human-readable (e.g. `5m`).
        limit: String,
    },
    /// The guest published events faster than allowed; holds the allowed events per
    /// second.
    #[error("event rate limit exceeded: {0} events per second")]
    EventRate(u32),
}

//! # Colony
//!
//! Run AI agent workers as sandboxed WebAssembly components.
//!
//! An agent framework fans work out from an overseer to many worker agent loops that
//! report back. Colony runs each loop as a component targeting the `colony:agent` WIT
//! world (`wit/agent.wit`), so a third-party agent plugin — written in any language that
//! compiles to a component — can only do what the host grants it.
//!
//! ```no_run
//! use colony::{EventBus, EventFilter, Runtime, Worker, WorkerSpec};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new()?;
//! let plugin = runtime.load_plugin("echo", "echo_agent.wasm").await?;
//! let bus = EventBus::new();
//! let mut reports = bus.subscribe(EventFilter::all().types([colony::EventType::SubagentReport]));
//! let worker = Worker::new(&plugin, WorkerSpec::ephemeral("w-1", "summarise the news"), Some(bus))?;
//! let result = worker.run().await?;
//! println!("{}: {}", result.status, result.summary);
//! let report = reports.recv().await?;
//! # Ok(()) }
//! ```
//!
//! A [`Colony`] runs an overseer and fans tasks out to ephemeral workers, in this process
//! or — configured with a NATS server — on `colony node`s on other machines
//! ([`cluster`]), with the same API, events and payloads.
//!
//! Secure defaults: a guest gets no files, no environment, no network and no inherited
//! stdio; its memory, tables and instances are limited ([`Limits`]); a trap, a panic or a
//! hostile loop ends only that worker.

#![deny(missing_docs)]

mod bindings;
#[cfg(feature = "nats")]
pub mod cluster;
#[cfg(feature = "colony")]
mod colony;
mod config;
mod conversation;
#[cfg(any(feature = "mcp", feature = "telemetry"))]
mod crypto;
mod engine;
mod error;
mod events;
mod host_api;
#[cfg(feature = "colony")]
mod journal;
mod limits;
pub mod llm;
mod manifest;
mod plugin;
pub mod replay;
mod rfc3339;
mod runtime;
pub mod sandbox;
mod storage;
pub mod telemetry;
pub mod text;
pub mod tools;
mod worker;

#[cfg(feature = "colony")]
pub use colony::{Batch, Colony, ColonyConfig, ColonyError, Replay, ReplayOutcome, Task};
pub use config::{AllocatorChoice, RuntimeConfig};
pub use conversation::MessagePart;
pub use engine::AllocatorKind;
pub use error::{LimitExceeded, ManifestError, PluginError, RuntimeError, StorageError};
pub use events::{AgentEvent, EventBus, EventFilter, EventType, RecvError, Subscription};
#[cfg(feature = "colony")]
pub use journal::{
    BatchRecord, CONTROL_MAX_AGE, CONTROL_POLL, ColonyCensus, Control, ControlAck, EventWindow,
    HEARTBEAT_STALE_AFTER, Journal, JournalError, JournalProblem, JournalSync, Lineage, MAX_PAGE,
    RecordState, ReportRecord, SUMMARY_CHARS, WorkerPage, WorkerQuery, WorkerRecord, WorkerSummary,
};
pub use limits::Limits;
pub use manifest::{Manifest, ToolDescription};
pub use plugin::Plugin;
pub use runtime::Runtime;
pub use sandbox::{
    Access, DirGrant, DiskQuota, Grants, GrantsBuilder, GrantsError, Held, HostMemory, OverBudget,
};
pub use storage::WorkerStorage;
pub use worker::{
    BatchPlace, ReportStatus, StopOutcome, UnreadableReport, Worker, WorkerError, WorkerInfo,
    WorkerMode, WorkerObserver, WorkerReport, WorkerResult, WorkerSpec, WorkerState,
};

/// README.md's Rust examples, compiled as doc tests so the README cannot drift from the
/// API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

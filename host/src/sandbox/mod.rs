//! The sandbox: everything that decides what a guest may reach and what it may make the
//! host spend, in one place.
//!
//! Why one module: a plugin is untrusted code, and the rules that contain it — its
//! grants, its network allow-list, its memory and table limits, where its output goes,
//! what the host holds, writes and opens for it — are the promise Colony exists for. They
//! are easier to review, and harder to weaken by accident, when they sit together and
//! the rest of the host reaches them through a narrow interface (`SandboxView`).
//!
//! # What a guest gets by default
//!
//! Deny by default, as wasmtime-wasi's `WasiCtxBuilder` is; a manifest's [`Grants`] opens
//! each of these one by one:
//!
//! * **files**: none of the host's. Only the worker's own data folder at `/data` (when
//!   the worker has a storage folder), read-write. Granted folders are read-only unless
//!   granted `read-write`; `..`, absolute paths and symbolic links cannot leave them.
//! * **symbolic links**: a guest may not create them, nor hard-link or move an
//!   existing one (`symlinks = true` allows it).
//! * **environment**: empty; no arguments; stdin empty.
//! * **network**: none — no name lookups, no TCP, never UDP, never listening sockets.
//!   An allow-list opens lookups of the names on it and TCP to the addresses those
//!   lookups returned (or listed IP literals), on the listed ports.
//! * **stdout and stderr**: never the host's; lines become bounded `WORKER_LOG` events
//!   (`output`).
//! * **memory and tables**: one budget for all of an instance's memories and tables
//!   (`limiter`).
//! * **what the host holds and writes for it**: a host memory budget and a disk quota
//!   (`budget`); open files, listings and sockets bounded (`handles`); filesystem
//!   writes, links and listings checked against them (`files`).
//! * clocks and randomness are available.
//!
//! Every number is in [`Limits`](crate::Limits).

pub(crate) mod budget;
pub(crate) mod files;
mod grants;
pub(crate) mod handles;
pub(crate) mod limiter;
pub(crate) mod network;
pub(crate) mod output;
mod policy;
pub(crate) mod wasi;

use std::sync::Arc;

use wasmtime_wasi::WasiView;

pub use budget::{DiskQuota, Held, HostMemory, OverBudget};
pub(crate) use grants::HostPattern;
pub use grants::{Access, DirGrant, Grants, GrantsBuilder, GrantsError, WORKER_DATA_GUEST_PATH};
pub(crate) use policy::Policy;

/// What the sandbox's WASI rules need from a store's data: its WASI context and table,
/// and the worker's budgets, grants and counters. The host's store data implements it;
/// the rules never reach further.
pub(crate) trait SandboxView: WasiView + Send + 'static {
    /// The worker's disk quota.
    fn disk(&self) -> &Arc<DiskQuota>;
    /// The worker's host memory budget.
    fn memory(&self) -> &Arc<HostMemory>;
    /// Whether the plugin is granted symbolic links.
    fn symlinks_granted(&self) -> bool;
    /// The worker's network policy.
    fn network(&self) -> &Arc<network::NetworkPolicy>;
    /// Whether one more handle may be opened (forgetting the closed ones).
    fn handles_have_room(&mut self) -> bool;
    /// Forgets the handles the guest closed, releasing what they held.
    fn prune_handles(&mut self);
    /// The worker's open handles.
    fn handles(&mut self) -> &mut handles::OpenHandles;
}

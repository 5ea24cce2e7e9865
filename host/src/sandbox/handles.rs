//! [`OpenHandles`]: the bound on host file descriptors one guest holds open at once.
//!
//! Why: every file, directory listing and socket a guest opens through WASI is a host
//! file descriptor (or, for a listing, host memory), and a process has a limited number
//! of descriptors. Without a bound, one guest opening the same file a million times would
//! leave the host — its journal, its other workers — unable to open anything.
//! wasmtime-wasi's resource table has no bound of its own on them, so the host counts
//! what the guest opened through the calls that open things (`files.rs`, `network.rs`)
//! and refuses the next one at the limit.
//!
//! What keeps a descriptor open is any resource holding it: the descriptor or socket
//! itself, and every stream made from it (a stream keeps the file open after its
//! descriptor is dropped). So streams of files and sockets are counted too, each as one
//! handle — a file with a stream open counts twice, which errs on the safe side.
//!
//! A handle the guest closes leaves the resource table; the count notices lazily, at
//! the next open, by asking the table whether each counted handle is still there.

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::filesystem::types::{Descriptor, DirectoryEntryStream};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::ResolveAddressStream;
use wasmtime_wasi::p2::bindings::sockets::tcp::TcpSocket;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use super::budget::Held;

/// What kind of host resource a counted handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandleKind {
    File,
    Listing,
    Socket,
    Reader,
    Writer,
    Lookup,
}

/// One counted handle, and the host memory it holds (a listing's entries).
#[derive(Debug)]
struct Open {
    rep: u32,
    kind: HandleKind,
    _held: Option<Held>,
}

/// The handles one guest has open.
#[derive(Debug)]
pub(crate) struct OpenHandles {
    limit: usize,
    open: Vec<Open>,
}

impl OpenHandles {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Vec::new(),
        }
    }

    /// Forgets the handles the guest closed (releasing what they held).
    pub(crate) fn prune(&mut self, table: &ResourceTable) {
        self.open.retain(|o| is_live(table, o.rep, o.kind));
    }

    /// Whether one more handle may be opened, forgetting the ones the guest closed.
    pub(crate) fn has_room(&mut self, table: &ResourceTable) -> bool {
        if self.open.len() < self.limit {
            return true;
        }
        self.prune(table);
        self.open.len() < self.limit
    }

    /// Counts a handle just opened, holding `held` for as long as it is open.
    pub(crate) fn opened(&mut self, rep: u32, kind: HandleKind, held: Option<Held>) {
        // A slot freed and reused by a resource of the same kind was opened through a
        // counted call too: it replaces the stale entry.
        self.open.retain(|o| (o.rep, o.kind) != (rep, kind));
        self.open.push(Open {
            rep,
            kind,
            _held: held,
        });
    }
}

/// Whether the table still holds a resource of `kind` at `rep`.
fn is_live(table: &ResourceTable, rep: u32, kind: HandleKind) -> bool {
    match kind {
        HandleKind::File => table.get(&Resource::<Descriptor>::new_own(rep)).is_ok(),
        HandleKind::Listing => table
            .get(&Resource::<DirectoryEntryStream>::new_own(rep))
            .is_ok(),
        HandleKind::Socket => table.get(&Resource::<TcpSocket>::new_own(rep)).is_ok(),
        HandleKind::Reader => table.get(&Resource::<DynInputStream>::new_own(rep)).is_ok(),
        HandleKind::Writer => table
            .get(&Resource::<DynOutputStream>::new_own(rep))
            .is_ok(),
        HandleKind::Lookup => table
            .get(&Resource::<ResolveAddressStream>::new_own(rep))
            .is_ok(),
    }
}

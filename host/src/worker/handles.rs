//! [`OpenHandles`]: the bound on host file descriptors one guest holds open at once.
//!
//! Why: every file, directory listing and socket a guest opens through WASI is a host
//! file descriptor, and a process has a limited number. Without a bound, one guest
//! opening the same file a million times would leave the host — its journal, its other
//! workers — unable to open anything. wasmtime-wasi's resource table has no bound of its
//! own, so the host counts what the guest opened through the calls that open things
//! (see `files.rs` and the socket shadow) and refuses the next one at the limit.
//!
//! A handle the guest closes leaves the resource table; the count notices lazily, at
//! the next open, by asking the table whether each counted handle is still there.
//! Streams and pollables are not counted: they hold no descriptor of their own.

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::filesystem::types::{Descriptor, DirectoryEntryStream};
use wasmtime_wasi::p2::bindings::sockets::tcp::TcpSocket;

/// What kind of host resource a counted handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandleKind {
    File,
    Listing,
    Socket,
}

/// The handles one guest has open.
#[derive(Debug)]
pub(crate) struct OpenHandles {
    limit: usize,
    open: Vec<(u32, HandleKind)>,
}

impl OpenHandles {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Vec::new(),
        }
    }

    /// Whether one more handle may be opened, forgetting the ones the guest closed.
    pub(crate) fn has_room(&mut self, table: &ResourceTable) -> bool {
        if self.open.len() < self.limit {
            return true;
        }
        self.open.retain(|&(rep, kind)| is_live(table, rep, kind));
        self.open.len() < self.limit
    }

    /// Counts a handle just opened.
    pub(crate) fn opened(&mut self, rep: u32, kind: HandleKind) {
        if !self.open.contains(&(rep, kind)) {
            self.open.push((rep, kind));
        }
    }
}

/// Whether the table still holds a resource of `kind` at `rep`. (A slot freed and
/// reused by a resource of the same kind was opened through a counted call too, and is
/// counted once.)
fn is_live(table: &ResourceTable, rep: u32, kind: HandleKind) -> bool {
    match kind {
        HandleKind::File => table.get(&Resource::<Descriptor>::new_own(rep)).is_ok(),
        HandleKind::Listing => table
            .get(&Resource::<DirectoryEntryStream>::new_own(rep))
            .is_ok(),
        HandleKind::Socket => table.get(&Resource::<TcpSocket>::new_own(rep)).is_ok(),
    }
}

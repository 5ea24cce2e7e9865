//! The host's rules on a guest's WASI filesystem, on top of wasmtime-wasi's
//! capability-based one: a disk quota, no planted symbolic links, a bound on open files.
//!
//! Why: wasmtime-wasi keeps a guest inside its preopened folders, but inside them it may
//! write without limit, create links that any other program walking the folder later
//! follows out of it, and open files until the host runs out of descriptors. So the
//! calls that do those things are shadowed in the linker; each applies the rule and
//! then calls wasmtime-wasi's own implementation:
//!
//! * every byte written — `write`, and the output streams of `write-via-stream` and
//!   `append-via-stream` (wrapped in a [`QuotaStream`]) — is charged to the worker's
//!   [`DiskQuota`] first; so is a new file or folder ([`ENTRY_BYTES`]) and growing a
//!   file with `set-size`. An overrun is the WASI error `insufficient-space` (a guest
//!   sees "no space left on device", as on a full disk).
//! * `symlink-at` is refused (`not-permitted`) unless the manifest grants `symlinks`.
//! * `open-at` and `read-directory` count against the worker's open-handle bound
//!   (`insufficient-memory` at the limit, as a host out of descriptors would answer).

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, DirectoryEntryStream, ErrorCode, Filesize, HostDescriptor,
    OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode as SocketErrorCode;
use wasmtime_wasi::p2::bindings::sockets::tcp::TcpSocket;
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::Host as _;
use wasmtime_wasi::p2::{
    DynOutputStream, FsError, OutputStream, Pollable, StreamError, StreamResult,
};
use wasmtime_wasi::sockets::WasiSocketsView;
use wasmtime_wasi::{WasiView, filesystem::WasiFilesystemView};

use super::budget::DiskQuota;
use super::handles::HandleKind;
use crate::host_api::HostState;

/// What a new file or folder costs the quota: a block for its inode and entry, so a
/// guest cannot fill a disk's inodes with empty files.
pub(crate) const ENTRY_BYTES: u64 = 4096;

/// The WIT interfaces shadowed here, as wasmtime-wasi links them.
const FILESYSTEM: &str = "wasi:filesystem/types@0.2.12";
const TCP_CREATE: &str = "wasi:sockets/tcp-create-socket@0.2.12";

/// An error code or a trap, from wasmtime-wasi's `FsError`.
fn code(error: FsError) -> wasmtime::Result<ErrorCode> {
    error.downcast()
}

/// wasmtime-wasi's answer as the shadow's: its error code for the guest, or a trap.
fn reply<T>(answer: Result<T, FsError>) -> wasmtime::Result<(Result<T, ErrorCode>,)> {
    Ok((match answer {
        Ok(value) => Ok(value),
        Err(e) => Err(code(e)?),
    },))
}

/// Charges `bytes` for the guest's write; `insufficient-space` when spent.
fn charge(store: &StoreContextMut<'_, HostState>, bytes: u64, what: &str) -> Result<(), ErrorCode> {
    store
        .data()
        .worker
        .disk
        .charge(bytes, what)
        .map_err(|_| ErrorCode::InsufficientSpace)
}

/// Whether the guest may open one more handle.
fn has_room(store: &mut StoreContextMut<'_, HostState>) -> bool {
    store.data_mut().handles_have_room()
}

/// Installs the shadows. Called once per runtime, after wasmtime-wasi is linked.
pub(crate) fn shadow_filesystem(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut fs = linker.instance(FILESYSTEM)?;
    fs.func_wrap_async(
        "[method]descriptor.write",
        |mut store: StoreContextMut<'_, HostState>,
         (fd, buffer, offset): (Resource<Descriptor>, Vec<u8>, Filesize)| {
            Box::new(async move {
                if let Err(e) = charge(&store, buffer.len() as u64, "a file write") {
                    return Ok((Err(e),));
                }
                let mut view = store.data_mut().filesystem();
                reply(view.write(fd, buffer, offset).await)
            })
        },
    )?;
    fs.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, HostState>,
         (fd, offset): (Resource<Descriptor>, Filesize)| {
            let mut view = store.data_mut().filesystem();
            let stream = match view.write_via_stream(fd, offset) {
                Ok(stream) => stream,
                Err(e) => return Ok((Err(code(e)?),)),
            };
            Ok((Ok(quota_stream(&mut store, stream)?),))
        },
    )?;
    fs.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, HostState>, (fd,): (Resource<Descriptor>,)| {
            let mut view = store.data_mut().filesystem();
            let stream = match view.append_via_stream(fd) {
                Ok(stream) => stream,
                Err(e) => return Ok((Err(code(e)?),)),
            };
            Ok((Ok(quota_stream(&mut store, stream)?),))
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.set-size",
        |mut store: StoreContextMut<'_, HostState>,
         (fd, size): (Resource<Descriptor>, Filesize)| {
            Box::new(async move {
                let fd2 = Resource::<Descriptor>::new_borrow(fd.rep());
                let mut view = store.data_mut().filesystem();
                let current = match view.stat(fd2).await {
                    Ok(stat) => stat.size,
                    Err(e) => return Ok((Err(code(e)?),)),
                };
                if let Err(e) = charge(&store, size.saturating_sub(current), "growing a file") {
                    return Ok((Err(e),));
                }
                let mut view = store.data_mut().filesystem();
                reply(view.set_size(fd, size).await)
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.symlink-at",
        |mut store: StoreContextMut<'_, HostState>,
         (fd, old_path, new_path): (Resource<Descriptor>, String, String)| {
            Box::new(async move {
                if !store.data().worker.plugin.grants().symlinks {
                    return Ok((Err(ErrorCode::NotPermitted),));
                }
                if let Err(e) = charge(&store, ENTRY_BYTES, "a symbolic link") {
                    return Ok((Err(e),));
                }
                let mut view = store.data_mut().filesystem();
                reply(view.symlink_at(fd, old_path, new_path).await)
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.create-directory-at",
        |mut store: StoreContextMut<'_, HostState>, (fd, path): (Resource<Descriptor>, String)| {
            Box::new(async move {
                if let Err(e) = charge(&store, ENTRY_BYTES, "a new folder") {
                    return Ok((Err(e),));
                }
                let mut view = store.data_mut().filesystem();
                reply(view.create_directory_at(fd, path).await)
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, HostState>,
         (fd, path_flags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                if !has_room(&mut store) {
                    return Ok((Err(ErrorCode::InsufficientMemory),));
                }
                if oflags.contains(OpenFlags::CREATE) {
                    // Charged only when the file is new: rewriting one costs its bytes.
                    let dir = Resource::<Descriptor>::new_borrow(fd.rep());
                    let mut view = store.data_mut().filesystem();
                    let exists = view.stat_at(dir, path_flags, path.clone()).await.is_ok();
                    if !exists && let Err(e) = charge(&store, ENTRY_BYTES, "a new file") {
                        return Ok((Err(e),));
                    }
                }
                let mut view = store.data_mut().filesystem();
                let opened = match view.open_at(fd, path_flags, path, oflags, flags).await {
                    Ok(opened) => opened,
                    Err(e) => return Ok((Err(code(e)?),)),
                };
                store
                    .data_mut()
                    .handles
                    .opened(opened.rep(), HandleKind::File);
                Ok((Ok(opened),))
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.read-directory",
        |mut store: StoreContextMut<'_, HostState>, (fd,): (Resource<Descriptor>,)| {
            Box::new(async move {
                if !has_room(&mut store) {
                    return Ok((Err(ErrorCode::InsufficientMemory),));
                }
                let mut view = store.data_mut().filesystem();
                let listing: Resource<DirectoryEntryStream> = match view.read_directory(fd).await {
                    Ok(listing) => listing,
                    Err(e) => return Ok((Err(code(e)?),)),
                };
                store
                    .data_mut()
                    .handles
                    .opened(listing.rep(), HandleKind::Listing);
                Ok((Ok(listing),))
            })
        },
    )?;
    let mut tcp = linker.instance(TCP_CREATE)?;
    tcp.func_wrap(
        "create-tcp-socket",
        |mut store: StoreContextMut<'_, HostState>,
         (family,): (wasmtime_wasi::p2::bindings::sockets::network::IpAddressFamily,)| {
            if !has_room(&mut store) {
                return Ok((Err(SocketErrorCode::NewSocketLimit),));
            }
            let mut view = store.data_mut().sockets();
            let socket: Resource<TcpSocket> = match view.create_tcp_socket(family) {
                Ok(socket) => socket,
                Err(e) => return Ok((Err(e.downcast()?),)),
            };
            store
                .data_mut()
                .handles
                .opened(socket.rep(), HandleKind::Socket);
            Ok((Ok(socket),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Replaces the output stream at `stream` in the table with one charging the quota.
fn quota_stream(
    store: &mut StoreContextMut<'_, HostState>,
    stream: Resource<DynOutputStream>,
) -> wasmtime::Result<Resource<DynOutputStream>> {
    let disk = store.data().worker.disk.clone();
    let table = store.data_mut().ctx().table;
    let inner = table.delete(stream)?;
    let wrapped: DynOutputStream = Box::new(QuotaStream { inner, disk });
    Ok(table.push(wrapped)?)
}

/// A file's output stream whose every byte is charged to the worker's disk quota
/// before it is written.
struct QuotaStream {
    inner: DynOutputStream,
    disk: Arc<DiskQuota>,
}

/// `ENOSPC`: a stream error carrying it reaches the guest as the filesystem error
/// `insufficient-space` (wasmtime-wasi reads the OS error of a stream's I/O error; it
/// maps no code for "quota"), as every other write past the quota does.
const ENOSPC: i32 = 28;

impl QuotaStream {
    fn charge(&self, bytes: usize) -> StreamResult<()> {
        self.disk.charge(bytes as u64, "a file write").map_err(|e| {
            tracing::debug!("{e}");
            StreamError::LastOperationFailed(wasmtime::Error::from(
                std::io::Error::from_raw_os_error(ENOSPC),
            ))
        })
    }
}

#[async_trait::async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    fn write_zeroes(&mut self, nelem: usize) -> StreamResult<()> {
        self.charge(nelem)?;
        self.inner.write_zeroes(nelem)
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[async_trait::async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

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
//!   [`DiskQuota`] first, and so is the hole a write or `set-size` past the end of a
//!   file leaves (a sparse file still looks that large to whoever copies it); so is each
//!   new file, folder or link ([`ENTRY_BYTES`]). A charge for something that then fails
//!   is refunded. An overrun is the WASI error `insufficient-space` (a guest sees "no
//!   space left on device", as on a full disk).
//! * `symlink-at` is refused (`not-permitted`) unless the manifest grants `symlinks`;
//!   so are `link-at` and `rename-at` of an existing link, which could otherwise carry
//!   a link to a depth where it points out of the folder.
//! * `open-at`, `read-directory` and the streams of files count against the worker's
//!   open-handle bound (`insufficient-memory` at the limit, as a host out of
//!   descriptors would answer); a listing's entries, which wasmtime-wasi reads at once,
//!   are charged to the worker's host memory budget for as long as it is open.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, DirectoryEntryStream, ErrorCode, Filesize,
    HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, FsError, OutputStream, Pollable, StreamError, StreamResult,
};

use super::SandboxView;
use super::budget::{DiskQuota, Held};
use super::handles::HandleKind;

/// What a new file, folder or link costs the quota: a block for its inode and entry, so
/// a guest cannot fill a disk's inodes or a directory's blocks with empty entries.
pub(crate) const ENTRY_BYTES: u64 = 4096;

/// What one entry of a directory listing costs the host, beyond its name.
const LISTING_ENTRY_BYTES: usize = 64;

/// The WIT interface shadowed here, as wasmtime-wasi links it.
const FILESYSTEM: &str = "wasi:filesystem/types@0.2.12";

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

/// Bytes charged to the worker's disk quota for one call: refunded if the call fails.
struct Charge {
    quota: Arc<DiskQuota>,
    bytes: u64,
}

impl Charge {
    /// Charges `bytes` for `what`; `insufficient-space` when the quota is spent.
    fn take<T: SandboxView>(
        store: &StoreContextMut<'_, T>,
        bytes: u64,
        what: &str,
    ) -> Result<Self, ErrorCode> {
        let quota = store.data().disk().clone();
        quota
            .charge(bytes, what)
            .map_err(|_| ErrorCode::InsufficientSpace)?;
        Ok(Self { quota, bytes })
    }

    /// `answer`, the charge refunded if it is a failure.
    fn settle<V>(self, answer: Result<V, FsError>) -> Result<V, FsError> {
        if answer.is_err() {
            self.quota.refund(self.bytes);
        }
        answer
    }
}

/// `Charge::take`, or the shadow's answer when refused.
macro_rules! charge_or_refuse {
    ($store:expr, $bytes:expr, $what:expr) => {
        match Charge::take(&$store, $bytes, $what) {
            Ok(charge) => charge,
            Err(e) => return Ok((Err(e),)),
        }
    };
}

/// The current size of the file `fd`.
async fn size_of<T: SandboxView>(
    store: &mut StoreContextMut<'_, T>,
    fd: &Resource<Descriptor>,
) -> Result<u64, FsError> {
    let mut view = store.data_mut().filesystem();
    Ok(view.stat(Resource::new_borrow(fd.rep())).await?.size)
}

/// Whether `path` under `dir` is a symbolic link (not followed).
async fn is_symlink<T: SandboxView>(
    store: &mut StoreContextMut<'_, T>,
    dir: &Resource<Descriptor>,
    path: &str,
) -> bool {
    let mut view = store.data_mut().filesystem();
    view.stat_at(
        Resource::new_borrow(dir.rep()),
        PathFlags::empty(),
        path.to_owned(),
    )
    .await
    .is_ok_and(|stat| stat.type_ == DescriptorType::SymbolicLink)
}

fn symlinks_granted<T: SandboxView>(store: &StoreContextMut<'_, T>) -> bool {
    store.data().symlinks_granted()
}

/// Whether the guest may open one more handle.
fn has_room<T: SandboxView>(store: &mut StoreContextMut<'_, T>) -> bool {
    store.data_mut().handles_have_room()
}

/// Installs the shadows. Called once per runtime, after wasmtime-wasi is linked.
pub(crate) fn shadow_filesystem<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut fs = linker.instance(FILESYSTEM)?;
    fs.func_wrap_async(
        "[method]descriptor.write",
        |mut store: StoreContextMut<'_, T>,
         (fd, buffer, offset): (Resource<Descriptor>, Vec<u8>, Filesize)| {
            Box::new(async move {
                let size = match size_of(&mut store, &fd).await {
                    Ok(size) => size,
                    Err(e) => return reply(Err::<Filesize, _>(e)),
                };
                // The bytes, and the hole before them if the write starts past the end.
                let cost = (buffer.len() as u64).saturating_add(offset.saturating_sub(size));
                let charge = charge_or_refuse!(store, cost, "a file write");
                let mut view = store.data_mut().filesystem();
                let answer = view.write(fd, buffer, offset).await;
                reply(charge.settle(answer))
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, T>, (fd, offset): (Resource<Descriptor>, Filesize)| {
            Box::new(async move {
                if !has_room(&mut store) {
                    return Ok((Err(ErrorCode::InsufficientMemory),));
                }
                let size = match size_of(&mut store, &fd).await {
                    Ok(size) => size,
                    Err(e) => return reply(Err::<Resource<DynOutputStream>, _>(e)),
                };
                let hole = offset.saturating_sub(size);
                let charge = charge_or_refuse!(store, hole, "a file write");
                let mut view = store.data_mut().filesystem();
                let stream = match charge.settle(view.write_via_stream(fd, offset)) {
                    Ok(stream) => stream,
                    Err(e) => return reply(Err::<Resource<DynOutputStream>, _>(e)),
                };
                Ok((Ok(quota_stream(&mut store, stream)?),))
            })
        },
    )?;
    fs.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, T>, (fd,): (Resource<Descriptor>,)| {
            if !has_room(&mut store) {
                return Ok((Err(ErrorCode::InsufficientMemory),));
            }
            let mut view = store.data_mut().filesystem();
            let stream = match view.append_via_stream(fd) {
                Ok(stream) => stream,
                Err(e) => return Ok((Err(code(e)?),)),
            };
            Ok((Ok(quota_stream(&mut store, stream)?),))
        },
    )?;
    fs.func_wrap(
        "[method]descriptor.read-via-stream",
        |mut store: StoreContextMut<'_, T>, (fd, offset): (Resource<Descriptor>, Filesize)| {
            if !has_room(&mut store) {
                return Ok((Err(ErrorCode::InsufficientMemory),));
            }
            let mut view = store.data_mut().filesystem();
            let stream: Resource<DynInputStream> = match view.read_via_stream(fd, offset) {
                Ok(stream) => stream,
                Err(e) => return Ok((Err(code(e)?),)),
            };
            let handles = store.data_mut().handles();
            handles.opened(stream.rep(), HandleKind::Reader, None);
            Ok((Ok(stream),))
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.set-size",
        |mut store: StoreContextMut<'_, T>, (fd, size): (Resource<Descriptor>, Filesize)| {
            Box::new(async move {
                let current = match size_of(&mut store, &fd).await {
                    Ok(current) => current,
                    Err(e) => return reply(Err::<(), _>(e)),
                };
                let growth = size.saturating_sub(current);
                let charge = charge_or_refuse!(store, growth, "growing a file");
                let mut view = store.data_mut().filesystem();
                let answer = view.set_size(fd, size).await;
                reply(charge.settle(answer))
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.symlink-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, old_path, new_path): (Resource<Descriptor>, String, String)| {
            Box::new(async move {
                if !symlinks_granted(&store) {
                    return Ok((Err(ErrorCode::NotPermitted),));
                }
                let charge = charge_or_refuse!(store, ENTRY_BYTES, "a symbolic link");
                let mut view = store.data_mut().filesystem();
                let answer = view.symlink_at(fd, old_path, new_path).await;
                reply(charge.settle(answer))
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.link-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, flags, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::new(async move {
                if !symlinks_granted(&store) && is_symlink(&mut store, &fd, &old_path).await {
                    return Ok((Err(ErrorCode::NotPermitted),));
                }
                let charge = charge_or_refuse!(store, ENTRY_BYTES, "a hard link");
                let mut view = store.data_mut().filesystem();
                let answer = view.link_at(fd, flags, old_path, new_fd, new_path).await;
                reply(charge.settle(answer))
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.rename-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::new(async move {
                if !symlinks_granted(&store) && is_symlink(&mut store, &fd, &old_path).await {
                    return Ok((Err(ErrorCode::NotPermitted),));
                }
                let mut view = store.data_mut().filesystem();
                reply(view.rename_at(fd, old_path, new_fd, new_path).await)
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.create-directory-at",
        |mut store: StoreContextMut<'_, T>, (fd, path): (Resource<Descriptor>, String)| {
            Box::new(async move {
                let charge = charge_or_refuse!(store, ENTRY_BYTES, "a new folder");
                let mut view = store.data_mut().filesystem();
                let answer = view.create_directory_at(fd, path).await;
                reply(charge.settle(answer))
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, T>,
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
                // A new file costs an entry; opening an existing one costs nothing.
                let mut cost = 0;
                if oflags.contains(OpenFlags::CREATE) {
                    let dir = Resource::<Descriptor>::new_borrow(fd.rep());
                    let mut view = store.data_mut().filesystem();
                    if view.stat_at(dir, path_flags, path.clone()).await.is_err() {
                        cost = ENTRY_BYTES;
                    }
                }
                let charge = charge_or_refuse!(store, cost, "a new file");
                let mut view = store.data_mut().filesystem();
                let answer = view.open_at(fd, path_flags, path, oflags, flags).await;
                let opened = match charge.settle(answer) {
                    Ok(opened) => opened,
                    Err(e) => return Ok((Err(code(e)?),)),
                };
                let handles = store.data_mut().handles();
                handles.opened(opened.rep(), HandleKind::File, None);
                Ok((Ok(opened),))
            })
        },
    )?;
    fs.func_wrap_async(
        "[method]descriptor.read-directory",
        |mut store: StoreContextMut<'_, T>, (fd,): (Resource<Descriptor>,)| {
            Box::new(async move {
                if !has_room(&mut store) {
                    return Ok((Err(ErrorCode::InsufficientMemory),));
                }
                let held = match hold_listing(&mut store, &fd).await {
                    Ok(held) => held,
                    Err(e) => return Ok((Err(e),)),
                };
                let mut view = store.data_mut().filesystem();
                let listing: Resource<DirectoryEntryStream> = match view.read_directory(fd).await {
                    Ok(listing) => listing,
                    Err(e) => return Ok((Err(code(e)?),)),
                };
                let handles = store.data_mut().handles();
                handles.opened(listing.rep(), HandleKind::Listing, Some(held));
                Ok((Ok(listing),))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Charges the host memory a listing of `fd` will take (wasmtime-wasi reads every entry
/// at once): its entries are counted first, off the async threads.
async fn hold_listing<T: SandboxView>(
    store: &mut StoreContextMut<'_, T>,
    fd: &Resource<Descriptor>,
) -> Result<Held, ErrorCode> {
    let dir = {
        let table = store.data_mut().ctx().table;
        match table.get(fd) {
            Ok(wasmtime_wasi::filesystem::Descriptor::Dir(d)) => d.dir.clone(),
            Ok(_) => return Err(ErrorCode::NotDirectory),
            Err(_) => return Err(ErrorCode::BadDescriptor),
        }
    };
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
        let dir = cap_std::fs::Dir::from_std_file(dir.try_clone()?);
        let mut bytes = 0usize;
        for entry in dir.entries()? {
            bytes = bytes.saturating_add(entry?.file_name().len() + LISTING_ENTRY_BYTES);
        }
        Ok(bytes)
    })
    .await
    .map_err(|_| ErrorCode::Io)?
    .map_err(|e| ErrorCode::from(&e))?;
    let state = store.data_mut();
    state.prune_handles();
    state
        .memory()
        .hold(bytes, "a directory listing")
        .map_err(|_| ErrorCode::InsufficientMemory)
}

/// Replaces the output stream at `stream` in the table with one charging the quota, and
/// counts it as an open handle.
fn quota_stream<T: SandboxView>(
    store: &mut StoreContextMut<'_, T>,
    stream: Resource<DynOutputStream>,
) -> wasmtime::Result<Resource<DynOutputStream>> {
    let disk = store.data().disk().clone();
    let table = store.data_mut().ctx().table;
    let inner = table.delete(stream)?;
    let wrapped: DynOutputStream = Box::new(QuotaStream { inner, disk });
    let stream = table.push(wrapped)?;
    let handles = store.data_mut().handles();
    handles.opened(stream.rep(), HandleKind::Writer, None);
    Ok(stream)
}

/// A file's output stream whose every byte is charged to the worker's disk quota
/// before it is written.
struct QuotaStream {
    inner: DynOutputStream,
    disk: Arc<DiskQuota>,
}

/// `ENOSPC`: a stream error carrying it reaches the guest as the filesystem error
/// `insufficient-space` where its libc asks (wasmtime-wasi reads the OS error of a
/// stream's I/O error), as every other write past the quota does.
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

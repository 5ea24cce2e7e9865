//! [`NetworkPolicy`]: the plugin's outbound allow-list, enforced on WASI sockets.
//!
//! wasmtime-wasi checks socket *addresses*; a manifest grants host *names*. The policy
//! bridges the two: name lookups (`wasi:sockets/ip-name-lookup`) are answered only for
//! names on the allow-list — every other name gets `access-denied` without a DNS query
//! leaving the host — and exactly the addresses that lookup hands the guest (plus any
//! IP literal on the list) become the ones TCP may connect to. There is one lookup per
//! request, wasmtime-wasi's: an address is unlocked as the guest reads it from the
//! lookup's stream, so round-robin DNS cannot unlock one lookup's answers and hand out
//! another's. UDP, listening sockets and explicit binds are never allowed.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    Host as _, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::{HostTcpSocket, TcpSocket};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::Host as _;
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsView};

use super::SandboxView;
use super::grants::HostPattern;
use super::handles::HandleKind;

/// Lookup streams tracked before the ones the guest dropped are forgotten. (Each
/// lookup is also an open handle of the worker, so at most `open_handles` are live.)
const MAX_LOOKUPS: usize = 64;

/// Addresses one worker may unlock; past it, further answers stay locked. Far above
/// what an agent reaches, and a bound on what a DNS server the guest's allowed names
/// point at can make the host remember.
const MAX_ALLOWED: usize = 1024;

/// One worker's network allow-list and the addresses it has unlocked.
pub(crate) struct NetworkPolicy {
    patterns: Vec<HostPattern>,
    /// (address, port restriction) pairs TCP may connect to.
    allowed: RwLock<HashSet<(IpAddr, Option<u16>)>>,
    /// Lookup streams of allowed names, by resource id: the port rules their addresses
    /// are unlocked with.
    lookups: Mutex<HashMap<u32, Vec<Option<u16>>>>,
}

impl NetworkPolicy {
    pub(crate) fn new(patterns: Vec<HostPattern>) -> Arc<Self> {
        let allowed = patterns
            .iter()
            .filter_map(|p| p.ip_literal().map(|ip| (ip, p.port())))
            .collect();
        Arc::new(Self {
            patterns,
            allowed: RwLock::new(allowed),
            lookups: Mutex::new(HashMap::new()),
        })
    }

    /// Whether any network use is granted at all.
    pub(crate) fn is_open(&self) -> bool {
        !self.patterns.is_empty()
    }

    fn patterns_for(&self, name: &str) -> Vec<&HostPattern> {
        self.patterns
            .iter()
            .filter(|p| p.matches_host(name))
            .collect()
    }

    /// Port restrictions for `name`, if it is allowed at all.
    fn ports_for(&self, name: &str) -> Option<Vec<Option<u16>>> {
        let ports: Vec<_> = self.patterns_for(name).iter().map(|p| p.port()).collect();
        (!ports.is_empty()).then_some(ports)
    }

    /// Notes that lookup stream `rep` answers an allowed name with these port rules;
    /// `is_live` tells which earlier streams the guest still holds.
    fn track(&self, rep: u32, ports: Vec<Option<u16>>, is_live: impl Fn(u32) -> bool) {
        let mut lookups = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
        if lookups.len() >= MAX_LOOKUPS {
            lookups.retain(|&rep, _| is_live(rep));
        }
        lookups.insert(rep, ports);
    }

    /// The guest read `addr` from lookup stream `rep` (`None`: the stream ended).
    fn answered(&self, rep: u32, addr: Option<IpAddr>) {
        let mut lookups = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
        let Some(addr) = addr else {
            lookups.remove(&rep);
            return;
        };
        if let Some(ports) = lookups.get(&rep) {
            let mut allowed = self.allowed.write().unwrap_or_else(|e| e.into_inner());
            for port in ports {
                if allowed.len() < MAX_ALLOWED {
                    allowed.insert((addr.to_canonical(), *port));
                }
            }
        }
    }

    /// The socket-address check handed to wasmtime-wasi.
    pub(crate) fn allows(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        match usage {
            // The implicit bind before a connect uses the unspecified address.
            SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
            SocketAddrUse::TcpConnect => {
                let ip = addr.ip().to_canonical();
                let allowed = self.allowed.read().unwrap_or_else(|e| e.into_inner());
                allowed.contains(&(ip, None)) || allowed.contains(&(ip, Some(addr.port())))
            }
            _ => false,
        }
    }
}

/// Replaces wasmtime-wasi's `resolve-addresses` with one that consults the worker's
/// policy first, and `resolve-next-address` with one that unlocks each address as it is
/// handed out. The lookups themselves stay wasmtime-wasi's.
pub(crate) fn shadow_name_lookup<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut instance = linker.instance(NAME_LOOKUP)?;
    instance.func_wrap(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, T>, (network, name): (Resource<Network>, String)| {
            let policy = store.data().network().clone();
            let Some(ports) = policy.ports_for(&name) else {
                return Ok((Err(ErrorCode::AccessDenied),));
            };
            // A lookup in flight holds a resolver thread: it counts as an open handle.
            if !store.data_mut().handles_have_room() {
                return Ok((Err(ErrorCode::NewSocketLimit),));
            }
            let mut view = store.data_mut().sockets();
            let answer: Result<Resource<ResolveAddressStream>, ErrorCode> =
                match view.resolve_addresses(network, name) {
                    Ok(stream) => Ok(stream),
                    Err(e) => Err(e.downcast()?),
                };
            if let Ok(stream) = &answer {
                let table = &*store.data_mut().ctx().table;
                policy.track(stream.rep(), ports, |rep| {
                    table
                        .get(&Resource::<ResolveAddressStream>::new_own(rep))
                        .is_ok()
                });
                let handles = store.data_mut().handles();
                handles.opened(stream.rep(), HandleKind::Lookup, None);
            }
            Ok((answer,))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, T>, (stream,): (Resource<ResolveAddressStream>,)| {
            let policy = store.data().network().clone();
            let rep = stream.rep();
            let mut view = store.data_mut().sockets();
            let answer: Result<Option<IpAddress>, ErrorCode> =
                match HostResolveAddressStream::resolve_next_address(&mut view, stream) {
                    Ok(addr) => Ok(addr),
                    Err(e) => Err(e.downcast()?),
                };
            match &answer {
                Ok(addr) => policy.answered(rep, addr.map(ip_of)),
                Err(ErrorCode::WouldBlock) => {}
                Err(_) => policy.answered(rep, None),
            }
            Ok((answer,))
        },
    )?;
    shadow_tcp(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Counts TCP sockets, and the streams of a connected one, as open handles of the
/// worker (see `handles.rs`): each holds the socket's descriptor.
fn shadow_tcp<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut create = linker.instance(TCP_CREATE)?;
    create.func_wrap(
        "create-tcp-socket",
        |mut store: StoreContextMut<'_, T>, (family,): (IpAddressFamily,)| {
            if !store.data_mut().handles_have_room() {
                return Ok((Err(ErrorCode::NewSocketLimit),));
            }
            let mut view = store.data_mut().sockets();
            let socket: Resource<TcpSocket> = match view.create_tcp_socket(family) {
                Ok(socket) => socket,
                Err(e) => return Ok((Err(e.downcast()?),)),
            };
            let handles = store.data_mut().handles();
            handles.opened(socket.rep(), HandleKind::Socket, None);
            Ok((Ok(socket),))
        },
    )?;
    let mut tcp = linker.instance(TCP)?;
    tcp.func_wrap(
        "[method]tcp-socket.finish-connect",
        |mut store: StoreContextMut<'_, T>, (socket,): (Resource<TcpSocket>,)| {
            let mut view = store.data_mut().sockets();
            let (reader, writer) = match HostTcpSocket::finish_connect(&mut view, socket) {
                Ok(streams) => streams,
                Err(e) => return Ok((Err(e.downcast()?),)),
            };
            let handles = store.data_mut().handles();
            handles.opened(reader.rep(), HandleKind::Reader, None);
            handles.opened(writer.rep(), HandleKind::Writer, None);
            Ok((Ok((reader, writer)),))
        },
    )?;
    Ok(())
}

/// The WIT interfaces shadowed here, as wasmtime-wasi links them.
const NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
const TCP_CREATE: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const TCP: &str = "wasi:sockets/tcp@0.2.12";

/// A WASI address as a std one.
fn ip_of(addr: IpAddress) -> IpAddr {
    match addr {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
    }
}

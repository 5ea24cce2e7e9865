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
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsView};

use crate::grants::HostPattern;
use crate::host_api::HostState;

/// Lookups in flight one worker may have at once before the oldest are forgotten
/// (their addresses then stay locked).
const MAX_LOOKUPS: usize = 64;

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

    /// Notes that lookup stream `rep` answers an allowed name with these port rules.
    fn track(&self, rep: u32, ports: Vec<Option<u16>>) {
        let mut lookups = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
        // A guest that never reads its lookups cannot grow this without bound.
        if lookups.len() >= MAX_LOOKUPS {
            lookups.clear();
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
                allowed.insert((addr.to_canonical(), *port));
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
pub(crate) fn shadow_name_lookup(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut instance = linker.instance(NAME_LOOKUP)?;
    instance.func_wrap(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, HostState>,
         (network, name): (Resource<Network>, String)| {
            let policy = store.data().network.clone();
            let Some(ports) = policy.ports_for(&name) else {
                return Ok((Err(ErrorCode::AccessDenied),));
            };
            let mut view = store.data_mut().sockets();
            let answer: Result<Resource<ResolveAddressStream>, ErrorCode> =
                match view.resolve_addresses(network, name) {
                    Ok(stream) => Ok(stream),
                    Err(e) => Err(e.downcast()?),
                };
            if let Ok(stream) = &answer {
                policy.track(stream.rep(), ports);
            }
            Ok((answer,))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, HostState>,
         (stream,): (Resource<ResolveAddressStream>,)| {
            let policy = store.data().network.clone();
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
    linker.allow_shadowing(false);
    Ok(())
}

/// The WIT interface shadowed above, as wasmtime-wasi links it.
const NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// A WASI address as a std one.
fn ip_of(addr: IpAddress) -> IpAddr {
    match addr {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
    }
}

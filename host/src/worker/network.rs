//! [`NetworkPolicy`]: the plugin's outbound allow-list, enforced on WASI sockets.
//!
//! wasmtime-wasi checks socket *addresses*; a manifest grants host *names*. The policy
//! bridges the two: name lookups (`wasi:sockets/ip-name-lookup`) are answered only for
//! names on the allow-list — every other name gets `access-denied` without a DNS query
//! leaving the host — and the addresses an allowed name resolves to (plus any IP literal
//! on the list) become the only ones TCP may connect to. UDP, listening sockets and
//! explicit binds are never allowed.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{Host as _, ResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, Network};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsView};

use crate::grants::HostPattern;
use crate::host_api::HostState;

/// How long the host waits for its own DNS lookup of an allowed name.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// One worker's network allow-list and the addresses it has unlocked.
pub(crate) struct NetworkPolicy {
    patterns: Vec<HostPattern>,
    /// (address, port restriction) pairs TCP may connect to.
    allowed: RwLock<HashSet<(IpAddr, Option<u16>)>>,
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

    /// Resolves an allowed `name` and unlocks its addresses. False: not allowed.
    async fn admit(&self, name: &str) -> bool {
        let patterns = self.patterns_for(name);
        if patterns.is_empty() {
            return false;
        }
        let lookup = tokio::net::lookup_host((name, 0));
        if let Ok(Ok(addrs)) = tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            let mut allowed = self.allowed.write().unwrap_or_else(|e| e.into_inner());
            for addr in addrs {
                for p in &patterns {
                    allowed.insert((addr.ip().to_canonical(), p.port()));
                }
            }
        }
        true
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
/// policy first. Everything else about name lookup stays wasmtime-wasi's.
pub(crate) fn shadow_name_lookup(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut instance = linker.instance("wasi:sockets/ip-name-lookup@0.2.12")?;
    instance.func_wrap_async(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, HostState>,
         (network, name): (Resource<Network>, String)| {
            Box::new(async move {
                let policy = store.data().network.clone();
                if !policy.admit(&name).await {
                    return Ok((Err(ErrorCode::AccessDenied),));
                }
                let mut view = store.data_mut().sockets();
                let answer: Result<Resource<ResolveAddressStream>, ErrorCode> =
                    match view.resolve_addresses(network, name) {
                        Ok(stream) => Ok(stream),
                        Err(e) => Err(e.downcast()?),
                    };
                Ok((answer,))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

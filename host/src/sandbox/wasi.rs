//! A worker's WASI context: deny by default (see the [module docs](super)), then what
//! its plugin was granted, and nothing else.

use std::path::Path;
use std::sync::Arc;

use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::grants::{Access, Grants, WORKER_DATA_GUEST_PATH};
use super::network::NetworkPolicy;
use super::output::GuestOutput;
use crate::replay::World;

/// The WASI context of one worker: exactly what `grants` give, its own data folder
/// `data_dir` (if it has one) at `/data`, its output into `stdout` and `stderr`, its
/// sockets checked by `network`; its clocks and random as `world` says, if it is
/// recorded or replayed.
pub(crate) fn context(
    grants: &Grants,
    data_dir: Option<&Path>,
    network: &Arc<NetworkPolicy>,
    (stdout, stderr): (GuestOutput, GuestOutput),
    world: Option<&World>,
) -> Result<WasiCtx, String> {
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdout).stderr(stderr);
    if let Some(world) = world {
        world.apply(&mut builder);
    }

    if let Some(data) = data_dir {
        std::fs::create_dir_all(data).map_err(|e| {
            format!(
                "cannot create the worker's data folder {}: {e}",
                data.display()
            )
        })?;
        builder
            .preopened_dir(data, WORKER_DATA_GUEST_PATH, FsPerms::ReadWrite)
            .map_err(|e| {
                format!(
                    "cannot open the worker's data folder {}: {e:#}",
                    data.display()
                )
            })?;
    }
    // A replay changes nothing outside its own `/data`.
    let read_only = world.is_some_and(World::isolated);
    for dir in &grants.dirs {
        let perms = match dir.access {
            Access::ReadWrite if !read_only => FsPerms::ReadWrite,
            _ => FsPerms::ReadOnly,
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| {
                format!(
                    "cannot open granted directory {}: {e:#}",
                    dir.host.display()
                )
            })?;
    }
    for name in &grants.env {
        if let Ok(value) = std::env::var(name) {
            builder.env(name, value);
        }
    }
    builder
        .allow_udp(false)
        .allow_tcp(network.is_open())
        .allow_ip_name_lookup(network.is_open());
    let policy = network.clone();
    builder.socket_addr_check(move |addr, usage| {
        let allowed = policy.allows(addr, usage);
        Box::pin(async move { allowed })
    });
    Ok(builder.build())
}

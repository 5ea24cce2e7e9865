//! A plugin's [`Policy`]: its name, what it is granted and what it is held to, shared by
//! every worker of the plugin.
//!
//! Why a type of its own: the host functions and the sandbox rules need a worker's
//! grants and limits, not its plugin (a compiled component tied to a runtime). Handing
//! them this — one `Arc` per plugin, no copy per worker — keeps them from reaching into
//! the plugin and the runtime.

use super::Grants;
use crate::limits::Limits;

/// What a plugin's workers may reach and must obey.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// The plugin's name, used in every error and event about it.
    pub name: String,
    /// The limits its workers obey (the runtime's, overridden by the manifest).
    pub limits: Limits,
    /// What its workers may reach.
    pub grants: Grants,
}

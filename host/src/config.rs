//! [`RuntimeConfig`]: the host-wide settings of a [`Runtime`](crate::Runtime) — the
//! default [`Limits`] for every worker and the engine-wide knobs that cannot vary per
//! plugin. It can be read from a TOML file (the host-wide config):
//!
//! ```toml
//! epoch_tick = "1ms"
//! allocator = "auto"          # "auto" | "pooling" | "on-demand"
//! pool_instances = 1000
//! cache_dir = "/var/cache/colony"
//!
//! [limits]
//! memory_bytes = 134217728
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ManifestError;
use crate::limits::Limits;

/// Which instance allocator the engine uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllocatorChoice {
    /// The pooling allocator if the platform allows it (probed), otherwise on-demand.
    #[default]
    Auto,
    /// The pooling allocator, or fail.
    Pooling,
    /// Allocate each instance's memory on demand (mmap per instance).
    OnDemand,
}

/// Host-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Default limits of every worker (a plugin's manifest may override them).
    pub limits: Limits,
    /// Period of the engine's epoch ticker. Default 1 ms: the granularity of stop, of CPU
    /// slicing and of deadlines; one atomic increment per tick costs nothing measurable.
    #[serde(with = "humantime_serde")]
    pub epoch_tick: Duration,
    /// Instance allocator. Default `auto`: pooling (pre-reserved slots, copy-on-write
    /// memory images, cheap reuse) where the platform allows it.
    pub allocator: AllocatorChoice,
    /// With pooling: how many guest instances may be live at once. Default 1,000. Each
    /// slot reserves (but does not commit) ~6 GiB of address space; past
    /// `vm.max_map_count` / 4 slots the kernel refuses mappings.
    pub pool_instances: u32,
    /// Where precompiled components are cached, keyed by the component's sha256 and the
    /// engine's compatibility hash. Default none: compile in memory each time.
    pub cache_dir: Option<PathBuf>,
    /// The model provider guests' `llm.complete` calls go to. Default none: such calls
    /// fail with `not-configured`.
    pub llm: Option<crate::llm::LlmConfig>,
    /// MCP servers whose tools plugins may be granted (`mcp:NAME` or `mcp:NAME/TOOL`).
    /// Default none.
    #[cfg(feature = "mcp")]
    pub mcp: std::collections::BTreeMap<String, crate::tools::mcp::McpServerConfig>,
    /// Traces (OpenTelemetry). Default off, unless the standard `OTEL_EXPORTER_OTLP_*`
    /// variables name an endpoint.
    pub telemetry: crate::telemetry::TelemetryConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            epoch_tick: Duration::from_millis(1),
            allocator: AllocatorChoice::Auto,
            pool_instances: 1000,
            cache_dir: None,
            llm: None,
            #[cfg(feature = "mcp")]
            mcp: Default::default(),
            telemetry: Default::default(),
        }
    }
}

impl RuntimeConfig {
    /// Reads a host-wide config file. Unknown fields are errors naming field and file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        toml::from_str(&crate::manifest::read_text(path)?).map_err(|e| ManifestError::Invalid {
            path: path.to_owned(),
            reason: e.message().to_owned(),
        })
    }
}

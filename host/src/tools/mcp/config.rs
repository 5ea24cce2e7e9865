//! How the host reaches one MCP server: `[mcp.NAME]` in the host config.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// One MCP server, spawned over stdio (`command`) or reached over streamable HTTP (`url`).
///
/// ```toml
/// [mcp.time]
/// command = "mcp-server-time"            # spawned by the host, spoken to over stdio
/// args = ["--local-timezone", "UTC"]
/// env = { TZ = "UTC" }                   # added to the host's environment for it
///
/// [mcp.search]
/// url = "https://mcp.example.com/mcp"    # streamable HTTP
/// bearer_token_env = "SEARCH_TOKEN"      # read from the host's environment; never given to guests
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The program to spawn (stdio transport).
    #[serde(default)]
    pub command: Option<PathBuf>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables added to the host's environment for the spawned server.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The server's streamable HTTP endpoint (instead of `command`).
    #[serde(default)]
    pub url: Option<String>,
    /// A host environment variable holding a bearer token for `url`.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// How long starting it (spawn or connect, handshake, tool list) may take. Default
    /// 10 s: a server that hangs at start fails its callers then, and no one else.
    #[serde(default = "default_start_timeout", with = "humantime_serde")]
    pub start_timeout: Duration,
    /// The largest message read from it. Default 4 MiB: larger ones are dropped unread
    /// (the call waiting for one then ends at the tool timeout).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

fn default_start_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_message_bytes() -> usize {
    4 << 20
}

impl McpServerConfig {
    /// Checks that exactly one transport is named, and names that fit a tool name.
    pub(crate) fn validate(&self, name: &str) -> Result<(), String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "mcp.{name}: a server name is letters, digits, '_' and '-'"
            ));
        }
        match (&self.command, &self.url) {
            (Some(_), Some(_)) => Err(format!("mcp.{name}: give `command` or `url`, not both")),
            (None, None) => Err(format!(
                "mcp.{name}: give `command` (stdio) or `url` (HTTP)"
            )),
            (None, Some(_)) if !self.args.is_empty() || !self.env.is_empty() => Err(format!(
                "mcp.{name}: `args` and `env` are for a spawned server (`command`)"
            )),
            (Some(_), None) if self.bearer_token_env.is_some() => Err(format!(
                "mcp.{name}: `bearer_token_env` is for an HTTP server (`url`)"
            )),
            (None, Some(url)) if !is_https_or_loopback(url) => Err(format!(
                "mcp.{name}: `url` must be https:// (plain http:// only to a loopback address)"
            )),
            _ => Ok(()),
        }
    }
}

/// Whether `url` is https, or plain http to this machine (a token never crosses the
/// network in clear text).
fn is_https_or_loopback(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

//! MCP servers' tools for guests: the host config declares servers (`[mcp.NAME]`), and a
//! plugin whose manifest grants `mcp:NAME` (all of that server's tools) or
//! `mcp:NAME/TOOL` (one) sees them through the `tools` interface like the built-ins —
//! listed by `tools.granted` with their JSON schemas, called by `tools.call` — under the
//! same tool timeout, tool-call budget and host memory budget.
//!
//! Why the host speaks MCP and not the guest: a guest has no sockets and no processes;
//! the host holds the servers, their commands, URLs and tokens, and a guest only ever
//! sees tool names, schemas and results. Errors a guest hears never name a command, a
//! URL or a cause; the host's log has them.
//!
//! Built on the official Rust SDK (`rmcp`): stdio servers spawned by the host (each in
//! its own process group, killed whole), streamable HTTP servers over rustls.

mod config;
mod http;
mod server;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

pub use config::McpServerConfig;
use server::McpServer;

use super::ToolError;

/// The prefix of every MCP tool name: `mcp:SERVER/TOOL`.
pub const PREFIX: &str = "mcp:";

/// A tool as `tools.granted` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct McpToolInfo {
    /// `mcp:SERVER/TOOL`.
    pub name: String,
    /// The server's description of it.
    pub description: String,
    /// Its input schema.
    pub parameters: Value,
}

/// Every configured MCP server, by name.
#[derive(Default)]
pub struct McpServers {
    servers: BTreeMap<String, Arc<McpServer>>,
}

impl McpServers {
    /// The servers `configs` declares (checked: one transport each, usable names).
    pub fn new(configs: &BTreeMap<String, McpServerConfig>) -> Result<Self, String> {
        let mut servers = BTreeMap::new();
        for (name, config) in configs {
            config.validate(name)?;
            servers.insert(
                name.clone(),
                Arc::new(McpServer::new(name.clone(), config.clone())),
            );
        }
        Ok(Self { servers })
    }

    /// Whether no server is configured.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The MCP tools `grants` names, listed by their servers (started if need be, all
    /// at once, each within `timeout`); a server that cannot start in time contributes
    /// nothing (its callers hear why).
    pub async fn granted(
        &self,
        grants: &[String],
        timeout: std::time::Duration,
    ) -> Vec<McpToolInfo> {
        let lists = self
            .servers
            .iter()
            .filter(|(name, _)| grants.iter().any(|g| grant_names_server(g, name)))
            .map(|(_, server)| tokio::time::timeout(timeout, server.tools()));
        let mut listed = Vec::new();
        for tools in futures_util::future::join_all(lists).await {
            let Ok(Ok(tools)) = tools else { continue };
            listed.extend(
                tools
                    .iter()
                    .filter(|t| is_granted(grants, &t.name))
                    .cloned(),
            );
        }
        listed
    }

    /// Calls the MCP tool `name` (`mcp:SERVER/TOOL`); the caller has checked the grant.
    pub async fn call(&self, name: &str, arguments: Value) -> Result<Value, ToolError> {
        let (server, tool) = split(name)
            .ok_or_else(|| ToolError::Failed(format!("'{name}' is not an MCP tool name")))?;
        let server = self
            .servers
            .get(server)
            .ok_or_else(|| ToolError::Failed(format!("no MCP server '{server}' is configured")))?;
        server.call(tool, arguments).await
    }
}

/// `mcp:SERVER/TOOL` → (SERVER, TOOL).
pub fn split(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (server, tool) = rest.split_once('/')?;
    (!server.is_empty() && !tool.is_empty()).then_some((server, tool))
}

/// Whether the grant names server `server` (whole, or one of its tools).
fn grant_names_server(grant: &str, server: &str) -> bool {
    grant.strip_prefix(PREFIX).is_some_and(|rest| {
        rest == server || rest.split_once('/').is_some_and(|(s, _)| s == server)
    })
}

/// Whether `grants` allow the MCP tool `name`: by its own name, or by its server's.
pub fn is_granted(grants: &[String], name: &str) -> bool {
    let Some((server, _)) = split(name) else {
        return false;
    };
    grants
        .iter()
        .any(|g| g == name || g.strip_prefix(PREFIX) == Some(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_is_granted_by_its_name_or_its_servers() {
        let grants = vec!["mcp:time".to_owned(), "mcp:files/read".to_owned()];
        assert!(is_granted(&grants, "mcp:time/get_current_time"));
        assert!(is_granted(&grants, "mcp:files/read"));
        assert!(!is_granted(&grants, "mcp:files/write"));
        assert!(!is_granted(&grants, "mcp:timer/x"));
        assert!(!is_granted(&grants, "mcp:time"));
        assert_eq!(split("mcp:a/b/c"), Some(("a", "b/c")));
        assert_eq!(split("mcp:/b"), None);
    }
}

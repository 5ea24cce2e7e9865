//! The streamable HTTP transport to an MCP server, with its bearer token.

use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};

use super::config::McpServerConfig;

/// Connects to `url`, with the token from `config.bearer_token_env` if named.
pub async fn connect(
    url: &str,
    config: &McpServerConfig,
) -> Result<RunningService<RoleClient, ()>, String> {
    crate::crypto::install();
    let mut transport = StreamableHttpClientTransportConfig::with_uri(url.to_owned())
        .max_json_response_size(config.max_message_bytes)
        .max_sse_event_size(config.max_message_bytes);
    if let Some(variable) = &config.bearer_token_env {
        let token = std::env::var(variable)
            .map_err(|_| format!("the environment variable {variable} is not set"))?;
        transport = transport.auth_header(token);
    }
    ().serve(StreamableHttpClientTransport::from_config(transport))
        .await
        .map_err(|e| e.to_string())
}

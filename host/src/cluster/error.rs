//! [`ClusterError`]: what can go wrong between a colony, NATS and its nodes.

/// A NATS or JetStream operation failed, or a node refused work.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("NATS JetStream: {what}: {reason}")]
    JetStream { what: String, reason: String },
    #[error("'{value}' cannot be a {what} on NATS: use letters, digits, '-' and '_' only")]
    InvalidToken { what: &'static str, value: String },
    #[error("plugin '{plugin}' has no sha256 yet: load it before serving or fanning it out")]
    PluginNotLoaded { plugin: String },
    #[error(
        "no colony node serves plugin '{plugin}' (sha256 {sha256}); start `colony node --plugin` with its manifest"
    )]
    NoNodeForPlugin { plugin: String, sha256: String },
    #[error("node '{node}': {reason}")]
    InvalidNode { node: String, reason: String },
    #[error("worker '{worker}' is not running on any node")]
    NotRunning { worker: String },
    #[error("worker '{worker}': the node refused: {reason}")]
    Refused { worker: String, reason: String },
}

impl ClusterError {
    /// A JetStream failure while doing `what`.
    pub(crate) fn js(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        ClusterError::JetStream {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

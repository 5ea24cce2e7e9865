//! [`ClusterError`]: what can go wrong between a colony, NATS and its nodes.

/// A NATS or JetStream operation failed, or a node refused work.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The NATS server could not be reached, or a local `nats-server` could not be started.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server address tried (comma-separated for a cluster).
        url: String,
        /// The client's error.
        reason: String,
    },
    /// A JetStream call failed: creating or opening a stream or consumer, publishing a
    /// task or report, or reading one back.
    #[error("NATS JetStream: {what}: {reason}")]
    JetStream {
        /// The operation attempted, e.g. `open the task stream`.
        what: String,
        /// JetStream's error.
        reason: String,
    },
    /// A stream exists with settings Colony does not expect (made by hand, by an older
    /// version, or with another replica count).
    #[error(
        "NATS stream {stream} exists with other settings: {differences}; change it (`nats stream edit {stream}`) or remove it"
    )]
    StreamMismatch {
        /// The stream's name.
        stream: String,
        /// Each setting that differs, with its value and the one Colony needs.
        differences: String,
    },
    /// An id or name cannot be used as one NATS subject token.
    #[error("'{value}' cannot be a {what} on NATS: use letters, digits, '-' and '_' only")]
    InvalidToken {
        /// Which kind of name it is, e.g. `worker id` or `node name`.
        what: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A plugin was handed to a node or a NATS colony before loading computed its sha256,
    /// which tasks are routed by.
    #[error("plugin '{plugin}' has no sha256 yet: load it before serving or fanning it out")]
    PluginNotLoaded {
        /// The plugin's name.
        plugin: String,
    },
    /// A node's configuration is rejected, e.g. an ack wait under
    /// [`MIN_ACK_WAIT`](crate::cluster::MIN_ACK_WAIT).
    #[error("node '{node}': {reason}")]
    InvalidNode {
        /// The node's name.
        node: String,
        /// What is wrong with its configuration.
        reason: String,
    },
    /// A control request had no responder: the worker is still queued, already ended,
    /// or its node is gone.
    #[error("worker '{worker}' is not running on any node")]
    NotRunning {
        /// The worker's id.
        worker: String,
    },
    /// A control request failed: the node answered with an error, did not answer in
    /// time, or the request or its answer could not be encoded or read.
    #[error("worker '{worker}': the node refused: {reason}")]
    Refused {
        /// The worker's id.
        worker: String,
        /// The node's error, or what went wrong with the request.
        reason: String,
    },
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

//! `colony:agent/peers`: messages to other workers of the same colony.

use super::HostState;
use crate::bindings::colony::agent::peers;
use crate::sandbox::Held;

impl peers::Host for HostState {
    async fn send(&mut self, to: String, message: String) -> wasmtime::Result<Result<(), String>> {
        self.charge_event()?;
        let limit = self.worker.limits().max_message_bytes;
        if message.len() > limit {
            return Ok(Err(super::too_large("message", message.len(), limit)));
        }
        let Some(router) = self.worker.router() else {
            return Ok(Err("this worker is not part of a colony".to_owned()));
        };
        // Charged to the sender while it travels: the message, its "[MESSAGE from …]"
        // envelope and, to a remote worker, its JSON encoding (up to 6 bytes a character).
        let cost = message.len().saturating_mul(7).saturating_add(256);
        let in_flight = match self.worker.memory.hold(cost, "a message to a peer") {
            Ok(held) => held,
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(router
            .route(self.worker.id(), &to, &message, in_flight)
            .await)
    }
}

/// The message worker `to` receives when worker `from` sends it `message`.
#[cfg(feature = "colony")]
pub(crate) fn peer_message(from: &str, message: &str) -> String {
    format!("[MESSAGE from {from}] {message}")
}

/// Delivers a message from one worker to another of the same colony.
#[async_trait::async_trait]
pub(crate) trait MessageRouter: Send + Sync {
    /// `Err` (shown to the sending guest) when the target is unknown or has ended.
    /// `in_flight` is the sender's charge for the message while it travels; a message
    /// to a worker on another node is answered once that node has it (or says why not).
    async fn route(
        &self,
        from: &str,
        to: &str,
        message: &str,
        in_flight: Held,
    ) -> Result<(), String>;
}

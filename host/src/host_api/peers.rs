//! `colony:agent/peers`: messages to other workers of the same colony.

use serde_json::json;

use super::HostState;
use super::taped::taped;
use crate::bindings::colony::agent::peers;
use crate::replay::StepKind;
use crate::sandbox::Held;

impl peers::Host for HostState {
    async fn send(&mut self, to: String, message: String) -> wasmtime::Result<Result<(), String>> {
        self.charge_event()?;
        // Refused before anything is copied for the recording (and the same on replay).
        let limit = self.worker.limits().max_message_bytes;
        if message.len() > limit {
            return Ok(Err(super::too_large("message", message.len(), limit)));
        }
        let worker = self.worker.clone();
        let asked = worker
            .tape()
            .filter(|tape| tape.wants_calls())
            .map(|_| json!({"to": to, "message": message}));
        let live = async { Ok(self.send_live(&to, message).await) };
        Ok(taped(
            &worker,
            StepKind::PeerSend,
            || asked.unwrap_or_default(),
            live,
        )
        .await?
        .0)
    }
}

impl HostState {
    /// `peers.send`, through the colony's router.
    async fn send_live(&mut self, to: &str, message: String) -> Result<(), String> {
        let Some(router) = self.worker.router() else {
            return Err("this worker is not part of a colony".to_owned());
        };
        // Charged to the sender while it travels: the message, its "[MESSAGE from …]"
        // envelope and, to a remote worker, its JSON encoding (up to 6 bytes a character).
        let cost = message.len().saturating_mul(7).saturating_add(256);
        let in_flight = match self.worker.memory.hold(cost, "a message to a peer") {
            Ok(held) => held,
            Err(e) => return Err(e.to_string()),
        };
        router
            .route(self.worker.id(), to, &message, in_flight)
            .await
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

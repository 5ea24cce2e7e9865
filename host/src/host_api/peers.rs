//! `colony:agent/peers`: messages to other workers of the same colony.

use super::HostState;
use crate::bindings::colony::agent::peers;

impl peers::Host for HostState {
    async fn send(&mut self, to: String, message: String) -> wasmtime::Result<Result<(), String>> {
        self.charge_event()?;
        let limit = self.worker.limits().max_message_bytes;
        if message.len() > limit {
            return Ok(Err(super::too_large("message", message.len(), limit)));
        }
        let Some(router) = self.worker.router.get().and_then(|r| r.upgrade()) else {
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

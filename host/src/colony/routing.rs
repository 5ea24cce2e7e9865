//! `peers.send` within a colony: the target must be a member (or the overseer) and not
//! the sender; a worker on a node gets the message through its node, held here until it
//! runs. Workers on nodes send through the colony too (`feeds.rs`), so every message
//! between workers takes this one path.

use std::sync::Arc;

use super::ColonyInner;
use super::member::MemberRef;
use crate::sandbox::Held;
use crate::worker::MessageRouter;

impl ColonyInner {
    /// Delivers `message` from worker `from` to `to` (a member, or `overseer`): the one
    /// path for messages between workers, wherever either runs.
    pub(super) async fn route_peer(
        &self,
        from: &str,
        to: &str,
        message: &str,
    ) -> Result<(), String> {
        let target: Option<MemberRef> = if to == "overseer" {
            self.overseer().map(|w| Arc::new(w) as MemberRef)
        } else {
            self.member(to)
        };
        let Some(target) = target else {
            return Err(format!("no worker '{to}' in colony '{}'", self.config.id));
        };
        if target.id() == from {
            return Err("a worker cannot message itself".to_owned());
        }
        target.deliver(from, message).await
    }
}

#[async_trait::async_trait]
impl MessageRouter for ColonyInner {
    async fn route(
        &self,
        from: &str,
        to: &str,
        message: &str,
        _in_flight: Held,
    ) -> Result<(), String> {
        self.route_peer(from, to, message).await
    }
}

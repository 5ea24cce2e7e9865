//! `peers.send` within a colony: the target must be a member (or the overseer) and not
//! the sender; a worker on a node gets the message through its node.

use std::sync::Arc;

use super::ColonyInner;
use super::member::MemberRef;
use crate::sandbox::Held;
use crate::worker::MessageRouter;

#[async_trait::async_trait]
impl MessageRouter for ColonyInner {
    async fn route(
        &self,
        from: &str,
        to: &str,
        message: &str,
        _in_flight: Held,
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

//! [`Member`]: one worker of a colony, wherever it runs.
//!
//! Why a trait: a colony runs its fanned-out workers in this process or on `colony
//! node`s over NATS, and everything it does with a worker — look it up, inject into it,
//! stop it, start it with a concurrency slot, hand it a peer's message, collect its report
//! — must behave the same for both. One handle with two implementations (here for a
//! local [`Worker`], in `remote.rs` for a [`RemoteWorker`](super::remote::RemoteWorker))
//! makes that so by construction: the colony never asks which kind it holds.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

#[cfg(feature = "nats")]
use super::remote::RemoteWorker;
use super::{ColonyError, ColonyInner};
use crate::worker::{
    StopOutcome, Worker, WorkerInfo, WorkerReport, WorkerState, peer_message, supervise,
};

/// One worker of a colony, in this process or on a node.
#[async_trait::async_trait]
pub(super) trait Member: Send + Sync {
    /// Its id.
    fn id(&self) -> &str;
    /// A snapshot.
    fn info(&self) -> WorkerInfo;
    /// Its task, in natural language.
    fn task(&self) -> &str;
    /// Its report, once it has ended.
    fn report(&self, colony: &str) -> Option<WorkerReport>;
    /// Injects `message` (on a node: held until it runs, then delivered there).
    async fn inject(&self, message: String) -> Result<(), ColonyError>;
    /// Stops it, bounded by the stop timeout.
    async fn stop(&self, colony: &ColonyInner) -> StopOutcome;
    /// Starts it, holding `slot` until it ends (the dispatcher's part).
    async fn launch(self: Arc<Self>, colony: Arc<ColonyInner>, slot: OwnedSemaphorePermit);
    /// Hands it `message` from worker `from` (`peers.send`); `Ok` once it has it.
    async fn deliver(&self, from: &str, message: &str) -> Result<(), String>;
    /// The worker itself, when it runs in this process.
    fn as_local(&self) -> Option<&Worker> {
        None
    }
    /// The record of a worker on a node.
    #[cfg(feature = "nats")]
    fn as_remote(self: Arc<Self>) -> Option<Arc<RemoteWorker>> {
        None
    }
}

/// A member, shared by the colony's list and its queue.
pub(super) type MemberRef = Arc<dyn Member>;

#[async_trait::async_trait]
impl Member for Worker {
    fn id(&self) -> &str {
        Worker::id(self)
    }

    fn info(&self) -> WorkerInfo {
        Worker::info(self)
    }

    fn task(&self) -> &str {
        &self.spec().task
    }

    fn report(&self, colony: &str) -> Option<WorkerReport> {
        self.state()
            .is_terminal()
            .then(|| self.result())
            .flatten()
            .map(|r| {
                let spec = self.spec();
                WorkerReport::from_result(&spec.id, colony, &spec.task, &r, spec.batch.as_ref())
            })
    }

    async fn inject(&self, message: String) -> Result<(), ColonyError> {
        Ok(Worker::inject(self, message)?)
    }

    async fn stop(&self, _colony: &ColonyInner) -> StopOutcome {
        Worker::stop(self).await
    }

    async fn launch(self: Arc<Self>, colony: Arc<ColonyInner>, slot: OwnedSemaphorePermit) {
        if self.state() != WorkerState::Queued || self.start().is_err() {
            return;
        }
        let soft = colony.config.soft_timeout;
        let hard = colony.config.effective_hard_timeout();
        let worker = (*self).clone();
        tokio::spawn(async move {
            // The slot bounds running guests: it is free once the guest is gone, while
            // the worker's end is still on its way to the journal.
            tokio::select! {
                () = supervise(worker.clone(), soft, hard) => {}
                () = worker.guest_gone() => {}
            }
            drop(slot);
        });
    }

    async fn deliver(&self, from: &str, message: &str) -> Result<(), String> {
        Worker::inject(self, peer_message(from, message)).map_err(|e| e.to_string())
    }

    fn as_local(&self) -> Option<&Worker> {
        Some(self)
    }
}

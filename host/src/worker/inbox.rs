//! [`Inbox`]: a worker's channel of injected messages, opened only when it is used.
//!
//! Why lazily: a colony creates a worker for every task of a fan-out up front (10,000
//! queued workers are 10,000 handles), and most ephemeral workers are never injected
//! into. A channel allocates its first block of slots when it is made, so the inbox is
//! made by the first `inject` or by `start` (which hands its receiving end to the
//! guest's store), and let go when the worker's run is over.

use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::host_api::InboxMessage;

enum State {
    /// Nothing injected and not started: no channel yet.
    Unopened,
    /// The sending end, and the receiving end until the worker starts.
    Open(
        mpsc::Sender<InboxMessage>,
        Option<mpsc::Receiver<InboxMessage>>,
    ),
    /// The run is over: nothing is taken any more.
    Closed,
}

/// A worker's inbox: bounded to `capacity` messages.
pub(crate) struct Inbox {
    capacity: usize,
    state: Mutex<State>,
}

impl Inbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::Unopened),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self, state: &mut State) {
        if matches!(state, State::Unopened) {
            let (tx, rx) = mpsc::channel(self.capacity);
            *state = State::Open(tx, Some(rx));
        }
    }

    /// Queues `message` without waiting: [`mpsc::error::TrySendError::Full`] at capacity,
    /// `Closed` once the run is over.
    pub fn try_send(
        &self,
        message: InboxMessage,
    ) -> Result<(), mpsc::error::TrySendError<InboxMessage>> {
        let mut state = self.state();
        self.open(&mut state);
        match &*state {
            State::Open(tx, _) => tx.try_send(message),
            _ => Err(mpsc::error::TrySendError::Closed(message)),
        }
    }

    /// The receiving end, for the guest's store; once (`None` after).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<InboxMessage>> {
        let mut state = self.state();
        self.open(&mut state);
        match &mut *state {
            State::Open(_, rx) => rx.take(),
            _ => None,
        }
    }

    /// The run is over: later sends fail, the channel's memory goes with its receiver.
    pub fn close(&self) {
        *self.state() = State::Closed;
    }
}

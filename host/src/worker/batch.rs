//! [`BatchPlace`]: where a worker's task sits in a fan-out.
//!
//! Why the worker knows it: an overseer that fanned out thousands of tasks reads their
//! reports as they come, in any order, often after a restart; a report that names its
//! batch, its task's index and the batch's size can be matched to its task and counted
//! without asking the journal. The place travels with the worker's spec (and with its task
//! to a node), so every report of the worker — its own, a synthesised one, one rebuilt
//! from the journal — carries it.

use serde::{Deserialize, Serialize};

/// A worker's place in a batch (a journaled fan-out): which batch, which of its tasks,
/// out of how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPlace {
    /// The batch's id (`b-…`).
    pub id: String,
    /// The task's index in the batch, from 0.
    pub index: u64,
    /// How many tasks the batch has.
    pub size: u64,
}

//! Record, replay and fork agent runs.
//!
//! Why: an agent run is nondeterministic only where it touches the world — the model's
//! answers, tool results, injected messages, peers. Every one of those passes through a
//! host function, so the host can write each answer down as a [`Step`] of the worker's
//! [`Recording`] (in the colony's journal) and later serve it back instead of asking the
//! world again. A run then becomes an artifact: replayed offline to debug it, turned into
//! a scripted-provider fixture for CI ([`Recording::to_script`]), or forked — replayed to
//! step N and continued live against another model or other tools.
//!
//! What is a step (numbered from 1, in the order the guest made the calls):
//! `tools.granted`, `llm.complete`, `tools.call`, `peers.send`, for a persistent worker
//! each turn's injected message, and `inbox.drain` / `inbox.wait` when they delivered a
//! message — an inbox call that got nothing is not a step (a guest polls its inbox every
//! iteration), its request is its ordinal among the calls of its kind, so a replay hands
//! the recorded message to the same call and nothing to the others. Each step holds
//! a SHA-256 of the request as the guest made it (canonical JSON), the request itself when
//! it is small ([`MAX_STORED_REQUEST_BYTES`]), and the answer the guest got (model text
//! deltas included, so a replay publishes the same events).
//!
//! A replay is cut off from the world besides: no network, its granted folders
//! read-only, its report not handed to the colony's overseer. A fork keeps its grants (it
//! goes live).
//!
//! Replay checks as it serves: a call of another kind, or with another request hash, than
//! the recorded step is a [`Divergence`] — the guest is stopped there (a trap) and the
//! divergence says which step and where the requests differ (the first differing JSON
//! path, both values). Asking past the end of the recording is one too; so is ending
//! before it (found when the run ends).
//!
//! Bounds: a worker's recording holds at most the colony's `max_recording_bytes`
//! (default [`DEFAULT_MAX_RECORDING_BYTES`]); the step that would pass it is replaced by a
//! `cut` step and nothing more is recorded — a replay stops there with a clear error.
//! Recording is on by default for a colony's in-process workers and can be turned off
//! ([`ColonyConfig::record`](crate::ColonyConfig)). What a replayed guest reads from the
//! WASI clocks and random is not recorded: a replay or fork runs with clocks that start at
//! the recorded run's start and advance a millisecond per reading, and random seeded from
//! the recorded worker's id — deterministic from one replay to the next.

// Without a colony (and its journal) nothing makes a tape: the host calls only ask.
#![cfg_attr(not(feature = "colony"), allow(dead_code))]
mod answer;
mod divergence;
mod recording;
mod step;
mod tape;
mod world;

pub(crate) use answer::{ListedTool, ModelAnswer, ModelCall, Outcome};
pub use divergence::Divergence;
pub use recording::Recording;
pub use step::{Step, StepKind};
pub use tape::StepLog;
pub(crate) use tape::{Served, Tape};
pub(crate) use world::World;

/// Requests larger than this (as canonical JSON) are kept as their hash only: a replay
/// still detects a divergence there, but can show only the new request.
pub const MAX_STORED_REQUEST_BYTES: usize = 64 * 1024;

/// The default bound of one worker's recording: requests, answers and hashes.
pub const DEFAULT_MAX_RECORDING_BYTES: u64 = 16 * 1024 * 1024;

//! Replaying and forking a recorded worker ([`crate::replay`]) as a new worker of the
//! colony: [`Colony::replay`], [`Colony::fork`].
//!
//! A replay or fork is a worker like any other — journaled, its events on the bus, its
//! own run recorded — whose host calls are first answered from the recording. Its journal
//! row says where it comes from ([`Lineage`]). The guest is shown the recorded worker's
//! id, colony, task and input (or the input given instead), so it asks what it asked.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::{Colony, ColonyError};
use crate::events::{EventBus, EventFilter, EventType};
use crate::journal::{Lineage, WorkerRecord};
use crate::plugin::Plugin;
use crate::replay::{Divergence, Recording, StepLog, Tape};
use crate::worker::{Worker, WorkerMode, WorkerResult, WorkerSpec};

/// A replay under way: its worker, and what it is checked against.
pub struct Replay {
    worker: Worker,
    tape: Arc<Tape>,
    recorded: WorkerRecord,
    /// Steps in the recording.
    recorded_steps: u64,
    /// A persistent worker's recorded turns, and how to give them.
    turns: (Vec<String>, TurnFeed),
}

/// How a persistent replay is given its turns: on this bus, each within `limit` (the
/// first within `first`, which covers the initial run too).
struct TurnFeed {
    bus: EventBus,
    limit: Duration,
    first: Duration,
}

/// How a replay went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayOutcome {
    /// The replaying worker.
    pub worker_id: String,
    /// The recorded worker.
    pub recorded_worker: String,
    /// Steps the replay made (served from the recording).
    pub steps: u64,
    /// Steps in the recording.
    pub recorded_steps: u64,
    /// Where the guest stopped doing what it did when recorded, if it did.
    pub divergence: Option<Divergence>,
    /// The replay's result.
    pub result: WorkerResult,
    /// The recorded run's result, if it ended.
    pub recorded_result: Option<WorkerResult>,
}

impl ReplayOutcome {
    /// How the replay's report differs from the recorded one (status, summary, data),
    /// in words; none if they are the same.
    pub fn report_difference(&self) -> Option<String> {
        let Some(recorded) = &self.recorded_result else {
            return Some("the recorded run has no result".into());
        };
        let now = &self.result;
        if recorded.status != now.status {
            return Some(format!(
                "status: recorded {}, now {}",
                recorded.status, now.status
            ));
        }
        if recorded.summary != now.summary {
            return Some(format!(
                "summary: recorded {:?}, now {:?}",
                recorded.summary, now.summary
            ));
        }
        if recorded.data != now.data {
            return Some(format!(
                "data: recorded {}, now {}",
                Value::Object(recorded.data.clone()),
                Value::Object(now.data.clone())
            ));
        }
        None
    }

    /// Whether the replay did what the recording says and reported the same.
    pub fn matches(&self) -> bool {
        self.divergence.is_none() && self.report_difference().is_none()
    }
}

impl Replay {
    /// The replaying worker (running).
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Runs the replay to its end: a persistent worker is given its recorded turns, one
    /// after the other, then stopped. How it went.
    pub async fn finish(self) -> ReplayOutcome {
        if self.worker.is_persistent() {
            let (turns, feed) = &self.turns;
            feed_turns(&self.worker, feed, turns).await;
            self.worker.stop().await;
        }
        let result = self.worker.wait().await;
        ReplayOutcome {
            worker_id: self.worker.id().to_owned(),
            recorded_worker: self.recorded.id.clone(),
            steps: self.tape.steps(),
            recorded_steps: self.recorded_steps,
            divergence: self.tape.finish(),
            result,
            recorded_result: self.recorded.result.clone(),
        }
    }
}

/// Injects `turns` into a persistent `worker` one at a time, each once the previous
/// turn has ended — until the worker ends (a divergence stops it) or a turn takes longer
/// than the turn timeout.
async fn feed_turns(worker: &Worker, feed: &TurnFeed, turns: &[String]) {
    let mut ended = feed.bus.subscribe(
        EventFilter::all()
            .worker(worker.id())
            .types([EventType::TurnCompleted, EventType::TurnFailed]),
    );
    for (i, turn) in turns.iter().enumerate() {
        if worker.inject(turn.clone()).is_err() {
            return;
        }
        let limit = if i == 0 { feed.first } else { feed.limit };
        let turn_ended = tokio::select! {
            heard = tokio::time::timeout(limit, ended.recv()) => matches!(heard, Ok(Ok(_))),
            _ = worker.wait() => false,
        };
        if !turn_ended {
            return;
        }
    }
}

impl Colony {
    /// Replays worker `id`'s recorded run with `plugin` (normally the one it ran: see
    /// [`WorkerRecord::plugin_sha256`]) as a new worker: every host call answered from
    /// the recording, no model, tool, peer or network reached. `input`: the task input
    /// to give instead of the recorded one (a what-if), if any. Call
    /// [`Replay::finish`] for the outcome.
    pub fn replay(
        &self,
        plugin: &Plugin,
        id: &str,
        input: Option<Value>,
    ) -> Result<Replay, ColonyError> {
        let (recorded, recording) = self.recorded(id, "replay")?;
        let lineage = Lineage::Replay { of: id.to_owned() };
        let (recorded_steps, turns) = (recording.len() as u64, recording.turns());
        let (worker, tape) = self.rerun(plugin, &recorded, recording, None, input, lineage)?;
        Ok(Replay {
            worker,
            tape,
            recorded,
            recorded_steps,
            turns: (turns, self.turn_feed(plugin)),
        })
    }

    /// Forks worker `id`'s recorded run at step `at`: a new worker whose first `at` host
    /// calls are answered from the recording, and the rest live — by this colony's
    /// runtime, so with its model and tools. Its journal row names the worker and step
    /// it was forked from. A persistent worker is given the recorded turns up to step
    /// `at`; then it is the caller's (inject, stop).
    pub async fn fork(&self, plugin: &Plugin, id: &str, at: u64) -> Result<Worker, ColonyError> {
        let (recorded, recording) = self.recorded(id, "fork")?;
        let usable = recording
            .steps
            .iter()
            .take_while(|s| s.kind != crate::replay::StepKind::Cut)
            .count() as u64;
        if at > usable {
            return Err(self.not_replayable(
                id,
                "fork",
                format!("its recording has {usable} step(s); cannot fork at step {at}"),
            ));
        }
        let lineage = Lineage::Fork {
            from: id.to_owned(),
            at,
        };
        let turns = recording.turns_to(at);
        let (worker, _) = self.rerun(plugin, &recorded, recording, Some(at), None, lineage)?;
        if worker.is_persistent() {
            feed_turns(&worker, &self.turn_feed(plugin), &turns).await;
        }
        Ok(worker)
    }

    fn turn_feed(&self, plugin: &Plugin) -> TurnFeed {
        let limits = plugin.limits();
        let limit = limits.turn_timeout + Duration::from_secs(1);
        TurnFeed {
            bus: self.inner.bus.clone(),
            limit,
            first: limit + limits.run_timeout,
        }
    }

    /// Worker `id`'s journal row and recording; refused if it has none.
    fn recorded(
        &self,
        id: &str,
        action: &'static str,
    ) -> Result<(WorkerRecord, Recording), ColonyError> {
        let journal = &self.inner.journal;
        let record = journal
            .worker(id)?
            .ok_or_else(|| ColonyError::UnknownWorker {
                colony: self.id().to_owned(),
                worker: id.to_owned(),
            })?;
        let recording = journal.recording(id)?;
        if recording.is_empty() && record.started_at.is_none() {
            return Err(self.not_replayable(id, action, "it never ran".into()));
        }
        Ok((record, recording))
    }

    fn not_replayable(&self, id: &str, action: &'static str, reason: String) -> ColonyError {
        ColonyError::NotReplayable {
            colony: self.id().to_owned(),
            worker: id.to_owned(),
            action,
            reason,
        }
    }

    /// Starts a new worker running `recorded`'s task on `recording` (to step `fork_at`,
    /// or all of it).
    fn rerun(
        &self,
        plugin: &Plugin,
        recorded: &WorkerRecord,
        recording: Recording,
        fork_at: Option<u64>,
        input: Option<Value>,
        lineage: Lineage,
    ) -> Result<(Worker, Arc<Tape>), ColonyError> {
        self.ensure_running()?;
        let prefix = if fork_at.is_some() { "fork" } else { "replay" };
        let id = self.new_id(prefix);
        let started = recorded.started_at.unwrap_or(recorded.created_at);
        let started = Duration::from_micros(started.timestamp_micros().max(0) as u64);
        let journal: Arc<dyn StepLog> = self.inner.journal.clone();
        let log = (journal, self.inner.config.max_recording_bytes);
        let tape = Tape::player(&id, recording, started, fork_at, Some(log))
            .presenting(&recorded.id, &recorded.colony_id);
        let tape = Arc::new(tape);
        let spec = match recorded.mode {
            WorkerMode::Ephemeral => WorkerSpec::ephemeral(&id, &recorded.task),
            WorkerMode::Persistent => WorkerSpec::persistent(&id, &recorded.task),
        }
        .with_input(input.unwrap_or_else(|| recorded.input.clone()))
        .with_budgets(recorded.token_budget, recorded.tool_call_budget);
        let worker = self.create_taped(plugin, spec, false, Some((tape.clone(), lineage)))?;
        worker.start()?;
        Ok((worker, tape))
    }
}

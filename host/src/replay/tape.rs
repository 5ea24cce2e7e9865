//! [`Tape`]: one worker's recording as it is made, or served back.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::step::canonical;
use super::{Divergence, MAX_STORED_REQUEST_BYTES, Step, StepKind, World};

/// Where a worker's steps are kept (a colony's journal). Must not block: it is called
/// from the guest's host calls.
pub trait StepLog: Send + Sync {
    /// Keeps step `step` of worker `worker`.
    fn append(&self, worker: &str, step: &Step);
}

/// What [`Tape::serve`] says to do with a call.
pub(crate) enum Served {
    /// Answer the guest with this recorded answer; the world is not asked.
    Answer(Value),
    /// Ask the world, then [`Tape::record`] the answer.
    Live,
}

/// Whether the tape serves recorded steps.
enum Mode {
    /// Records only: every call is live.
    Record,
    /// Serves every step from `script`; a call past its end is a divergence.
    Replay,
    /// Serves steps `1..=at` from `script`, then goes live.
    Fork { at: u64 },
}

/// One worker's recording: what it records its steps into (if recording), and the steps
/// of an earlier run it serves back (a replay or a fork).
pub(crate) struct Tape {
    worker: String,
    log: Option<Arc<dyn StepLog>>,
    max_bytes: u64,
    mode: Mode,
    script: Vec<Step>,
    world: World,
    /// For a replay or fork: the worker id and colony id the guest is shown (the
    /// recorded worker's), so it asks what it asked then.
    presented: Option<(String, String)>,
    state: Mutex<State>,
}

struct State {
    /// The index of the next step.
    next: u64,
    /// Bytes recorded so far.
    bytes: u64,
    /// The recording reached its bound: nothing more is kept.
    cut: bool,
    /// Where a replay diverged, once it has.
    diverged: Option<Divergence>,
    /// `inbox.drain` and `inbox.wait` calls so far.
    drains: u64,
    waits: u64,
}

impl Tape {
    /// Records worker `worker`'s steps into `log`, within `max_bytes`.
    pub fn recorder(worker: &str, log: Arc<dyn StepLog>, max_bytes: u64) -> Self {
        let world = World::recorded(worker);
        Self::new(
            worker,
            Some(log),
            max_bytes,
            (Mode::Record, Vec::new(), world),
        )
    }

    /// Serves `recording` (whose run started at `started`, since the epoch) to worker
    /// `worker`: all of it (`fork_at` none), or its first `fork_at` steps and then live.
    /// What the worker does is recorded into `log`, if given, within `max_bytes`.
    pub fn player(
        worker: &str,
        recording: super::Recording,
        started: std::time::Duration,
        fork_at: Option<u64>,
        log: Option<(Arc<dyn StepLog>, u64)>,
    ) -> Self {
        let mode = match fork_at {
            Some(at) => Mode::Fork { at },
            None => Mode::Replay,
        };
        let world = World::replayed(&recording.worker_id, started, fork_at.is_none());
        let (log, max_bytes) = log.map_or((None, 0), |(log, max)| (Some(log), max));
        Self::new(worker, log, max_bytes, (mode, recording.steps, world))
    }

    fn new(
        worker: &str,
        log: Option<Arc<dyn StepLog>>,
        max_bytes: u64,
        (mode, script, world): (Mode, Vec<Step>, World),
    ) -> Self {
        Self {
            worker: worker.to_owned(),
            log,
            max_bytes,
            mode,
            script,
            world,
            presented: None,
            state: Mutex::new(State {
                next: 1,
                bytes: 0,
                cut: false,
                diverged: None,
                drains: 0,
                waits: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The guest makes a `kind` call asking `request`: answer it from the recording, or
    /// go live (then pass the same `request` to [`Tape::record`]: an inbox call's is
    /// rewritten to its ordinal). `Err`: the guest diverged from the recording (it is to
    /// be stopped).
    pub fn serve(&self, kind: StepKind, request: &mut Value) -> Result<Served, Divergence> {
        let mut state = self.lock();
        if let Some(diverged) = &state.diverged {
            return Err(diverged.clone());
        }
        let quiet = kind.quiet_when_empty();
        if quiet {
            let calls = match kind {
                StepKind::InboxDrain => &mut state.drains,
                _ => &mut state.waits,
            };
            *calls += 1;
            *request = json!({"call": *calls});
        }
        let index = state.next;
        let serving = match self.mode {
            Mode::Record => false,
            Mode::Replay => true,
            Mode::Fork { at } => index <= at,
        };
        if !serving {
            return Ok(Served::Live);
        }
        let (text, hash) = canonical(request);
        let next = self.script.get(index as usize - 1);
        if quiet && !next.is_some_and(|s| s.kind == kind && s.request_hash == hash) {
            // Not the call that got a message.
            return Ok(Served::Answer(kind.empty_answer()));
        }
        let checked = match next {
            None => Err(Divergence::past_the_end(index, kind, request)),
            Some(step) if step.kind == StepKind::Cut => Err(Divergence::cut(index)),
            Some(step) if step.kind != kind => Err(Divergence::other_call(index, step.kind, kind)),
            Some(step) if step.request_hash != hash => Err(Divergence::other_request(
                index,
                kind,
                step.request.as_ref(),
                request,
            )),
            Some(step) => Ok(step.answer.clone()),
        };
        match checked {
            Ok(answer) => {
                state.next += 1;
                self.keep(&mut state, index, kind, text, hash, answer.clone());
                Ok(Served::Answer(answer))
            }
            Err(diverged) => {
                state.diverged = Some(diverged.clone());
                Err(diverged)
            }
        }
    }

    /// Whether calls should be brought to the tape at all: it serves them, or it still
    /// records (not cut). When not, a call need not even build its request.
    pub fn wants_calls(&self) -> bool {
        let state = self.lock();
        let serving = match self.mode {
            Mode::Record => false,
            Mode::Replay => true,
            Mode::Fork { at } => state.next <= at,
        };
        serving || (self.log.is_some() && !state.cut)
    }

    /// The guest diverged in a way only its caller saw (an unreadable recorded answer):
    /// every later call, and [`Tape::finish`], hear of it.
    pub fn diverge(&self, diverged: Divergence) {
        let mut state = self.lock();
        if state.diverged.is_none() {
            state.diverged = Some(diverged);
        }
    }

    /// Records the answer to a live `kind` call that asked `request`.
    pub fn record(&self, kind: StepKind, request: &Value, answer: Value) {
        if kind.quiet_when_empty() && answer == kind.empty_answer() {
            return;
        }
        let mut state = self.lock();
        let index = state.next;
        state.next += 1;
        if self.log.is_none() || state.cut {
            return;
        }
        let (text, hash) = canonical(request);
        self.keep(&mut state, index, kind, text, hash, answer);
    }

    /// Appends a step to the log, or — past the bound — the `cut` step that ends it.
    fn keep(
        &self,
        state: &mut State,
        index: u64,
        kind: StepKind,
        request: String,
        request_hash: String,
        answer: Value,
    ) {
        let Some(log) = &self.log else { return };
        if state.cut {
            return;
        }
        let request = (request.len() <= MAX_STORED_REQUEST_BYTES)
            .then(|| serde_json::from_str(&request).ok())
            .flatten();
        let step = Step {
            index,
            kind,
            request_hash,
            request,
            answer,
        };
        let size = step.size();
        if state.bytes + size > self.max_bytes {
            state.cut = true;
            let cut = Step {
                index,
                kind: StepKind::Cut,
                request_hash: String::new(),
                request: None,
                answer: json!({"recorded_bytes": state.bytes, "bound": self.max_bytes,
                    "step_bytes": size}),
            };
            log.append(&self.worker, &cut);
            return;
        }
        state.bytes += size;
        log.append(&self.worker, &step);
    }

    /// The run ended: for a replay, a recording with steps left over is a divergence
    /// (the guest ended early). Where the replay diverged, if it did.
    pub fn finish(&self) -> Option<Divergence> {
        let mut state = self.lock();
        if state.diverged.is_none()
            && matches!(self.mode, Mode::Replay)
            && let Some(next) = self.script.get(state.next as usize - 1)
        {
            state.diverged = Some(Divergence::ended_early(state.next, next.kind));
        }
        state.diverged.clone()
    }

    /// Shows the guest worker id `worker` of colony `colony` (a replay's or fork's: the
    /// recorded worker's) instead of its own.
    pub fn presenting(mut self, worker: &str, colony: &str) -> Self {
        self.presented = Some((worker.to_owned(), colony.to_owned()));
        self
    }

    /// The worker id and colony id the guest is shown, if not its own.
    pub fn presented(&self) -> Option<(&str, &str)> {
        self.presented
            .as_ref()
            .map(|(worker, colony)| (worker.as_str(), colony.as_str()))
    }

    /// What the guest reads of the clocks and random.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Steps the worker has made so far.
    pub fn steps(&self) -> u64 {
        self.lock().next - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Kept(Mutex<Vec<Step>>);

    impl StepLog for Kept {
        fn append(&self, _worker: &str, step: &Step) {
            self.0.lock().unwrap().push(step.clone());
        }
    }

    fn player(worker: &str, steps: Vec<Step>, fork_at: Option<u64>) -> Tape {
        let recording = crate::replay::Recording {
            worker_id: "w".into(),
            steps,
        };
        Tape::player(worker, recording, std::time::Duration::ZERO, fork_at, None)
    }

    fn recorded(calls: &[(StepKind, Value, Value)], bound: u64) -> Vec<Step> {
        let kept = Arc::new(Kept::default());
        let tape = Tape::recorder("w", kept.clone(), bound);
        for (kind, request, answer) in calls {
            let mut request = request.clone();
            assert!(matches!(tape.serve(*kind, &mut request), Ok(Served::Live)));
            tape.record(*kind, &request, answer.clone());
        }
        kept.0.lock().unwrap().clone()
    }

    #[test]
    fn a_replay_serves_the_recorded_answers_and_notices_divergence() {
        let steps = recorded(
            &[
                (StepKind::Llm, json!({"q": 1}), json!("a1")),
                (StepKind::Tool, json!({"name": "t"}), json!("r")),
            ],
            1 << 20,
        );
        assert_eq!(steps.len(), 2);
        let replay = player("w2", steps.clone(), None);
        let Ok(Served::Answer(a)) = replay.serve(StepKind::Llm, &mut json!({"q": 1})) else {
            panic!()
        };
        assert_eq!(a, json!("a1"));
        let d = replay
            .serve(StepKind::Tool, &mut json!({"name": "u"}))
            .err()
            .unwrap();
        assert_eq!(d.step, 2);
        assert!(
            d.detail.contains("at name, recorded \"t\", now \"u\""),
            "{d}"
        );
        // Once diverged, every later call hears the same.
        assert_eq!(replay.serve(StepKind::Llm, &mut json!({})).err(), Some(d));

        let short = player("w3", steps.clone(), None);
        let _ = short.serve(StepKind::Llm, &mut json!({"q": 1}));
        let d = short.finish().unwrap();
        assert_eq!((d.step, d.recorded), (2, Some(StepKind::Tool)));

        let fork = player("w4", steps, Some(1));
        assert!(matches!(
            fork.serve(StepKind::Llm, &mut json!({"q": 1})),
            Ok(Served::Answer(_))
        ));
        assert!(matches!(
            fork.serve(StepKind::Llm, &mut json!({"other": true})),
            Ok(Served::Live)
        ));
        assert_eq!(fork.finish(), None);
    }

    #[test]
    fn inbox_calls_that_got_nothing_are_not_steps() {
        let kept = Arc::new(Kept::default());
        let tape = Tape::recorder("w", kept.clone(), 1 << 20);
        for (kind, answer) in [
            (StepKind::InboxDrain, json!([])),
            (StepKind::InboxDrain, json!(["m"])),
            (StepKind::InboxWait, json!(null)),
            (StepKind::Llm, json!("a")),
        ] {
            let mut request = json!({});
            assert!(matches!(tape.serve(kind, &mut request), Ok(Served::Live)));
            tape.record(kind, &request, answer);
        }
        let steps = kept.0.lock().unwrap().clone();
        let kinds: Vec<_> = steps.iter().map(|s| (s.index, s.kind)).collect();
        assert_eq!(kinds, [(1, StepKind::InboxDrain), (2, StepKind::Llm)]);
        assert_eq!(steps[0].request, Some(json!({"call": 2})));

        // The replay's first drain gets nothing, its second the message.
        let replay = player("r", steps.clone(), None);
        let serve = |kind| replay.serve(kind, &mut json!({}));
        assert!(matches!(serve(StepKind::InboxDrain), Ok(Served::Answer(a)) if a == json!([])));
        assert!(matches!(serve(StepKind::InboxDrain), Ok(Served::Answer(a)) if a == json!(["m"])));
        assert!(matches!(serve(StepKind::InboxWait), Ok(Served::Answer(a)) if a.is_null()));
        assert!(matches!(serve(StepKind::Llm), Ok(Served::Answer(_))));
        assert_eq!(replay.finish(), None);

        // A guest that no longer drains a second time before the model call diverges.
        let replay = player("r", steps, None);
        let _ = replay.serve(StepKind::InboxDrain, &mut json!({}));
        let d = replay.serve(StepKind::Llm, &mut json!({})).err().unwrap();
        assert_eq!((d.step, d.recorded), (1, Some(StepKind::InboxDrain)));
    }

    #[test]
    fn a_recording_is_cut_at_its_bound() {
        let big = json!("x".repeat(1000));
        let calls: Vec<_> = (0..10)
            .map(|i| (StepKind::Llm, json!({"i": i}), big.clone()))
            .collect();
        let steps = recorded(&calls, 3_500);
        assert_eq!(steps.len(), 4, "three steps fit, then the cut");
        assert_eq!(steps[3].kind, StepKind::Cut);
        assert_eq!(steps[3].index, 4);
        let total: u64 = steps[..3].iter().map(Step::size).sum();
        assert!(total <= 3_500);
        let replay = player("w", steps, None);
        for i in 0..3 {
            assert!(replay.serve(StepKind::Llm, &mut json!({"i": i})).is_ok());
        }
        let d = replay
            .serve(StepKind::Llm, &mut json!({"i": 3}))
            .err()
            .unwrap();
        assert_eq!((d.step, d.recorded), (4, Some(StepKind::Cut)));
    }
}

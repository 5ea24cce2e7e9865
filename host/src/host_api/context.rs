//! [`WorkerContext`]: what the host functions serving one guest see of its worker, and
//! [`HostServices`]: what a runtime offers every guest (a model, host tools).
//!
//! Why a type of its own: a host function needs the worker's budgets, counters, storage
//! and event stream — never its lifecycle, its task or its plugin's compiled component.
//! The worker ([`crate::worker`]) owns one of these and the guest's store holds another
//! reference to it, so the host interfaces depend on nothing above them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use chrono::Utc;
use serde_json::{Value, json};

use super::peers::MessageRouter;
use super::report::ExplicitReport;
use crate::conversation::ConversationLog;
use crate::events::{AgentEvent, EventBus, EventLog, EventType};
use crate::limits::Limits;
use crate::llm::LlmProvider;
use crate::sandbox::output::OutputSink;
use crate::sandbox::{DiskQuota, Grants, HostMemory, Policy};
use crate::storage::WorkerStorage;
use crate::tools::ToolRegistry;

/// What a runtime offers its guests beyond WASI: its model provider and host tools.
#[derive(Clone, Default)]
pub(crate) struct HostServices {
    /// Answers `llm.complete`; none: the guest is told no model is configured.
    pub llm: Option<Arc<dyn LlmProvider>>,
    /// Answers `tools.call` for the tools a plugin is granted.
    pub tools: ToolRegistry,
    /// The MCP servers whose tools plugins may be granted.
    #[cfg(feature = "mcp")]
    pub mcp: Arc<crate::tools::mcp::McpServers>,
    /// Where spans go, if tracing is on.
    pub telemetry: Option<Arc<crate::telemetry::Telemetry>>,
}

/// Who a worker is, as its events name it.
pub(crate) struct Identity {
    /// The worker's id.
    pub id: String,
    /// The `stream_id` of its events.
    pub stream_id: String,
    /// The `execution_id` of its events.
    pub execution_id: String,
}

/// One worker as its host functions see it.
pub(crate) struct WorkerContext {
    identity: Identity,
    policy: Arc<Policy>,
    services: Arc<HostServices>,
    bus: Option<EventBus>,
    /// The worker's folder, if it has one.
    pub storage: Option<WorkerStorage>,
    /// Where its events are kept instead of its folder's `events.jsonl` (a colony's
    /// journal), once set.
    event_log: OnceLock<Arc<dyn EventLog>>,
    /// Where its conversation parts are kept instead of its folder, once set.
    conversation_log: OnceLock<Arc<dyn ConversationLog>>,
    /// Bytes the host holds for this worker (inbox, pages, results, streams).
    pub memory: Arc<HostMemory>,
    /// The inbox's share of `memory`.
    pub inbox_memory: Arc<HostMemory>,
    /// Bytes the host may still write to disk for it.
    pub disk: Arc<DiskQuota>,
    /// Bytes of its events `events.jsonl` may still take.
    event_disk: DiskQuota,
    /// Set once `events.jsonl` stopped taking the guest's events (quota spent).
    events_capped: AtomicBool,
    /// The guest's latest `report-to-parent`, not yet published.
    report: Mutex<Option<ExplicitReport>>,
    /// Injected messages the guest took itself (`inbox.drain` / `inbox.wait`): they
    /// never become turns.
    taken: AtomicU64,
    tokens_used: AtomicU64,
    token_budget: u64,
    tool_calls: AtomicU32,
    tool_call_budget: u32,
    /// Set when a model or tool call was refused for a spent budget.
    budget_limited: AtomicBool,
    /// Delivers `peers.send` messages (the worker's colony). Weak: a colony owns its
    /// workers, not the other way round.
    router: OnceLock<Weak<dyn MessageRouter>>,
    /// Its spans, once its run started with tracing on.
    trace: OnceLock<crate::telemetry::WorkerTrace>,
    /// Its recording (being made, or served back), if it has one.
    tape: OnceLock<Arc<crate::replay::Tape>>,
}

impl WorkerContext {
    /// The context of a worker of a plugin with `policy`, on a runtime offering
    /// `services`; `budgets` are its token and tool-call budgets (the task's, else the
    /// plugin's).
    pub fn new(
        identity: Identity,
        policy: Arc<Policy>,
        services: Arc<HostServices>,
        bus: Option<EventBus>,
        storage: Option<WorkerStorage>,
        budgets: (Option<u64>, Option<u32>),
    ) -> Self {
        let limits = &policy.limits;
        Self {
            memory: HostMemory::new(limits.host_memory_bytes),
            inbox_memory: super::inbox::inbox_share(limits.host_memory_bytes),
            disk: DiskQuota::new(limits.disk_bytes),
            event_disk: DiskQuota::named(limits.event_log_bytes, "event log quota"),
            token_budget: budgets.0.unwrap_or(limits.token_budget),
            tool_call_budget: budgets.1.unwrap_or(limits.tool_call_budget),
            identity,
            bus,
            storage,
            event_log: OnceLock::new(),
            conversation_log: OnceLock::new(),
            events_capped: AtomicBool::new(false),
            report: Mutex::new(None),
            taken: AtomicU64::new(0),
            tokens_used: AtomicU64::new(0),
            tool_calls: AtomicU32::new(0),
            budget_limited: AtomicBool::new(false),
            router: OnceLock::new(),
            trace: OnceLock::new(),
            tape: OnceLock::new(),
            policy,
            services,
        }
    }

    /// The worker's id.
    pub fn id(&self) -> &str {
        &self.identity.id
    }

    /// The name of the worker's plugin.
    pub fn plugin_name(&self) -> &str {
        &self.policy.name
    }

    /// "worker 'w-1' (plugin 'echo')": how errors name this worker.
    pub fn label(&self) -> String {
        format!(
            "worker '{}' (plugin '{}')",
            self.identity.id, self.policy.name
        )
    }

    /// The limits the worker obeys.
    pub fn limits(&self) -> &Limits {
        &self.policy.limits
    }

    /// What the worker may reach.
    pub fn grants(&self) -> &Grants {
        &self.policy.grants
    }

    /// The runtime's model provider and tools.
    pub fn services(&self) -> &HostServices {
        &self.services
    }

    /// Model tokens used so far.
    pub fn tokens(&self) -> u64 {
        self.tokens_used.load(Ordering::Relaxed)
    }

    /// Counts `tokens` more as used.
    pub fn add_tokens(&self, tokens: u64) {
        self.tokens_used.fetch_add(tokens, Ordering::Relaxed);
    }

    /// The token budget in force.
    pub fn token_budget(&self) -> u64 {
        self.token_budget
    }

    /// Tool calls made that the budget allowed.
    pub fn tool_calls_used(&self) -> u32 {
        self.tool_calls
            .load(Ordering::Relaxed)
            .min(self.tool_call_budget)
    }

    /// Takes one tool call from the budget; `Err(budget)` once it is spent.
    pub fn take_tool_call(&self) -> Result<(), u32> {
        if self.tool_calls.fetch_add(1, Ordering::Relaxed) >= self.tool_call_budget {
            self.mark_budget_limited();
            return Err(self.tool_call_budget);
        }
        Ok(())
    }

    /// Notes that a call was refused for a spent budget (the report's data says so).
    pub fn mark_budget_limited(&self) {
        self.budget_limited.store(true, Ordering::Relaxed);
    }

    /// Whether a call was refused for a spent budget.
    pub fn budget_limited(&self) -> bool {
        self.budget_limited.load(Ordering::Relaxed)
    }

    /// Files the guest's report (the last one wins).
    pub fn file_report(&self, report: ExplicitReport) {
        *self.report.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
    }

    /// Takes the guest's report, if it filed one.
    pub fn take_report(&self) -> Option<ExplicitReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Counts `count` injected messages as taken by the guest itself.
    pub fn note_taken(&self, count: u64) {
        self.taken.fetch_add(count, Ordering::AcqRel);
    }

    /// How many injected messages the guest took itself.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Acquire)
    }

    /// Routes the worker's `peers.send` messages through `router` (once).
    #[cfg(any(feature = "colony", feature = "nats"))]
    pub fn set_router(&self, router: Weak<dyn MessageRouter>) {
        let _ = self.router.set(router);
    }

    /// The router of `peers.send`, while its colony lives.
    pub fn router(&self) -> Option<Arc<dyn MessageRouter>> {
        self.router.get().and_then(Weak::upgrade)
    }

    /// An event from this worker, stamped now.
    pub fn event(&self, event_type: EventType, data: Value) -> AgentEvent {
        AgentEvent {
            event_type,
            stream_id: self.identity.stream_id.clone(),
            worker_id: self.identity.id.clone(),
            execution_id: self.identity.execution_id.clone(),
            data,
            timestamp: Utc::now(),
        }
    }

    /// Keeps this worker's events in `log` from now on, instead of its `events.jsonl`.
    /// False if it has one already.
    pub fn set_event_log(&self, log: Arc<dyn EventLog>) -> bool {
        self.event_log.set(log).is_ok()
    }

    /// Keeps this worker's conversation parts in `log` from now on (and in memory),
    /// instead of its folder. False if it has one already.
    pub fn set_conversation_log(&self, log: Arc<dyn ConversationLog>) -> bool {
        self.conversation_log.set(log).is_ok()
    }

    /// Where its conversation parts are kept besides memory, if not in its folder.
    pub fn conversation_log(&self) -> Option<&Arc<dyn ConversationLog>> {
        self.conversation_log.get()
    }

    /// Its folder, when its conversation parts are kept there.
    pub fn part_files(&self) -> Option<&WorkerStorage> {
        self.storage
            .as_ref()
            .filter(|_| self.conversation_log.get().is_none())
    }

    /// Publishes one event from this worker: to its event log, then to the bus.
    pub fn publish(&self, event_type: EventType, data: Value) {
        if self.bus.is_none() && self.storage.is_none() && self.event_log.get().is_none() {
            return;
        }
        self.send(self.event(event_type, data));
    }

    /// Its spans, if its run is traced.
    pub fn trace(&self) -> Option<&crate::telemetry::WorkerTrace> {
        self.trace.get()
    }

    /// Traces its run with `trace` (once).
    #[cfg(feature = "telemetry")]
    pub fn set_trace(&self, trace: crate::telemetry::WorkerTrace) {
        let _ = self.trace.set(trace);
    }

    /// Its recording, if it is recorded or replayed.
    pub fn tape(&self) -> Option<&Arc<crate::replay::Tape>> {
        self.tape.get()
    }

    /// Records (or replays) its host calls on `tape`. False if it has one already.
    #[cfg(feature = "colony")]
    pub fn set_tape(&self, tape: Arc<crate::replay::Tape>) -> bool {
        self.tape.set(tape).is_ok()
    }

    /// Publishes `event` as it is.
    pub fn send(&self, event: AgentEvent) {
        #[cfg(feature = "telemetry")]
        if let Some(trace) = self.trace.get() {
            trace.event(&event);
        }
        if self.storage.is_some() || self.event_log.get().is_some() {
            self.store_event(&event);
        }
        if let Some(bus) = &self.bus {
            bus.publish(event);
        }
    }

    /// Appends `event` to its event log (the journal's, else `events.jsonl`). The
    /// worker's lifecycle events are always stored; the others (its own events, logs,
    /// model text, turns) are charged to its event log quota, and once that is spent they
    /// are no longer stored (one line says so) though still published.
    fn store_event(&self, event: &AgentEvent) {
        let always = matches!(
            event.event_type,
            EventType::ExecutionStarted
                | EventType::ExecutionCompleted
                | EventType::ExecutionFailed
                | EventType::SubagentReport
        );
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!("{}: cannot encode an event: {e}", self.label());
                return;
            }
        };
        if !always {
            if self.events_capped.load(Ordering::Acquire) {
                return;
            }
            if let Err(e) = self
                .event_disk
                .charge(line.len() as u64 + 1, "an event in its event log")
            {
                if self.events_capped.swap(true, Ordering::AcqRel) {
                    return;
                }
                let notice = AgentEvent {
                    event_type: EventType::WorkerLog,
                    data: json!({"worker_id": self.id(), "level": "warn",
                        "message": format!("further events are not stored: {e}")}),
                    ..event.clone()
                };
                line = serde_json::to_vec(&notice).unwrap_or_default();
            }
        }
        if let Some(log) = self.event_log.get() {
            return log.append(self.id(), line);
        }
        line.push(b'\n');
        if let Some(storage) = &self.storage
            && let Err(e) = storage.append_event_line(&line)
        {
            tracing::warn!("{}: cannot append to events.jsonl: {e}", self.label());
        }
    }
}

impl OutputSink for WorkerContext {
    fn line(&self, stream: &'static str, level: &'static str, message: String) {
        self.publish(
            EventType::WorkerLog,
            json!({"worker_id": self.id(), "level": level, "stream": stream, "message": message}),
        );
    }
}

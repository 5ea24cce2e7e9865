//! Which events a subscription receives.

use std::collections::HashSet;

use super::{AgentEvent, EventType};

/// Selects events by type and by worker. An empty set of types or workers means "any".
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    types: HashSet<EventType>,
    workers: HashSet<String>,
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only events of these types (adds to any types already selected).
    pub fn types(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.types.extend(types);
        self
    }

    /// Only events published by these workers (adds to any already selected).
    pub fn workers<S: Into<String>>(mut self, workers: impl IntoIterator<Item = S>) -> Self {
        self.workers.extend(workers.into_iter().map(Into::into));
        self
    }

    /// Only events published by this worker (adds to any already selected).
    pub fn worker(self, worker: impl Into<String>) -> Self {
        self.workers([worker.into()])
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &AgentEvent) -> bool {
        (self.types.is_empty() || self.types.contains(&event.event_type))
            && (self.workers.is_empty() || self.workers.contains(&event.worker_id))
    }
}

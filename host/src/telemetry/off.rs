//! Tracing not built (no `telemetry` feature): the same API, with nothing to make — the
//! types have no values, so every call site compiles and none can run.

use std::sync::Arc;

use super::{TelemetryConfig, TelemetryError};
use crate::events::AgentEvent;
use crate::worker::WorkerResult;

/// A runtime's tracer; this build has none.
#[derive(Debug)]
pub enum Telemetry {}

impl Telemetry {
    /// `None`, or an error if `config` asks for traces.
    pub fn start(config: &TelemetryConfig) -> Result<Option<Arc<Self>>, TelemetryError> {
        if config.is_enabled() {
            return Err(TelemetryError::NotBuilt);
        }
        Ok(None)
    }

    /// Nothing to export.
    pub fn shutdown(&self) {
        match *self {}
    }

    pub(crate) fn colony_span(self: &Arc<Self>, _colony: &str) -> SpanHandle {
        match **self {}
    }

    pub(crate) fn worker(
        self: &Arc<Self>,
        _parent: Option<&str>,
        _agent: &super::AgentSpanInfo<'_>,
    ) -> WorkerTrace {
        match **self {}
    }
}

/// A colony's span; this build has none.
pub enum SpanHandle {}

impl SpanHandle {
    pub(crate) fn traceparent(&self) -> Option<String> {
        match *self {}
    }
}

/// One worker's spans; this build has none.
#[derive(Debug)]
pub enum WorkerTrace {}

impl WorkerTrace {
    pub(crate) fn begin_turn(&self, _turn: u64) {
        match *self {}
    }
    pub(crate) fn end_turn(&self, _error: Option<&str>) {
        match *self {}
    }
    pub(crate) fn event(&self, _event: &AgentEvent) {
        match *self {}
    }
    pub(crate) fn end(&self, _state: &str, _result: &WorkerResult) {
        match *self {}
    }
    pub(crate) fn chat(&self, _provider: &str, _model: &str) -> ChatSpan {
        match *self {}
    }
    pub(crate) fn tool(&self, _name: &str, _call_id: Option<&str>) -> ToolSpan {
        match *self {}
    }
}

/// One model call's span; this build has none.
pub(crate) enum ChatSpan {}

impl ChatSpan {
    pub fn request(&self, _messages: impl FnOnce() -> String) {
        match *self {}
    }
    pub fn retry(&self, _attempt: u32, _error: &str) {
        match *self {}
    }
    pub fn answered(&self, _input: u32, _output: u32, _finish: &str, _text: &str) {
        match *self {}
    }
    pub fn failed(&self, _kind: &str, _error: &str) {
        match *self {}
    }
}

/// One tool call's span; this build has none.
pub(crate) enum ToolSpan {}

impl ToolSpan {
    pub fn finish(&self, _outcome: Result<(), &str>) {
        match *self {}
    }
}

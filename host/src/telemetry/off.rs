//! Tracing not built (no `telemetry` feature): the same API, with nothing to make — the
//! types have no values, so every call site compiles and none can run.

// Which of these a build calls depends on its other features (a colony's span only
// with `colony`).
#![allow(dead_code)]

use std::sync::Arc;

use super::{TelemetryConfig, TelemetryError};
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
}

/// A colony's span; this build has none.
pub enum SpanHandle {}

impl SpanHandle {
    pub(crate) fn traceparent(&self) -> Option<String> {
        match *self {}
    }
    pub(crate) fn end(self) {
        match self {}
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
    pub(crate) fn end(&self, _state: &str, _result: &WorkerResult) {
        match *self {}
    }
}

/// One model call's span; this build has none.
pub(crate) enum ChatSpan {}

impl ChatSpan {
    pub fn retry(&self, _attempt: u32, _error: &str) {
        match *self {}
    }
}

//! Traces: OpenTelemetry spans for every worker run and persistent turn
//! (`invoke_agent`), model call (`chat {model}`) and tool call (`execute_tool {name}`),
//! following the OpenTelemetry GenAI semantic conventions, exported over OTLP/HTTP or
//! written to a file as OTLP JSON lines.
//!
//! Why in the host: every model answer, tool result and lifecycle step already passes
//! through it, so a plugin is traced whatever language it is written in, and it cannot
//! forge or suppress its spans. One trace per task tree: a colony's workers are children
//! of the colony's span, and the W3C trace context travels with a task to the node that
//! runs it, so a worker on another machine joins the same trace.
//!
//! Off by default, and then free: no span is made, nothing is allocated (a runtime
//! without telemetry holds `None`). On when the host config's `[telemetry]` names an
//! endpoint or a file, or `OTEL_EXPORTER_OTLP_ENDPOINT` (or `_TRACES_ENDPOINT`) is set;
//! `OTEL_SERVICE_NAME` names the service. Prompts and completions are never recorded
//! unless `capture_content` says so; guest events become span events, at most
//! [`MAX_SPAN_EVENTS`] per span.

#[cfg(feature = "telemetry")]
mod file;
#[cfg(not(feature = "telemetry"))]
mod off;
#[cfg(feature = "telemetry")]
mod otel;

use std::path::PathBuf;

use serde::Deserialize;

#[cfg(not(feature = "telemetry"))]
#[allow(unused_imports)] // which are used depends on the other features
pub(crate) use off::{ChatSpan, SpanHandle};
#[cfg(not(feature = "telemetry"))]
pub use off::{Telemetry, WorkerTrace};
#[cfg(feature = "telemetry")]
pub(crate) use otel::{ChatSpan, SpanHandle};
#[cfg(feature = "telemetry")]
pub use otel::{Telemetry, WorkerTrace};

/// The most events one span records (guest events, logs, lifecycle); later ones are
/// counted in `colony.events_dropped`.
pub const MAX_SPAN_EVENTS: u32 = 128;
/// The longest text a span attribute or event field keeps (summaries, errors, content).
pub const MAX_ATTRIBUTE_CHARS: usize = 1024;

/// Where traces go (the host config's `[telemetry]` table). Without an endpoint or a
/// file (and without the standard `OTEL_EXPORTER_OTLP_*ENDPOINT` variables) tracing is
/// off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// An OTLP/HTTP collector's base URL (`http://localhost:4318`; spans go to
    /// `/v1/traces`). Default: `OTEL_EXPORTER_OTLP_ENDPOINT`, if set.
    pub endpoint: Option<String>,
    /// The `service.name` of the spans. Default: `OTEL_SERVICE_NAME`, else `colony`.
    pub service_name: Option<String>,
    /// Also (or only) write spans to this file, one OTLP JSON `ExportTraceServiceRequest`
    /// per line, for people without a collector.
    pub file: Option<PathBuf>,
    /// Record prompts and completions on `chat` spans (`gen_ai.input.messages`,
    /// `gen_ai.output.messages`), cut at [`MAX_ATTRIBUTE_CHARS`]. Default false: they
    /// may hold anything a user or a tool said.
    pub capture_content: bool,
}

impl TelemetryConfig {
    /// The endpoint: the config's, else the standard variables'.
    fn endpoint_in_force(&self) -> Option<String> {
        self.endpoint.clone().or_else(|| {
            [
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ]
            .into_iter()
            .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
            .map(|_| String::new())
        })
    }

    /// Whether anything asks for traces (and `OTEL_SDK_DISABLED` does not forbid them).
    pub fn is_enabled(&self) -> bool {
        let disabled =
            std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        !disabled && (self.file.is_some() || self.endpoint_in_force().is_some())
    }
}

/// What a worker's `invoke_agent` span says about it.
#[cfg(feature = "telemetry")]
pub(crate) struct AgentSpanInfo<'a> {
    /// The plugin's name (`gen_ai.agent.name`).
    pub plugin: &'a str,
    /// The worker's id (`gen_ai.agent.id`).
    pub worker: &'a str,
    /// Its colony's id.
    pub colony: &'a str,
    /// The plugin component's sha256.
    pub sha256: &'a str,
    /// `ephemeral` or `persistent`.
    pub mode: &'a str,
}

/// Tracing could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (a bad endpoint, say).
    #[error("cannot export traces to {endpoint}: {reason}")]
    Exporter {
        /// The endpoint, or "the OTEL_EXPORTER_OTLP_* variables".
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The trace file could not be opened.
    #[error("cannot write traces to {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Built without the `telemetry` feature.
    #[error("traces are configured but this build has no `telemetry` feature")]
    NotBuilt,
}

/// Cuts `text` to [`MAX_ATTRIBUTE_CHARS`] characters.
#[cfg(feature = "telemetry")]
pub(crate) fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_ATTRIBUTE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

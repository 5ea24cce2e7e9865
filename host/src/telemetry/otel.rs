//! Tracing on: the OpenTelemetry SDK's tracer, and the spans of one worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::file::FileExporter;
use super::{AgentSpanInfo, MAX_SPAN_EVENTS, TelemetryConfig, TelemetryError, cut};
use crate::events::{AgentEvent, EventType};

/// Attribute names of the GenAI semantic conventions (defined here: the conventions'
/// crate keeps them experimental) and Colony's own.
mod attr {
    pub const OPERATION: &str = "gen_ai.operation.name";
    pub const AGENT_NAME: &str = "gen_ai.agent.name";
    pub const AGENT_ID: &str = "gen_ai.agent.id";
    pub const PROVIDER: &str = "gen_ai.provider.name";
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    pub const INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    pub const OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    pub const FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
    pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
    pub const ERROR_TYPE: &str = "error.type";
    pub const COLONY_ID: &str = "colony.id";
    pub const PLUGIN_SHA256: &str = "colony.plugin.sha256";
    pub const WORKER_MODE: &str = "colony.worker.mode";
    pub const TURN: &str = "colony.turn";
    pub const STATE: &str = "colony.worker.state";
    pub const REPORT_STATUS: &str = "colony.report.status";
    pub const TOKENS_USED: &str = "colony.tokens_used";
    pub const TOOL_CALLS_USED: &str = "colony.tool_calls_used";
    pub const EVENTS_DROPPED: &str = "colony.events_dropped";
}

/// A runtime's tracer: where its spans go.
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    capture_content: bool,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("capture_content", &self.capture_content)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Starts exporting as `config` says, or `None` if it asks for nothing. Spans are
    /// batched and exported by a thread of the SDK's, not on the host's runtime.
    pub fn start(config: &TelemetryConfig) -> Result<Option<Arc<Self>>, TelemetryError> {
        if !config.is_enabled() {
            return Ok(None);
        }
        let mut resource = opentelemetry_sdk::Resource::builder();
        if let Some(name) = &config.service_name {
            resource = resource.with_service_name(name.clone());
        } else if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("colony");
        }
        let mut provider = SdkTracerProvider::builder().with_resource(resource.build());
        if let Some(endpoint) = config.endpoint_in_force() {
            crate::crypto::install();
            let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
            // Empty: the standard variables name it (the exporter reads them).
            if !endpoint.is_empty() {
                exporter =
                    exporter.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
            }
            let exporter = exporter.build().map_err(|e| TelemetryError::Exporter {
                endpoint: if endpoint.is_empty() {
                    "the OTEL_EXPORTER_OTLP_* variables".into()
                } else {
                    endpoint.clone()
                },
                reason: e.to_string(),
            })?;
            provider = provider.with_batch_exporter(exporter);
        }
        if let Some(path) = &config.file {
            provider = provider.with_batch_exporter(FileExporter::create(path)?);
        }
        let provider = provider.build();
        let tracer = provider.tracer("colony");
        Ok(Some(Arc::new(Self {
            provider,
            tracer,
            capture_content: config.capture_content,
        })))
    }

    /// Exports every span ended so far and stops (call once, before the process ends;
    /// blocks for the export: run it off the async threads).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!("cannot export the last spans: {e}");
        }
        let _ = self.provider.shutdown();
    }

    /// A span of a colony (the parent of its workers), started now.
    pub(crate) fn colony_span(self: &Arc<Self>, colony: &str) -> SpanHandle {
        let span = self
            .tracer
            .span_builder(format!("invoke_agent {colony}"))
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new(attr::OPERATION, "invoke_agent"),
                KeyValue::new(attr::AGENT_NAME, "colony"),
                KeyValue::new(attr::AGENT_ID, colony.to_owned()),
                KeyValue::new(attr::COLONY_ID, colony.to_owned()),
            ])
            .start_with_context(&self.tracer, &Context::new());
        SpanHandle {
            cx: Context::new().with_span(span),
        }
    }

    /// The spans of one worker run, its `invoke_agent` span started now under
    /// `parent` (a W3C `traceparent`; none: a trace of its own).
    pub(crate) fn worker(
        self: &Arc<Self>,
        parent: Option<&str>,
        agent: &AgentSpanInfo<'_>,
    ) -> WorkerTrace {
        let parent = parent.map(extract).unwrap_or_default();
        let span = self
            .tracer
            .span_builder(format!("invoke_agent {}", agent.plugin))
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new(attr::OPERATION, "invoke_agent"),
                KeyValue::new(attr::AGENT_NAME, agent.plugin.to_owned()),
                KeyValue::new(attr::AGENT_ID, agent.worker.to_owned()),
                KeyValue::new(attr::COLONY_ID, agent.colony.to_owned()),
                KeyValue::new(attr::PLUGIN_SHA256, agent.sha256.to_owned()),
                KeyValue::new(attr::WORKER_MODE, agent.mode.to_owned()),
            ])
            .start_with_context(&self.tracer, &parent);
        let run = Context::new().with_span(span);
        WorkerTrace {
            telemetry: self.clone(),
            plugin: agent.plugin.to_owned(),
            worker: agent.worker.to_owned(),
            current: Mutex::new(run.clone()),
            run,
            events: AtomicU32::new(0),
        }
    }
}

/// A span that ends when this is dropped (a colony's).
pub(crate) struct SpanHandle {
    cx: Context,
}

impl SpanHandle {
    /// Its W3C `traceparent`, for children (here or on another machine).
    pub(crate) fn traceparent(&self) -> Option<String> {
        inject(&self.cx)
    }

    /// Ends it now.
    pub(crate) fn end(self) {
        drop(self);
    }
}

impl Drop for SpanHandle {
    fn drop(&mut self) {
        self.cx.span().end();
    }
}

/// A context's `traceparent` header value.
fn inject(cx: &Context) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The remote parent a `traceparent` names (an invalid one: none).
fn extract(traceparent: &str) -> Context {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    TraceContextPropagator::new().extract(&carrier)
}

/// One worker's spans: its run, the turn it is serving, and the calls in them.
pub struct WorkerTrace {
    telemetry: Arc<Telemetry>,
    plugin: String,
    worker: String,
    /// The run's `invoke_agent` span.
    run: Context,
    /// Where model and tool calls go: the turn being served, else the run.
    current: Mutex<Context>,
    /// Events recorded on the current span.
    events: AtomicU32,
}

impl std::fmt::Debug for WorkerTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerTrace")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl WorkerTrace {
    fn current(&self) -> Context {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The run's `traceparent` (for workers it starts).
    pub fn traceparent(&self) -> Option<String> {
        inject(&self.run)
    }

    /// Starts persistent turn `turn`: a child `invoke_agent` span of the run.
    pub(crate) fn begin_turn(&self, turn: u64) {
        let tracer = &self.telemetry.tracer;
        let span = tracer
            .span_builder(format!("invoke_agent {}", self.plugin))
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new(attr::OPERATION, "invoke_agent"),
                KeyValue::new(attr::AGENT_NAME, self.plugin.clone()),
                KeyValue::new(attr::AGENT_ID, self.worker.clone()),
                KeyValue::new(attr::TURN, i64::try_from(turn).unwrap_or(i64::MAX)),
            ])
            .start_with_context(tracer, &self.run);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Context::new().with_span(span);
        self.events.store(0, Ordering::Relaxed);
    }

    /// Ends the turn begun last (`error`: why it failed).
    pub(crate) fn end_turn(&self, error: Option<&str>) {
        let turn = std::mem::replace(
            &mut *self.current.lock().unwrap_or_else(|e| e.into_inner()),
            self.run.clone(),
        );
        finish(&turn, error, &self.events);
        self.events.store(0, Ordering::Relaxed);
    }

    /// Records `event` on the current span (at most [`MAX_SPAN_EVENTS`]; streamed model
    /// text never: it is content, and it comes in thousands of pieces).
    pub(crate) fn event(&self, event: &AgentEvent) {
        if event.event_type == EventType::LlmTextDelta {
            return;
        }
        if self.events.fetch_add(1, Ordering::Relaxed) >= MAX_SPAN_EVENTS {
            return;
        }
        let mut attributes = Vec::new();
        if let serde_json::Value::Object(fields) = &event.data {
            for (key, value) in fields.iter().take(16) {
                if key == "worker_id" || key == "colony_id" {
                    continue;
                }
                let value = match value {
                    serde_json::Value::String(s) => Value::from(cut(s)),
                    serde_json::Value::Bool(b) => Value::from(*b),
                    serde_json::Value::Number(n) if n.is_i64() => {
                        Value::from(n.as_i64().unwrap_or_default())
                    }
                    serde_json::Value::Number(n) => Value::from(n.as_f64().unwrap_or_default()),
                    other => Value::from(cut(&other.to_string())),
                };
                attributes.push(KeyValue::new(format!("colony.{key}"), value));
            }
        }
        self.current()
            .span()
            .add_event(event.event_type.as_str().to_owned(), attributes);
    }

    /// Ends the run: its end state, what it spent, its report's status.
    pub(crate) fn end(&self, state: &str, result: &crate::worker::WorkerResult) {
        let span = self.run.span();
        span.set_attributes([
            KeyValue::new(attr::STATE, state.to_owned()),
            KeyValue::new(attr::REPORT_STATUS, result.status.to_string()),
            KeyValue::new(
                attr::TOKENS_USED,
                i64::try_from(result.tokens_used).unwrap_or(i64::MAX),
            ),
            KeyValue::new(attr::TOOL_CALLS_USED, i64::from(result.tool_calls_used)),
        ]);
        finish(
            &self.run,
            result.error.as_deref().filter(|_| state != "completed"),
            &self.events,
        );
    }

    /// A `chat {model}` span for one model call, child of the current span.
    pub(crate) fn chat(&self, provider: &str, model: &str) -> ChatSpan {
        let tracer = &self.telemetry.tracer;
        let span = tracer
            .span_builder(format!("chat {model}"))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new(attr::OPERATION, "chat"),
                KeyValue::new(attr::PROVIDER, provider.to_owned()),
                KeyValue::new(attr::REQUEST_MODEL, model.to_owned()),
            ])
            .start_with_context(tracer, &self.current());
        ChatSpan {
            cx: Context::new().with_span(span),
            capture_content: self.telemetry.capture_content,
        }
    }

    /// An `execute_tool {name}` span for one tool call, child of the current span.
    pub(crate) fn tool(&self, name: &str, call_id: Option<&str>) -> ToolSpan {
        let tracer = &self.telemetry.tracer;
        let mut attributes = vec![
            KeyValue::new(attr::OPERATION, "execute_tool"),
            KeyValue::new(attr::TOOL_NAME, name.to_owned()),
        ];
        if let Some(id) = call_id {
            attributes.push(KeyValue::new(attr::TOOL_CALL_ID, id.to_owned()));
        }
        let span = tracer
            .span_builder(format!("execute_tool {name}"))
            .with_kind(SpanKind::Internal)
            .with_attributes(attributes)
            .start_with_context(tracer, &self.current());
        ToolSpan {
            cx: Context::new().with_span(span),
        }
    }
}

/// Ends the span of `cx`: an error status if `error`, and how many events it dropped.
fn finish(cx: &Context, error: Option<&str>, events: &AtomicU32) {
    let span = cx.span();
    let dropped = events
        .load(Ordering::Relaxed)
        .saturating_sub(MAX_SPAN_EVENTS);
    if dropped > 0 {
        span.set_attribute(KeyValue::new(attr::EVENTS_DROPPED, i64::from(dropped)));
    }
    if let Some(error) = error {
        span.set_attribute(KeyValue::new(attr::ERROR_TYPE, "worker_error"));
        span.set_status(Status::error(cut(error)));
    }
    span.end();
}

/// One model call's span.
pub(crate) struct ChatSpan {
    cx: Context,
    capture_content: bool,
}

impl ChatSpan {
    /// The request's messages, if content is captured.
    pub fn request(&self, messages: impl FnOnce() -> String) {
        if self.capture_content {
            self.cx
                .span()
                .set_attribute(KeyValue::new(attr::INPUT_MESSAGES, cut(&messages())));
        }
    }

    /// A retry after a failed attempt (an event on the span).
    pub fn retry(&self, attempt: u32, error: &str) {
        self.cx.span().add_event(
            "retry",
            vec![
                KeyValue::new("colony.attempt", i64::from(attempt)),
                KeyValue::new(attr::ERROR_TYPE, cut(error)),
            ],
        );
    }

    /// The answer: tokens, why it stopped, and (if captured) its text.
    pub fn answered(&self, input_tokens: u32, output_tokens: u32, finish: &str, text: &str) {
        let span = self.cx.span();
        span.set_attributes([
            KeyValue::new(attr::INPUT_TOKENS, i64::from(input_tokens)),
            KeyValue::new(attr::OUTPUT_TOKENS, i64::from(output_tokens)),
            KeyValue::new(
                attr::FINISH_REASONS,
                Value::Array(vec![opentelemetry::StringValue::from(finish.to_owned())].into()),
            ),
        ]);
        if self.capture_content {
            span.set_attribute(KeyValue::new(attr::OUTPUT_MESSAGES, cut(text)));
        }
        span.end();
    }

    /// The call failed: `kind` (timeout, unavailable, …) and why.
    pub fn failed(&self, kind: &str, error: &str) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(attr::ERROR_TYPE, kind.to_owned()));
        span.set_status(Status::error(cut(error)));
        span.end();
    }
}

/// One tool call's span.
pub(crate) struct ToolSpan {
    cx: Context,
}

impl ToolSpan {
    /// Ends it: `Err(why)` marks it failed.
    pub fn finish(&self, outcome: Result<(), &str>) {
        let span = self.cx.span();
        if let Err(error) = outcome {
            span.set_attribute(KeyValue::new(attr::ERROR_TYPE, "tool_error"));
            span.set_status(Status::error(cut(error)));
        }
        span.end();
    }
}

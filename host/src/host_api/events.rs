//! `colony:agent/events`: guest progress events and log lines.

use serde_json::json;

use super::{HostState, too_large};
use crate::bindings::LogLevel;
use crate::bindings::colony::agent::events;
use crate::events::EventType;

/// Longest guest event type name.
const MAX_EVENT_TYPE_LEN: usize = 64;

fn check_event_type(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_EVENT_TYPE_LEN {
        return Err(format!(
            "event type must be 1 to {MAX_EVENT_TYPE_LEN} characters, got {}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "event type '{name}' has a character outside [A-Za-z0-9_.-]: {bad:?}"
        ));
    }
    if let Some(reserved) = EventType::built_in(name) {
        return Err(format!(
            "event type '{name}' is reserved for the host ({reserved})"
        ));
    }
    Ok(())
}

impl events::Host for HostState {
    fn emit(&mut self, event_type: String, data: String) -> wasmtime::Result<Result<(), String>> {
        self.charge_event()?;
        if let Err(e) = check_event_type(&event_type) {
            return Ok(Err(e));
        }
        let limit = self.worker.limits().max_event_data_bytes;
        if data.len() > limit {
            return Ok(Err(too_large("event data", data.len(), limit)));
        }
        let data = match self.parse_guest_json("event data", &data) {
            Ok(value) => value,
            Err(e) => return Ok(Err(e)),
        };
        self.worker.publish(EventType::Custom(event_type), data);
        Ok(Ok(()))
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.charge_event()?;
        let limit = self.worker.limits().max_log_line_bytes;
        let message = crate::text::truncated(message, limit);
        let worker = self.worker.id();
        let level_name = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        match level {
            LogLevel::Trace => tracing::trace!(target: "colony_guest", worker, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "colony_guest", worker, "{message}"),
            LogLevel::Info => tracing::info!(target: "colony_guest", worker, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "colony_guest", worker, "{message}"),
            LogLevel::Error => tracing::error!(target: "colony_guest", worker, "{message}"),
        }
        self.worker.publish(
            EventType::WorkerLog,
            json!({"worker_id": worker, "level": level_name, "message": message}),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check_event_type;

    #[test]
    fn event_types_are_checked() {
        assert!(check_event_type("progress").is_ok());
        assert!(check_event_type("tool.started-1").is_ok());
        assert!(check_event_type("").is_err());
        assert!(check_event_type("has space").is_err());
        assert!(check_event_type(&"x".repeat(65)).is_err());
        let err = check_event_type("subagent_report").unwrap_err();
        assert!(err.contains("reserved"), "{err}");
    }
}

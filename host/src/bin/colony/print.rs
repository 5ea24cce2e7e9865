//! How the CLI prints events: one aligned line per event with its key fields, or one
//! JSON line per event with `--json`.

use std::time::Instant;

use colony::{AgentEvent, EventType};
use serde_json::Value;

/// Prints events relative to a start instant.
pub(crate) struct EventPrinter {
    /// Print times relative to this instant; `None`: print each event's own clock time.
    start: Option<Instant>,
    json: bool,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}…")
    }
}

impl EventPrinter {
    /// Live events, timed from now.
    pub(crate) fn new(json: bool) -> Self {
        Self {
            start: Some(Instant::now()),
            json,
        }
    }

    /// Stored events, with their own timestamps.
    pub(crate) fn stored(json: bool) -> Self {
        Self { start: None, json }
    }

    /// The key fields of an event, as `name=value` pairs.
    fn fields(event: &AgentEvent) -> String {
        let d = &event.data;
        match &event.event_type {
            EventType::ExecutionStarted => format!(
                "task={:?} persistent={}",
                shorten(&text(&d["task"]), 60),
                d["persistent"]
            ),
            EventType::ExecutionCompleted | EventType::ExecutionFailed => format!(
                "success={} error={} output_keys={}",
                d["success"],
                text(&d["error"]),
                d["output_keys"]
            ),
            EventType::SubagentReport => format!(
                "status={} summary={:?} duration={:.3}s",
                text(&d["status"]),
                shorten(&text(&d["summary"]), 90),
                d["duration_seconds"].as_f64().unwrap_or(0.0)
            ),
            EventType::TurnCompleted => format!(
                "turn={} message={:?} reply={:?}",
                d["turn"],
                shorten(&text(&d["message"]), 50),
                shorten(&text(d["output"].get("reply").unwrap_or(&d["output"])), 80)
            ),
            EventType::TurnFailed => format!("turn={} error={}", d["turn"], text(&d["error"])),
            EventType::LlmTextDelta => format!("{:?}", text(&d["delta"])),
            EventType::WorkerLog => format!("{}: {}", text(&d["level"]), text(&d["message"])),
            EventType::Custom(_) => shorten(&d.to_string(), 100),
        }
    }

    pub(crate) fn print(&self, event: &AgentEvent) {
        if self.json {
            match serde_json::to_string(event) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("colony: cannot encode an event: {e}"),
            }
            return;
        }
        let when = match self.start {
            Some(start) => format!("+{:>7.3}s", start.elapsed().as_secs_f64()),
            None => event.timestamp.format("%H:%M:%S%.3f").to_string(),
        };
        println!(
            "{when}  {:<20} {:<10} {}",
            event.event_type.as_str(),
            event.node_id,
            Self::fields(event)
        );
    }
}

//! How the CLI prints: events as one aligned line each with their key fields, or one
//! JSON line each with `--json`; every other text line through [`say!`]; logs through
//! [`InertStderr`].
//!
//! Text output is inert: summaries, errors, log lines, tasks and model text come from
//! guests, models and the network, so every text line passes through
//! [`colony::text::inert`], which escapes control characters (ESC, CR, LF, …) — a guest
//! cannot move the cursor, retitle the window, write the clipboard or forge a line.
//! `--json` output is exact JSON (its encoding escapes control characters itself).

/// `println!` for text output: the formatted line with its control characters escaped.
macro_rules! say {
    () => {
        $crate::print::line("")
    };
    ($($arg:tt)*) => {
        $crate::print::line(&colony::text::inert(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// Writes `text` and a newline to stdout. A closed stdout (`colony ps | head -1`, a node
/// whose log reader went away) is not an error worth dying for: the line is dropped.
pub(crate) fn line(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Standard error for log records, with control characters escaped in each record (its
/// closing newline kept): a guest's text in a log record stays on its line.
pub(crate) struct InertStderr;

impl std::io::Write for InertStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (text.as_ref(), ""),
        };
        let line = format!("{}{newline}", colony::text::inert(body));
        std::io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

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
            match colony::text::json_line(event) {
                Ok(line) => self::line(&line),
                Err(e) => eprintln!("colony: cannot encode an event: {e}"),
            }
            return;
        }
        let when = match self.start {
            Some(start) => format!("+{:>7.3}s", start.elapsed().as_secs_f64()),
            None => event.timestamp.format("%H:%M:%S%.3f").to_string(),
        };
        say!(
            "{when}  {:<20} {:<10} {}",
            event.event_type.as_str(),
            event.worker_id,
            Self::fields(event)
        );
    }
}

//! One event on the bus and its type.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The type of an [`AgentEvent`].
///
/// The host's own types are variants; a guest's `emit` publishes a [`EventType::Custom`]
/// whose name may not collide with them (so a guest cannot forge a report).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A worker began executing (`run` is about to be called).
    ExecutionStarted,
    /// `run` returned `ok`.
    ExecutionCompleted,
    /// `run` returned `err`.
    ExecutionFailed,
    /// The structured report a worker hands its parent; always published when a worker
    /// ends, and after each persistent turn in which the guest filed a report.
    SubagentReport,
    /// A persistent worker's `on-message` returned `ok`.
    TurnCompleted,
    /// A persistent worker's `on-message` returned `err` (the worker goes on).
    TurnFailed,
    /// A guest `log` line.
    WorkerLog,
    /// Text streaming in from a model call.
    LlmTextDelta,
    /// A guest-defined progress event (`events.emit`).
    Custom(String),
}

impl EventType {
    const BUILT_IN: [(EventType, &'static str); 8] = [
        (EventType::ExecutionStarted, "EXECUTION_STARTED"),
        (EventType::ExecutionCompleted, "EXECUTION_COMPLETED"),
        (EventType::ExecutionFailed, "EXECUTION_FAILED"),
        (EventType::SubagentReport, "SUBAGENT_REPORT"),
        (EventType::TurnCompleted, "TURN_COMPLETED"),
        (EventType::TurnFailed, "TURN_FAILED"),
        (EventType::WorkerLog, "WORKER_LOG"),
        (EventType::LlmTextDelta, "LLM_TEXT_DELTA"),
    ];

    /// The wire name: `SUBAGENT_REPORT`, …, or the custom name as given.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Custom(name) => name,
            built_in => {
                Self::BUILT_IN
                    .iter()
                    .find(|(t, _)| t == built_in)
                    .expect("every built-in type has a name")
                    .1
            }
        }
    }

    /// The built-in type whose name matches `name` ignoring case, if any.
    pub fn built_in(name: &str) -> Option<EventType> {
        Self::BUILT_IN
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(t, _)| t.clone())
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::built_in(s).unwrap_or_else(|| EventType::Custom(s.to_owned())))
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(name.parse().expect("infallible"))
    }
}

/// One event, with the envelope of the reference framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The stream (execution context) the event belongs to.
    pub stream_id: String,
    /// The worker that published it. Serialized as `node_id`, the reference framework's
    /// name for it (in Colony a *node* is a machine running workers, `colony node`).
    #[serde(rename = "node_id")]
    pub worker_id: String,
    /// The execution it belongs to.
    pub execution_id: String,
    /// The payload: a JSON object whose fields depend on the type.
    pub data: Value,
    /// When it was published.
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub timestamp: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publishing_worker_is_node_id_on_the_wire_as_in_the_reference() {
        let event = AgentEvent {
            event_type: EventType::WorkerLog,
            stream_id: "s".into(),
            worker_id: "w-1".into(),
            execution_id: "e".into(),
            data: Value::Null,
            timestamp: Utc::now(),
        };
        let wire = serde_json::to_value(&event).unwrap();
        assert_eq!(wire["node_id"], "w-1");
        assert!(wire.get("worker_id").is_none());
        let back: AgentEvent = serde_json::from_value(wire).unwrap();
        assert_eq!(back.worker_id, "w-1");
    }

    #[test]
    fn names_round_trip() {
        for (t, name) in EventType::BUILT_IN {
            assert_eq!(t.as_str(), name);
            assert_eq!(name.parse::<EventType>().unwrap(), t);
        }
        assert_eq!(
            "progress".parse::<EventType>().unwrap(),
            EventType::Custom("progress".into())
        );
        assert_eq!(
            EventType::built_in("subagent_report"),
            Some(EventType::SubagentReport)
        );
    }
}

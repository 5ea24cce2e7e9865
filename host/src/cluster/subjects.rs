//! Every NATS name Colony uses, in one place.
//!
//! ```text
//! colony.<colony>.tasks.<sha256>        work queue (stream COLONY_TASKS), one task per message
//! colony.<colony>.reports.<worker>      reports (stream COLONY_REPORTS), message id = worker id
//! colony.<colony>.events.<TYPE>.<worker> every event of a remote worker (core NATS)
//! colony.<colony>.control.<worker>      stop / inject requests to whoever runs the worker
//! ```
//!
//! Tasks carry the plugin's sha256 in their subject so that each node's consumer only
//! ever receives tasks for plugins it holds: one durable consumer per plugin hash, shared
//! by every node that serves it (JetStream balances between them).

use super::ClusterError;

/// The work-queue stream of tasks.
pub const TASKS_STREAM: &str = "COLONY_TASKS";
/// The stream of reports.
pub const REPORTS_STREAM: &str = "COLONY_REPORTS";

/// Checks that `value` can be one subject token (colony ids, worker ids).
pub fn check_token(what: &'static str, value: &str) -> Result<(), ClusterError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ClusterError::InvalidToken {
            what,
            value: value.to_owned(),
        })
    }
}

/// Where tasks of `colony` for the plugin `sha256` are queued.
pub fn task(colony: &str, sha256: &str) -> String {
    format!("colony.{colony}.tasks.{sha256}")
}

/// Every task of every colony for the plugin `sha256` (a node consumer's filter).
pub fn tasks_for_plugin(sha256: &str) -> String {
    format!("colony.*.tasks.{sha256}")
}

/// The durable consumer shared by every node serving the plugin `sha256`.
pub fn plugin_consumer(sha256: &str) -> String {
    format!("plugin-{sha256}")
}

/// Where `worker`'s report is stored.
pub fn report(colony: &str, worker: &str) -> String {
    format!("colony.{colony}.reports.{worker}")
}

/// Every report of `colony`.
pub fn reports(colony: &str) -> String {
    format!("colony.{colony}.reports.*")
}

/// Where an event of `event_type` from `worker` is published. Characters a subject
/// token cannot hold become `_`.
pub fn event(colony: &str, event_type: &str, worker: &str) -> String {
    let token: String = event_type
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("colony.{colony}.events.{token}.{worker}")
}

/// Every event of `colony`.
pub fn events(colony: &str) -> String {
    format!("colony.{colony}.events.>")
}

/// The "worker" name of the colony's own control subject: peer messages from workers on
/// nodes, and injects into the overseer (which always runs in the colony's process).
pub const COLONY_CONTROL: &str = "overseer";

/// Where stop and inject requests for `worker` go.
pub fn control(colony: &str, worker: &str) -> String {
    format!("colony.{colony}.control.{worker}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_event_types_sanitised() {
        assert!(check_token("colony id", "demo-1_a").is_ok());
        for bad in ["", "a.b", "a b", "*", ">"] {
            assert!(check_token("colony id", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            event("c", "my.event type", "w-1"),
            "colony.c.events.my_event_type.w-1"
        );
    }
}

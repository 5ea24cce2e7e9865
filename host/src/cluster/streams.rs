//! The colony's two JetStream streams — what they hold, with which settings — and a
//! set-up that converges when many colonies and nodes start at the same instant.
//!
//! Why not `get_or_create_stream`: two processes that both find a stream missing both
//! create it, and the second is refused (the server answers "subjects overlap" or "name
//! already in use" while the first creation settles). Every colony and node ensures the
//! streams on connect, so a cluster started all at once hit that. Here a refused
//! creation is followed by a fresh look: whoever created it, the stream now exists and is
//! checked like any existing one. A stream that exists with settings Colony does not
//! expect (made by hand, by an older version, with another replica count) is a clear
//! error listing each difference, never silently used.

use std::time::Duration;

use async_nats::jetstream::consumer::{PullConsumer, pull};
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream;
use async_nats::jetstream::{self as js, ErrorCode};

use super::{ClusterError, REPORT_DUPLICATE_WINDOW, REPORT_MAX_AGE, subjects};

/// How many times a set-up looks again after a refused creation: each refusal means
/// another process created the object in between, so two tries nearly always suffice.
const SETUP_ATTEMPTS: u32 = 8;
/// The pause before looking again, grown with each attempt.
const SETUP_BACKOFF: Duration = Duration::from_millis(25);

/// How the streams are stored across a JetStream cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamSettings {
    /// Copies of each stream across the cluster's servers (1, 3 or 5; at most the
    /// number of servers). `None`: the streams are created with one copy, and existing
    /// ones are used whatever their count; `Some(n)`: created with `n`, and existing
    /// ones must have `n`.
    pub replicas: Option<usize>,
}

impl StreamSettings {
    fn replicas(self) -> usize {
        self.replicas.unwrap_or(1)
    }
}

/// The work queue of tasks, one subject per colony and plugin.
pub(crate) fn task_stream(settings: StreamSettings) -> stream::Config {
    stream::Config {
        name: subjects::TASKS_STREAM.to_owned(),
        subjects: vec!["colony.*.tasks.*".to_owned()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas(),
        ..Default::default()
    }
}

/// The reports, one subject per colony and worker, deduplicated by worker id.
pub(crate) fn report_stream(settings: StreamSettings) -> stream::Config {
    stream::Config {
        name: subjects::REPORTS_STREAM.to_owned(),
        subjects: vec!["colony.*.reports.*".to_owned()],
        storage: stream::StorageType::File,
        duplicate_window: REPORT_DUPLICATE_WINDOW,
        max_age: REPORT_MAX_AGE,
        num_replicas: settings.replicas(),
        ..Default::default()
    }
}

/// Makes sure the stream `wanted` describes exists with its settings: created if
/// missing (by this process or a concurrent one), checked if present.
pub(crate) async fn ensure_stream(
    js: &js::Context,
    wanted: stream::Config,
    settings: StreamSettings,
) -> Result<stream::Stream, ClusterError> {
    let what = format!("set up stream {}", wanted.name);
    let mut refused = None;
    for attempt in 0..SETUP_ATTEMPTS {
        match js.get_stream(&wanted.name).await {
            Ok(existing) => {
                check(&existing.cached_info().config, &wanted, settings)?;
                return Ok(existing);
            }
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(ClusterError::js(&what, e)),
        }
        match js.create_stream(wanted.clone()).await {
            Ok(created) => return Ok(created),
            // Most likely created meanwhile by another process: look again.
            Err(e) => refused = Some(e),
        }
        tokio::time::sleep(SETUP_BACKOFF * (attempt + 1)).await;
    }
    Err(ClusterError::js(
        what,
        refused.map_or_else(String::new, |e| e.to_string()),
    ))
}

fn not_found(error: &async_nats::error::Error<GetStreamErrorKind>) -> bool {
    matches!(error.kind(), GetStreamErrorKind::JetStream(e)
        if e.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// `Err` listing how `existing` differs from `wanted` in what Colony relies on.
fn check(
    existing: &stream::Config,
    wanted: &stream::Config,
    settings: StreamSettings,
) -> Result<(), ClusterError> {
    let shown = |value: &dyn std::fmt::Debug| format!("{value:?}");
    let mut fields = vec![
        (
            "subjects",
            shown(&existing.subjects),
            shown(&wanted.subjects),
        ),
        (
            "retention",
            shown(&existing.retention),
            shown(&wanted.retention),
        ),
        ("storage", shown(&existing.storage), shown(&wanted.storage)),
        ("max age", shown(&existing.max_age), shown(&wanted.max_age)),
    ];
    // Zero: the server's default, which it fills in.
    if !wanted.duplicate_window.is_zero() {
        fields.push((
            "duplicate window",
            shown(&existing.duplicate_window),
            shown(&wanted.duplicate_window),
        ));
    }
    if settings.replicas.is_some() {
        fields.push((
            "replicas",
            existing.num_replicas.max(1).to_string(),
            wanted.num_replicas.to_string(),
        ));
    }
    let differences: Vec<String> = fields
        .into_iter()
        .filter(|(_, has, wants)| has != wants)
        .map(|(field, has, wants)| format!("{field} is {has}, Colony needs {wants}"))
        .collect();
    if differences.is_empty() {
        return Ok(());
    }
    Err(ClusterError::StreamMismatch {
        stream: wanted.name.clone(),
        differences: differences.join("; "),
    })
}

/// The durable consumer `name` of `stream`: created with `config` if missing (by this
/// process or a concurrent one), else the existing one as it is (whose settings, such
/// as the ack wait, the first creator chose).
pub(crate) async fn ensure_consumer(
    stream: &stream::Stream,
    name: &str,
    config: pull::Config,
) -> Result<PullConsumer, ClusterError> {
    let mut refused = None;
    for attempt in 0..SETUP_ATTEMPTS {
        // A refused creation means another process created it meanwhile: the next
        // attempt finds it.
        match stream.get_or_create_consumer(name, config.clone()).await {
            Ok(consumer) => return Ok(consumer),
            Err(e) => refused = Some(e),
        }
        tokio::time::sleep(SETUP_BACKOFF * (attempt + 1)).await;
    }
    Err(ClusterError::js(
        format!("set up consumer {name}"),
        refused.map_or_else(String::new, |e| e.to_string()),
    ))
}

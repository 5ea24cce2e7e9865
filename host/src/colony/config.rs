//! [`ColonyConfig`]: a colony's orchestration settings, with the reference's defaults.

use std::path::PathBuf;
use std::time::Duration;

use crate::journal::JournalSync;
use crate::replay::DEFAULT_MAX_RECORDING_BYTES;

/// How a [`Colony`](super::Colony) runs its workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColonyConfig {
    /// The colony's id (the `colony_id` of its workers and events).
    pub id: String,
    /// The home folder: `journal.db` and `workers/{id}/` for each worker's files.
    pub home: PathBuf,
    /// Guests running at once; the other workers wait `queued`. A slot is free as soon as
    /// its guest is gone (instance and memory released), while its report may still be
    /// on its way to the journal. Default 4, as in the reference.
    pub max_concurrent_workers: usize,
    /// Most tasks one `run_parallel` call accepts. Default 8, as in the reference.
    pub max_batch: usize,
    /// After this long a running worker gets a "[SOFT TIMEOUT] …" message. Default 600 s.
    pub soft_timeout: Duration,
    /// After this long a running worker is stopped. Default (as in the reference)
    /// `max(4 × soft, soft + 600 s)`, at most 3,600 s and at least soft + 60 s.
    pub hard_timeout: Option<Duration>,
    /// A NATS server (or comma-separated cluster) to run the fanned-out workers on
    /// `colony node`s instead of in this process. Default none. Open such a colony with
    /// [`Colony::connect`](super::Colony::connect).
    pub nats: Option<String>,
    /// With `nats`: copies of the task and report streams across a JetStream cluster
    /// (1, 3 or 5). Default none: streams are created with one copy and existing ones
    /// used as they are; a number is required of existing ones too.
    pub nats_replicas: Option<usize>,
    /// When the journal's commits reach the disk. Default [`JournalSync::Os`]: a crash
    /// of the process loses nothing committed, a power loss may lose the last batches.
    pub journal_sync: JournalSync,
    /// Record what each in-process worker's host calls were answered (model, tools,
    /// inbox, peers, turns) in the journal, so the run can be replayed, forked or
    /// exported ([`crate::replay`]). Default on. Workers on NATS nodes are not recorded.
    pub record: bool,
    /// The bound of one worker's recording, in bytes; past it the recording is cut (a
    /// replay stops there). Default [`DEFAULT_MAX_RECORDING_BYTES`] (16 MiB).
    pub max_recording_bytes: u64,
}

impl ColonyConfig {
    /// The defaults, with the given id and home.
    pub fn new(id: impl Into<String>, home: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            home: home.into(),
            max_concurrent_workers: 4,
            max_batch: 8,
            soft_timeout: Duration::from_secs(600),
            hard_timeout: None,
            nats: None,
            nats_replicas: None,
            journal_sync: JournalSync::Os,
            record: true,
            max_recording_bytes: DEFAULT_MAX_RECORDING_BYTES,
        }
    }

    /// The hard timeout in force.
    pub fn effective_hard_timeout(&self) -> Duration {
        self.hard_timeout.unwrap_or_else(|| {
            let soft = self.soft_timeout;
            let derived = (soft * 4).max(soft + Duration::from_secs(600));
            derived
                .min(Duration::from_secs(3600))
                .max(soft + Duration::from_secs(60))
        })
    }

    /// The default home folder: `$COLONY_HOME`, else the user's data folder + `colony`.
    pub fn default_home() -> PathBuf {
        std::env::var_os("COLONY_HOME")
            .map(PathBuf::from)
            .or_else(|| dirs::data_dir().map(|d| d.join("colony")))
            .unwrap_or_else(|| PathBuf::from(".colony"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_timeout_follows_the_reference() {
        let mut config = ColonyConfig::new("c", "/tmp");
        assert_eq!(config.effective_hard_timeout(), Duration::from_secs(2400));
        config.soft_timeout = Duration::from_secs(10);
        assert_eq!(config.effective_hard_timeout(), Duration::from_secs(610));
        config.soft_timeout = Duration::from_secs(3590);
        assert_eq!(config.effective_hard_timeout(), Duration::from_secs(3650));
        config.hard_timeout = Some(Duration::from_secs(5));
        assert_eq!(config.effective_hard_timeout(), Duration::from_secs(5));
    }
}

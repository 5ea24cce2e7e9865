//! `--timeout` of the commands that wait for reports (`run`, `fanout`): how long they
//! wait before they stop what has not reported, and the exit code that says so.

use std::process::ExitCode;
use std::time::Duration;

use tokio::time::Instant;

/// The exit code of a command whose workers did not all report in time (as `timeout(1)`).
pub(crate) const TIMED_OUT: u8 = 124;

/// When a command given `--timeout` stops waiting.
#[derive(Clone, Copy)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// `timeout` from now; none: wait as long as it takes.
    pub(crate) fn after(timeout: Option<Duration>) -> Self {
        Self(timeout.map(|t| Instant::now() + t))
    }

    /// `future`'s output, or `None` once the deadline has passed.
    pub(crate) async fn before<F: Future>(self, future: F) -> Option<F::Output> {
        match self.0 {
            Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
            None => Some(future.await),
        }
    }
}

/// The exit code for workers that did not report within `timeout`.
pub(crate) fn timed_out(waiting: usize, timeout: Option<Duration>) -> ExitCode {
    let within = timeout.map_or_else(String::new, |t| {
        format!(" within {}", humantime::format_duration(t))
    });
    eprintln!("colony: {waiting} worker(s) did not report{within}; stopped");
    ExitCode::from(TIMED_OUT)
}

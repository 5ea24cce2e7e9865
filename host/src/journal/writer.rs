//! The journal's one writer: group commit.
//!
//! Why: a SQLite transaction per row pays a WAL append, a commit and a lock round trip
//! each, on whichever thread asked — for a colony of thousands of short workers that is
//! most of the host's time, and it is blocking I/O on the async threads. Instead every
//! write is a job queued to one thread that owns the write connection. It takes whatever
//! is queued (up to [`MAX_BATCH`] jobs), applies it in one transaction, commits, and only
//! then answers the jobs that wait for their commit. While it commits, the next batch
//! queues behind it: batches grow with the load, and a lone write is committed at once —
//! there is no timer to wait out.
//!
//! A job that fails (a constraint, say) is rolled back alone — by SQLite for a single
//! statement, by a savepoint of its own for a job of several — and told why; a commit
//! that fails fails every job of its batch. Jobs are
//! applied in the order they were queued, so a read that waits for the queue to drain
//! ([`Writer::flush`]) sees every write queued before it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::JournalError;

/// Most jobs one transaction holds: bounds the time a waiting report waits behind others.
pub const MAX_BATCH: usize = 4096;

/// What a job's caller hears once its batch is committed (or is not).
type Reply = Box<dyn FnOnce(Result<(), JournalError>) + Send>;
/// A job: run against the write connection (`None`: it cannot be, the writer is gone or
/// the batch could not begin), it returns how to answer its caller after the commit.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Reply + Send>;

/// The handle to the writer thread. Dropping it commits what is queued and joins it.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// For errors: the database's path.
    error: JournalError,
    /// Jobs queued so far, and jobs answered: equal, nothing is waiting to commit (a
    /// flush then costs nothing — readers that only watch other processes never take
    /// the write lock).
    counts: Arc<JobCounts>,
}

#[derive(Default)]
struct JobCounts {
    queued: AtomicU64,
    answered: AtomicU64,
}

impl Writer {
    /// Starts the writer thread on `conn`. `closed` is the error jobs get once it is gone.
    pub fn start(conn: Connection, closed: JournalError) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let error = closed.clone();
        let counts = Arc::new(JobCounts::default());
        let answered = counts.clone();
        let thread = std::thread::Builder::new()
            .name("colony-journal".into())
            .spawn(move || run(conn, queue, closed, &answered))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
            error,
            counts,
        })
    }

    /// Queues `write`; `reply` hears its value once its batch is committed, or why not.
    /// `several`: the write runs more than one statement, so it runs in a savepoint of
    /// its own (one statement that fails is undone alone by SQLite itself).
    fn submit<T: Send + 'static>(
        &self,
        several: bool,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        reply: impl FnOnce(Result<T, JournalError>) + Send + 'static,
    ) {
        let with_error = self.error.clone();
        let job: Job = Box::new(move |conn| {
            let done = conn.map(|c| match several {
                true => in_savepoint(c, write),
                false => write(c),
            });
            match done {
                Some(Ok(value)) => Box::new(move |committed| reply(committed.map(|()| value))),
                Some(Err(source)) => {
                    let failed = with_error.with_source(source);
                    Box::new(move |_| reply(Err(failed)))
                }
                None => Box::new(move |outcome| reply(Err(outcome.err().unwrap_or(with_error)))),
            }
        });
        let Some(jobs) = &self.jobs else { return };
        self.counts.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::SendError(job)) = jobs.send(job) {
            job(None)(Err(self.error.clone()));
        }
    }

    /// Queues `write` (one statement), whose failure is only logged (a state on its way
    /// to an end that is awaited, an event, a heartbeat).
    pub fn queue(
        &self,
        what: impl std::fmt::Display + Send + 'static,
        write: impl FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    ) {
        self.submit(false, write, move |result| {
            if let Err(e) = result {
                tracing::error!("{what}: {e}");
            }
        });
    }

    /// `write`, committed: resolves once its batch is.
    pub fn commit<T, F>(
        &self,
        write: F,
    ) -> impl Future<Output = Result<T, JournalError>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(true, write, move |result| {
            let _ = tx.send(result);
        });
        let closed = self.error.clone();
        async move { rx.await.unwrap_or(Err(closed)) }
    }

    /// `write`, committed, waiting on this thread (for callers outside async code).
    pub fn commit_blocking<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, JournalError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(true, write, move |result| {
            let _ = tx.send(result);
        });
        rx.recv().unwrap_or_else(|_| Err(self.error.clone()))
    }

    /// Waits until every write queued so far is committed.
    pub fn flush(&self) -> Result<(), JournalError> {
        let queued = self.counts.queued.load(Ordering::Acquire);
        if self.counts.answered.load(Ordering::Acquire) >= queued {
            return Ok(());
        }
        self.commit_blocking(|_| Ok(()))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `write` in a savepoint of the open transaction: undone alone if it fails.
fn in_savepoint<T>(
    conn: &Connection,
    write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let run = |sql: &str| conn.prepare_cached(sql)?.execute([]).map(drop);
    run("SAVEPOINT job")?;
    match write(conn) {
        Ok(value) => run("RELEASE job").map(|()| value),
        Err(e) => {
            let _ = run("ROLLBACK TO job").and_then(|()| run("RELEASE job"));
            Err(e)
        }
    }
}

/// The writer thread: batch, apply, commit, answer — until every sender is gone and the
/// queue is drained.
fn run(conn: Connection, queue: mpsc::Receiver<Job>, error: JournalError, counts: &JobCounts) {
    let mut batch = Vec::new();
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let begun = conn.execute_batch("BEGIN IMMEDIATE");
        let open = begun.is_ok().then_some(&conn);
        let replies: Vec<Reply> = batch.drain(..).map(|job| job(open)).collect();
        let committed = begun
            .and_then(|()| conn.execute_batch("COMMIT"))
            .map_err(|source| {
                let _ = conn.execute_batch("ROLLBACK");
                error.with_source(source)
            });
        if let Err(e) = &committed {
            tracing::error!("{e}");
        }
        let answered = replies.len() as u64;
        for reply in replies {
            reply(committed.clone());
        }
        counts.answered.fetch_add(answered, Ordering::Release);
    }
}

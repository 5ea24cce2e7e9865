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
//! Events — most of what a colony writes, five or more a worker — skip the general
//! path: queued as plain rows, not closures, and inserted together at the end of their
//! batch, [`EVENTS_PER_INSERT`] rows a statement (a statement per event was a quarter of
//! the writer's time). They keep their order among themselves; against the batch's other
//! writes order does not matter, as nothing reads the journal between two of them.
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

/// Events one `INSERT` statement writes.
const EVENTS_PER_INSERT: usize = 32;

/// Statements the write connection keeps prepared (rusqlite's default, 16, is fewer than
/// the journal's statements: they would be prepared again and again).
const PREPARED_STATEMENTS: usize = 64;

/// What a job's caller hears once its batch is committed (or is not).
type Reply = Box<dyn FnOnce(Result<(), JournalError>) + Send>;
/// A write: run against the write connection (`None`: it cannot be, the writer is gone
/// or the batch could not begin), it returns how to answer its caller after the commit.
type Write = Box<dyn FnOnce(Option<&Connection>) -> Reply + Send>;

/// What the writer is asked to do.
enum Job {
    /// Any write, in its turn.
    Write(Write),
    /// A worker's event (its id, its JSON line), inserted with its batch's other events.
    Event(String, String),
}

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
        let job: Write = Box::new(move |conn| {
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
        if let Err(Job::Write(job)) = self.send(Job::Write(job)) {
            job(None)(Err(self.error.clone()));
        }
    }

    /// Queues `job`; gives it back if the writer is gone.
    fn send(&self, job: Job) -> Result<(), Job> {
        let Some(jobs) = &self.jobs else {
            return Err(job);
        };
        self.counts.queued.fetch_add(1, Ordering::AcqRel);
        jobs.send(job).map_err(|mpsc::SendError(job)| {
            self.counts.answered.fetch_add(1, Ordering::Release);
            job
        })
    }

    /// Queues event `line` of `worker`: inserted with its batch, a failure only logged.
    pub fn event(&self, worker: String, line: String) {
        if self.send(Job::Event(worker, line)).is_err() {
            tracing::error!("journal an event: {}", self.error);
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
    conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
    let mut batch = Vec::new();
    let mut events = Vec::new();
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
        let answered = batch.len() as u64;
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            match job {
                Job::Write(write) => replies.push(write(open)),
                Job::Event(worker, line) => events.push((worker, line)),
            }
        }
        if let Some(conn) = open
            && let Err(e) = insert_events(conn, &events)
        {
            tracing::error!("journal {} events: {}", events.len(), error.with_source(e));
        }
        events.clear();
        let committed = begun
            .and_then(|()| conn.execute_batch("COMMIT"))
            .map_err(|source| {
                let _ = conn.execute_batch("ROLLBACK");
                error.with_source(source)
            });
        if let Err(e) = &committed {
            tracing::error!("{e}");
        }
        for reply in replies {
            reply(committed.clone());
        }
        counts.answered.fetch_add(answered, Ordering::Release);
    }
}

/// Inserts `events` (worker id, JSON line), in order, [`EVENTS_PER_INSERT`] a statement.
fn insert_events(conn: &Connection, events: &[(String, String)]) -> rusqlite::Result<()> {
    static MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let rows = vec!["(?, ?)"; EVENTS_PER_INSERT].join(", ");
        format!("INSERT INTO events (worker_id, event) VALUES {rows}")
    });
    let mut chunks = events.chunks_exact(EVENTS_PER_INSERT);
    for chunk in &mut chunks {
        let values = chunk.iter().flat_map(|(worker, line)| [worker, line]);
        conn.prepare_cached(&MANY)?
            .execute(rusqlite::params_from_iter(values))?;
    }
    let mut one = conn.prepare_cached("INSERT INTO events (worker_id, event) VALUES (?1, ?2)")?;
    for (worker, line) in chunks.remainder() {
        one.execute([worker, line])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::events::{AgentEvent, EventLog, EventType};
    use crate::journal::Journal;

    fn line(worker: &str, n: usize) -> Vec<u8> {
        let event = AgentEvent {
            event_type: EventType::WorkerLog,
            stream_id: worker.to_owned(),
            worker_id: worker.to_owned(),
            execution_id: worker.to_owned(),
            data: serde_json::json!({ "n": n }),
            timestamp: chrono::Utc::now(),
        };
        serde_json::to_vec(&event).unwrap()
    }

    #[test]
    fn events_keep_their_order_across_statements_and_other_writes() {
        let home = tempfile::tempdir().unwrap();
        let journal = Journal::open(home.path().join("journal.db")).unwrap();
        // Two workers' events interleaved with other writes: more than one statement's
        // worth, and a remainder, whatever the batches turn out to be.
        let total = super::EVENTS_PER_INSERT * 3 + 7;
        for n in 0..total {
            let worker = if n % 2 == 0 { "w-a" } else { "w-b" };
            EventLog::append(&journal, worker, line(worker, n));
            if n % 10 == 0 {
                journal.heartbeat();
            }
        }
        let events = journal.events(None, 0, 1000).unwrap();
        let seen: Vec<u64> = events
            .iter()
            .map(|(_, e)| e.data["n"].as_u64().unwrap())
            .collect();
        assert_eq!(seen, (0..total as u64).collect::<Vec<_>>());
        assert!(events.windows(2).all(|w| w[0].0 < w[1].0));
        let of_b = journal.events(Some("w-b"), 0, 1000).unwrap();
        assert_eq!(of_b.len(), total / 2);
        assert!(of_b.iter().all(|(_, e)| e.worker_id == "w-b"));
    }
}

//! `colony ps`, `colony inspect <worker>`, `colony events`: read the journal (states,
//! reports and events) and the workers' folders (conversations).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use colony::{WorkerRecord, WorkerStorage};

use crate::Env;
use crate::print::{EventPrinter, say};

#[derive(Args)]
pub(crate) struct InspectArgs {
    /// The worker's id.
    worker: String,
}

#[derive(Args)]
pub(crate) struct EventsArgs {
    /// Only this worker's events.
    #[arg(long)]
    worker: Option<String>,
    /// Keep printing new events as they are written (Ctrl-C to end).
    #[arg(long)]
    follow: bool,
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.format("%H:%M:%S").to_string())
}

pub(crate) fn ps(env: Env) -> anyhow::Result<ExitCode> {
    let workers = env.journal()?.workers()?;
    if env.json {
        for w in &workers {
            crate::print::line(&colony::text::json_line(w)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:<16} {:<11} {:<10} {:<16} {:<8} {:<8} TASK",
        "WORKER",
        "STATE",
        "MODE",
        "PLUGIN",
        "STARTED",
        "ENDED"
    );
    for w in &workers {
        let ended = if w.state == colony::RecordState::Interrupted {
            format!("!{}", when(w.interrupted_at))
        } else {
            when(w.ended_at)
        };
        let task: String = w.task.chars().take(50).collect();
        say!(
            "{:<16} {:<11} {:<10} {:<16} {:<8} {:<9} {task}",
            w.id,
            w.state,
            w.mode,
            w.plugin,
            when(w.started_at),
            ended
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn record(env: &Env, id: &str) -> anyhow::Result<WorkerRecord> {
    env.journal()?
        .worker(id)?
        .with_context(|| format!("no worker '{id}' in the journal at {}", env.home.display()))
}

/// A worker's conversation: a persistent worker's parts are in its folder, an
/// ephemeral one's in the journal.
pub(crate) fn conversation(
    journal: &colony::Journal,
    record: &WorkerRecord,
) -> anyhow::Result<Vec<colony::MessagePart>> {
    let parts = match &record.storage {
        Some(folder) => WorkerStorage::new(folder).read_parts()?,
        None => Vec::new(),
    };
    if !parts.is_empty() {
        return Ok(parts);
    }
    Ok(journal.parts(&record.id)?)
}

pub(crate) fn inspect(args: InspectArgs, env: Env) -> anyhow::Result<ExitCode> {
    let record = record(&env, &args.worker)?;
    let journal = env.journal()?;
    let reports = journal.reports(Some(&args.worker))?;
    let parts = conversation(&journal, &record)?;
    let events = journal.events(Some(&args.worker), 0, usize::MAX)?.len();
    let (steps, bytes) = journal.recording_size(&args.worker)?;
    let view = serde_json::json!({
        "worker": record,
        "reports": reports,
        "conversation": parts,
        "events": events,
        "recording": {"steps": steps, "bytes": bytes},
    });
    if env.json {
        crate::print::line(&colony::text::json_line(&view)?);
    } else {
        for line in serde_json::to_string_pretty(&view)?.lines() {
            say!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Events read from the journal at a time.
const EVENTS_PAGE: usize = 4096;

pub(crate) async fn events(args: EventsArgs, env: Env) -> anyhow::Result<ExitCode> {
    let printer = EventPrinter::stored(env.json);
    if let Some(id) = &args.worker {
        record(&env, id)?;
    }
    let journal = env.journal()?;
    let mut after = 0;
    loop {
        let page = journal.events(args.worker.as_deref(), after, EVENTS_PAGE)?;
        for (seq, event) in &page {
            printer.print(event);
            after = *seq;
        }
        if page.len() == EVENTS_PAGE {
            continue;
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

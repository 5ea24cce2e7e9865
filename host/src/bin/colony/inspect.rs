//! `colony ps`, `colony inspect <worker>`, `colony events`: read the journal and the
//! workers' folders.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use colony::{AgentEvent, WorkerRecord, WorkerStorage};

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

pub(crate) fn inspect(args: InspectArgs, env: Env) -> anyhow::Result<ExitCode> {
    let record = record(&env, &args.worker)?;
    let reports = env.journal()?.reports(Some(&args.worker))?;
    let storage = record.storage.as_ref().map(WorkerStorage::new);
    let parts = match &storage {
        Some(s) => s.read_parts()?,
        None => Vec::new(),
    };
    let events = storage
        .as_ref()
        .and_then(|s| std::fs::read_to_string(s.events_path()).ok())
        .map_or(0, |t| t.lines().count());
    let view = serde_json::json!({
        "worker": record,
        "reports": reports,
        "conversation": parts,
        "events": events,
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

/// Reads whole new lines of `path` from `offset`, moving the offset past them.
fn read_new_events(path: &std::path::Path, offset: &mut u64) -> Vec<AgentEvent> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    if file.seek(SeekFrom::Start(*offset)).is_err() {
        return Vec::new();
    }
    let mut events = Vec::new();
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    while let Ok(n) = reader.read_line(&mut line) {
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        *offset += n as u64;
        if let Ok(event) = serde_json::from_str(&line) {
            events.push(event);
        }
        line.clear();
    }
    events
}

pub(crate) async fn events(args: EventsArgs, env: Env) -> anyhow::Result<ExitCode> {
    let printer = EventPrinter::stored(env.json);
    let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
    if let Some(id) = &args.worker {
        record(&env, id)?;
    }
    loop {
        let journal = env.journal()?;
        let mut batch = Vec::new();
        for w in journal.workers()? {
            if args.worker.as_ref().is_some_and(|id| *id != w.id) {
                continue;
            }
            let Some(storage) = &w.storage else { continue };
            let path = WorkerStorage::new(storage).events_path();
            let offset = offsets.entry(path.clone()).or_insert(0);
            batch.extend(read_new_events(&path, offset));
        }
        batch.sort_by_key(|e| e.timestamp);
        for event in &batch {
            printer.print(event);
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

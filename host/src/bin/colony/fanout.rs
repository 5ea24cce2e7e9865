//! `colony fanout <plugin> --tasks FILE`: ephemeral workers for every task, as one
//! journaled batch (its id printed first), a progress bar while they run, a summary table
//! at the end. `--resume BATCH` runs the tasks of a batch that have no report yet.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use colony::{EventFilter, EventType, ReportStatus, Task, WorkerReport};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;

use crate::Env;
use crate::deadline::{self, Deadline};
use crate::interrupt::Interrupt;
use crate::print::say;

#[derive(Args)]
pub(crate) struct FanoutArgs {
    /// The guest component (.wasm) or manifest (.toml) of the workers.
    plugin: PathBuf,
    /// The tasks: one per line, as text or as a JSON object {"task": …, "input": {…},
    /// "token_budget": N, "tool_call_budget": N} (all but "task" optional).
    #[arg(long, required_unless_present = "resume")]
    tasks: Option<PathBuf>,
    /// Run the tasks of batch BATCH (printed when it started) that have no report yet —
    /// after its process was killed, say — and print the summary of the whole batch.
    #[arg(long, value_name = "BATCH", conflicts_with = "tasks")]
    resume: Option<String>,
    /// Workers running at once.
    #[arg(long, default_value_t = 4)]
    max_concurrency: usize,
    /// Stop the workers that have not reported within this long (e.g. 30s, 5m), show
    /// what did report, and exit with code 124. Default: wait as long as it takes.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<std::time::Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskLine {
    task: String,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    token_budget: Option<u64>,
    #[serde(default)]
    tool_call_budget: Option<u32>,
}

/// Parses a tasks file; errors name the file and the line.
fn read_tasks(path: &Path) -> anyhow::Result<Vec<Task>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut tasks = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('{') {
            tasks.push(Task::new(line));
            continue;
        }
        let parsed: TaskLine = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a task", path.display(), n + 1))?;
        let input = parsed.input.unwrap_or_else(|| serde_json::json!({}));
        if !input.is_object() {
            bail!(
                "{} line {}: input must be a JSON object",
                path.display(),
                n + 1
            );
        }
        tasks.push(
            Task::new(parsed.task)
                .with_input(input)
                .with_budgets(parsed.token_budget, parsed.tool_call_budget),
        );
    }
    if tasks.is_empty() {
        bail!("{} has no tasks", path.display());
    }
    Ok(tasks)
}

pub(crate) async fn fanout(args: FanoutArgs, env: Env) -> anyhow::Result<ExitCode> {
    let tasks = args.tasks.as_deref().map(read_tasks).transpose()?;
    if args.max_concurrency == 0 {
        bail!("--max-concurrency must be at least 1");
    }
    let interrupt = Interrupt::listen();
    let plugin = crate::load_plugin(&env.runtime, &args.plugin).await?;
    let colony = env
        .colony(|c| c.max_concurrent_workers = args.max_concurrency)
        .await?;
    let mut reports = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let batch = match (tasks, &args.resume) {
        (Some(tasks), _) => colony.fan_out(&plugin, tasks)?,
        (None, Some(id)) => colony.resume_batch(&plugin, id)?,
        (None, None) => bail!("give --tasks FILE or --resume BATCH"),
    };
    eprintln!(
        "colony: batch {}: {} task(s), {} to run{}",
        batch.id,
        batch.size,
        batch.started.len(),
        match batch.reported.len() {
            0 => String::new(),
            n => format!(", {n} reported before"),
        }
    );
    if env.json {
        for (_, report) in &batch.reported {
            crate::print::line(&colony::text::json_line(report)?);
        }
    }
    let ids = batch.ids();
    let total = ids.len();

    let bar = ProgressBar::with_draw_target(
        Some(total as u64),
        if env.json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failed = 0;
    let mut printed = std::collections::HashSet::new();
    let mut done = 0;
    let deadline = Deadline::after(args.timeout);
    while done < total {
        let next = tokio::select! {
            next = deadline.before(reports.recv()) => next,
            () = interrupt.fired() => None,
        };
        let Some(next) = next else {
            break;
        };
        let Ok(event) = next else {
            continue;
        };
        let report = WorkerReport::from_event(&event).unwrap_or_else(|e| {
            eprintln!("colony: {}", colony::text::inert(&e.to_string()));
            WorkerReport::unreadable("", "", &e)
        });
        done += 1;
        if !matches!(report.status, ReportStatus::Success | ReportStatus::Partial) {
            failed += 1;
        }
        if env.json {
            crate::print::line(&colony::text::json_line(&report)?);
            printed.insert(report.worker_id);
        }
        bar.set_message(format!("{failed} failed"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let waiting = total - done;
    // On a timeout or a signal, the workers still out are stopped and report so.
    colony.stop_all().await;
    let fresh = colony
        .wait_for_reports(&ids, std::time::Duration::from_secs(5))
        .await?;
    // The whole batch, in task order: what ran now and what had reported before.
    let mut all: Vec<(u64, WorkerReport)> = batch.reported.clone();
    all.extend(batch.started.iter().map(|(index, _)| *index).zip(fresh));
    all.sort_by_key(|(index, _)| *index);
    let failed = all
        .iter()
        .filter(|(_, r)| !matches!(r.status, ReportStatus::Success | ReportStatus::Partial))
        .count();
    if env.json {
        // The reports of the workers stopped at the timeout.
        let before: std::collections::HashSet<u64> =
            batch.reported.iter().map(|(index, _)| *index).collect();
        for (index, report) in &all {
            if !before.contains(index) && !printed.contains(&report.worker_id) {
                crate::print::line(&colony::text::json_line(report)?);
            }
        }
    } else {
        say!("{:<16} {:<8} {:>8}  SUMMARY", "WORKER", "STATUS", "SECONDS");
        for (_, r) in &all {
            let summary: String = r.summary.chars().take(70).collect();
            say!(
                "{:<16} {:<8} {:>8.3}  {summary}",
                r.worker_id,
                r.status.as_str(),
                r.duration_seconds
            );
        }
        say!(
            "batch {}: {} workers, {} succeeded, {failed} failed",
            batch.id,
            all.len(),
            all.len() - failed
        );
    }
    if interrupt.is_fired() {
        eprintln!("colony: interrupted; {waiting} worker(s) stopped");
        return Ok(interrupt.exit_code());
    }
    if waiting > 0 {
        return Ok(deadline::timed_out(waiting, args.timeout));
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

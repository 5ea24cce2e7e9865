//! `colony run <plugin> --task …`: one ephemeral worker, its events, its report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use colony::{EventFilter, EventType, RecvError, ReportStatus, Task};

use crate::Env;
use crate::deadline::{self, Deadline};
use crate::interrupt::Interrupt;
use crate::print::{EventPrinter, say};

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The guest component (.wasm), or its manifest (.toml) with grants and limits.
    plugin: PathBuf,
    /// The task, in natural language.
    #[arg(long)]
    task: String,
    /// The task's structured input, a JSON object.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Stop the worker if it has not reported within this long (e.g. 30s, 5m) and exit
    /// with code 124. Default: wait as long as it takes.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
}

pub(crate) async fn run(args: RunArgs, env: Env) -> anyhow::Result<ExitCode> {
    let input: serde_json::Value =
        serde_json::from_str(&args.input).context("--input is not valid JSON")?;
    anyhow::ensure!(input.is_object(), "--input must be a JSON object");
    let interrupt = Interrupt::listen();
    let plugin = crate::load_plugin(&env.runtime, &args.plugin).await?;
    let colony = env.colony(|_| {}).await?;
    let mut events = colony.bus().subscribe(EventFilter::all());
    let ids = colony.run_parallel(&plugin, vec![Task::new(args.task).with_input(input)])?;
    let printer = EventPrinter::new(env.json);
    let deadline = Deadline::after(args.timeout);
    // Its report is the last event it publishes (wherever it runs).
    loop {
        let next = tokio::select! {
            next = deadline.before(events.recv()) => next,
            () = interrupt.fired() => None,
        };
        let Some(next) = next else {
            if interrupt.is_fired() {
                // Stopped: its `stopped` report is printed below.
                break;
            }
            colony.stop_all().await;
            return Ok(deadline::timed_out(1, args.timeout));
        };
        match next {
            Ok(event) => {
                printer.print(&event);
                if event.event_type == EventType::SubagentReport && event.worker_id == ids[0] {
                    break;
                }
            }
            Err(RecvError::Lagged(n)) => eprintln!("colony: {n} events not shown"),
            Err(RecvError::Closed) => break,
        }
    }
    colony.stop_all().await;
    let report = colony
        .wait_for_reports(&ids, Duration::from_secs(5))
        .await?
        .remove(0);
    if env.json {
        crate::print::line(&colony::text::json_line(&report)?);
    } else {
        say!();
        say!("{}: {}", report.status, report.summary);
        if let Some(error) = &report.error {
            say!("error: {error}");
        }
    }
    if interrupt.is_fired() {
        return Ok(interrupt.exit_code());
    }
    Ok(match report.status {
        ReportStatus::Success | ReportStatus::Partial if report.error.is_none() => {
            ExitCode::SUCCESS
        }
        _ => ExitCode::FAILURE,
    })
}

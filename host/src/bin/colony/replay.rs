//! `colony replay`, `colony fork` and `colony export`: a recorded worker's run re-run
//! offline and checked, continued live from a step, or turned into a model script.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use colony::{EventFilter, Plugin, RecvError, Subscription, WorkerRecord};

use crate::Env;
use crate::print::{EventPrinter, say};

#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// The id of a recorded worker in the journal.
    worker: String,
    /// Replay with this plugin (.wasm or .toml) instead of the one it ran (which must be
    /// unchanged: same sha256).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Give the guest this task input (a JSON object) instead of the recorded one: where
    /// does it stop doing what it did?
    #[arg(long)]
    input: Option<String>,
}

#[derive(Args)]
pub(crate) struct ForkArgs {
    /// The id of a recorded worker in the journal.
    worker: String,
    /// The last step answered from the recording; the calls after it go to this host's
    /// model and tools (the global --config).
    #[arg(long)]
    at: u64,
    /// Fork with this plugin (.wasm or .toml) instead of the one it ran.
    #[arg(long)]
    plugin: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The id of a recorded worker in the journal.
    worker: String,
    /// Write its model answers here, as a script for the scripted provider
    /// (`[llm] provider = "scripted"`, `script = FILE`).
    #[arg(long)]
    script: PathBuf,
}

/// Worker `id`'s journal row, or why there is none.
fn recorded(env: &Env, id: &str) -> anyhow::Result<WorkerRecord> {
    env.journal()?.worker(id)?.with_context(|| {
        format!(
            "no worker '{id}' in the journal at {}",
            env.home.join("journal.db").display()
        )
    })
}

/// The plugin to re-run `record` with: `given`, else the one it ran — refused if that
/// file has changed since (its sha256 is not the recorded one).
async fn plugin_for(
    env: &Env,
    record: &WorkerRecord,
    given: Option<&Path>,
) -> anyhow::Result<Plugin> {
    let source = match given
        .map(Path::to_path_buf)
        .or(record.plugin_source.as_ref().map(PathBuf::from))
    {
        Some(source) => source,
        None => bail!(
            "the journal does not say which plugin '{}' ran; pass --plugin",
            record.id
        ),
    };
    let plugin = crate::load_plugin(&env.runtime, &source).await?;
    if given.is_none()
        && let (Some(recorded), Some(now)) = (&record.plugin_sha256, plugin.sha256())
        && recorded != now
    {
        bail!(
            "the plugin at {} has changed since worker '{}' ran (sha256 {now}, recorded {recorded}); pass --plugin to re-run it with another",
            source.display(),
            record.id
        );
    }
    Ok(plugin)
}

/// Prints `events` until `done` resolves, then what is left of them; `done`'s value.
async fn printing<T>(events: &mut Subscription, json: bool, done: impl Future<Output = T>) -> T {
    let printer = EventPrinter::new(json);
    tokio::pin!(done);
    let value = loop {
        tokio::select! {
            value = &mut done => break value,
            next = events.recv() => match next {
                Ok(event) => printer.print(&event),
                Err(RecvError::Lagged(n)) => eprintln!("colony: {n} events not shown"),
                Err(RecvError::Closed) => break done.await,
            },
        }
    };
    while let Ok(Some(event)) = events.try_recv() {
        printer.print(&event);
    }
    value
}

pub(crate) async fn replay(args: ReplayArgs, env: Env) -> anyhow::Result<ExitCode> {
    let record = recorded(&env, &args.worker)?;
    let input = match &args.input {
        Some(text) => {
            let input: serde_json::Value =
                serde_json::from_str(text).context("--input is not valid JSON")?;
            anyhow::ensure!(input.is_object(), "--input must be a JSON object");
            Some(input)
        }
        None => None,
    };
    let plugin = plugin_for(&env, &record, args.plugin.as_deref()).await?;
    let colony = env.colony(|_| {}).await?;
    // Subscribed before the replay starts: it may be over before the next line.
    let mut events = colony.bus().subscribe(EventFilter::all());
    let replay = colony.replay(&plugin, &args.worker, input)?;
    let outcome = printing(&mut events, env.json, replay.finish()).await;
    colony.stop_all().await;
    if env.json {
        crate::print::line(&colony::text::json_line(&outcome)?);
    } else {
        say!();
        say!(
            "replay {} of worker {}: {} of {} recorded steps",
            outcome.worker_id,
            outcome.recorded_worker,
            outcome.steps,
            outcome.recorded_steps
        );
        match &outcome.divergence {
            Some(divergence) => say!(
                "DIVERGED at step {}: {}",
                divergence.step,
                divergence.detail
            ),
            None => say!("every step matched the recording"),
        }
        match outcome.report_difference() {
            Some(difference) => say!("report differs: {difference}"),
            None => say!(
                "report matches: {}: {}",
                outcome.result.status,
                outcome.result.summary
            ),
        }
    }
    Ok(if outcome.matches() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) async fn fork(args: ForkArgs, env: Env) -> anyhow::Result<ExitCode> {
    let record = recorded(&env, &args.worker)?;
    let plugin = plugin_for(&env, &record, args.plugin.as_deref()).await?;
    let colony = env.colony(|_| {}).await?;
    let bus = colony.bus().clone();
    let mut events = bus.subscribe(EventFilter::all());
    let forked = printing(&mut events, env.json, async {
        let worker = colony.fork(&plugin, &args.worker, args.at).await?;
        if worker.is_persistent() {
            worker.stop().await;
        }
        anyhow::Ok((worker.id().to_owned(), worker.wait().await))
    })
    .await;
    colony.stop_all().await;
    let (id, result) = forked?;
    if env.json {
        crate::print::line(&colony::text::json_line(&serde_json::json!({
            "worker_id": id, "forked_from": args.worker, "at": args.at, "result": result,
        }))?);
    } else {
        say!();
        say!("fork {id} of worker {} at step {}", args.worker, args.at);
        say!("{}: {}", result.status, result.summary);
        if let Some(error) = &result.error {
            say!("error: {error}");
        }
    }
    Ok(if result.error.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn export(args: ExportArgs, env: Env) -> anyhow::Result<ExitCode> {
    recorded(&env, &args.worker)?;
    let recording = env.journal()?.recording(&args.worker)?;
    let script = recording.to_script();
    let answers = script.as_array().map_or(0, Vec::len);
    if answers == 0 {
        bail!(
            "worker '{}' has no recorded model answer to export",
            args.worker
        );
    }
    let failed = recording.failed_model_calls();
    if failed > 0 {
        eprintln!("colony: {failed} failed model call(s) left out: a script answers every call");
    }
    if recording.is_cut() {
        eprintln!(
            "colony: the recording was cut at step {}: the answers after it are missing",
            recording.len()
        );
    }
    let text = serde_json::to_string_pretty(&script)?;
    std::fs::write(&args.script, text + "\n")
        .with_context(|| format!("cannot write {}", args.script.display()))?;
    if env.json {
        crate::print::line(&colony::text::json_line(&serde_json::json!({
            "worker_id": args.worker, "script": args.script, "answers": answers,
        }))?);
    } else {
        say!(
            "wrote {answers} model answer(s) of worker {} to {}",
            args.worker,
            args.script.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

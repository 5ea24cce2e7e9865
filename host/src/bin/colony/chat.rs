//! `colony chat <plugin>` and `colony resume <worker>`: a persistent overseer, one turn
//! per line of stdin, every event printed as it comes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use colony::{Colony, EventFilter, EventType, Subscription, Worker};
use tokio::io::AsyncBufReadExt;

use crate::Env;
use crate::interrupt::Interrupt;
use crate::print::EventPrinter;

#[derive(Args)]
pub(crate) struct ChatArgs {
    /// The guest component (.wasm) or manifest (.toml) of the overseer.
    plugin: PathBuf,
    /// The overseer's task.
    #[arg(long, default_value = "")]
    task: String,
}

#[derive(Args)]
pub(crate) struct ResumeArgs {
    /// The id of a persistent worker in the journal.
    worker: String,
    /// The plugin to resume it with (default: the one it ran with).
    #[arg(long)]
    plugin: Option<PathBuf>,
}

pub(crate) async fn chat(args: ChatArgs, env: Env) -> anyhow::Result<ExitCode> {
    let plugin = crate::load_plugin(&env.runtime, &args.plugin).await?;
    let colony = env.colony(|_| {}).await?;
    let events = colony.bus().subscribe(EventFilter::all());
    let overseer = colony.start_overseer(&plugin, args.task, Vec::new())?;
    converse(colony, events, overseer, env.json).await
}

pub(crate) async fn resume(args: ResumeArgs, env: Env) -> anyhow::Result<ExitCode> {
    let record = env.journal()?.worker(&args.worker)?.with_context(|| {
        format!(
            "no worker '{}' in the journal at {}",
            args.worker,
            env.home.display()
        )
    })?;
    if record.mode != colony::WorkerMode::Persistent {
        bail!(
            "worker '{}' is ephemeral: only persistent workers can be resumed",
            args.worker
        );
    }
    let source = match args.plugin.or(record.plugin_source.map(PathBuf::from)) {
        Some(source) => source,
        None => bail!(
            "the journal does not say which plugin '{}' ran; pass --plugin",
            args.worker
        ),
    };
    let plugin = crate::load_plugin(&env.runtime, &source).await?;
    let colony = env.colony(|_| {}).await?;
    let events = colony.bus().subscribe(EventFilter::all());
    let overseer = colony.resume_overseer(&plugin, &args.worker)?;
    converse(colony, events, overseer, env.json).await
}

/// Injects each stdin line into `overseer` and prints every event until stdin ends and
/// every line has had its turn (or the overseer ends).
async fn converse(
    colony: Colony,
    mut events: Subscription,
    overseer: Worker,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let printer = EventPrinter::new(json);
    let interrupt = Interrupt::listen();
    if !json {
        eprintln!(
            "overseer {} started; one message per line, end with Ctrl-D",
            overseer.id()
        );
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    // Every injected line ends as a turn, or is taken by the guest itself (its `run`
    // may drain the inbox): those never become turns, so they are not waited for.
    let (mut injected, mut turns) = (0u64, 0u64);
    let mut recheck = tokio::time::interval(std::time::Duration::from_millis(100));
    while stdin_open || injected > turns + overseer.messages_taken() {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line? {
                Some(line) if !line.trim().is_empty() => {
                    overseer.inject(line)?;
                    injected += 1;
                }
                Some(_) => {}
                None => stdin_open = false,
            },
            event = events.recv() => {
                let Ok(event) = event else { continue };
                printer.print(&event);
                let turn = matches!(event.event_type, EventType::TurnCompleted | EventType::TurnFailed);
                if turn && event.worker_id == overseer.id() {
                    turns += 1;
                }
            }
            _ = recheck.tick() => {}
            _ = overseer.wait() => break,
            () = interrupt.fired() => break,
        }
    }
    colony.stop_all().await;
    while let Ok(Some(event)) = events.try_recv() {
        printer.print(&event);
    }
    if interrupt.is_fired() {
        return Ok(interrupt.exit_code());
    }
    Ok(if overseer.state() == colony::WorkerState::Failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

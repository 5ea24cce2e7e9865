//! `colony run <plugin> --task …`: one ephemeral worker, its events, its report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use colony::{EventBus, EventFilter, ReportStatus, Runtime, Worker, WorkerSpec};

use crate::print::EventPrinter;

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
    /// The worker's storage folder (conversation, result.json, events.jsonl).
    #[arg(long)]
    storage: Option<PathBuf>,
    /// The worker id.
    #[arg(long, default_value = "worker-1")]
    id: String,
}

pub(crate) async fn run(args: RunArgs, runtime: Runtime, json: bool) -> anyhow::Result<ExitCode> {
    let input: serde_json::Value =
        serde_json::from_str(&args.input).context("--input is not valid JSON")?;
    let plugin = if args.plugin.extension().is_some_and(|e| e == "toml") {
        runtime.load_manifest(&args.plugin).await?
    } else {
        let name = args
            .plugin
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plugin")
            .to_owned();
        runtime.load_plugin(name, &args.plugin).await?
    };
    let bus = EventBus::new();
    let mut events = bus.subscribe(EventFilter::all());
    let mut spec = WorkerSpec::ephemeral(args.id, args.task).with_input(input);
    if let Some(storage) = args.storage {
        spec = spec.with_storage(storage);
    }
    let worker = Worker::new(&plugin, spec, Some(bus))?;
    let printer = EventPrinter::new(json);
    worker.start()?;
    let result = loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => printer.print(&event),
                Err(e) => eprintln!("colony: {e}"),
            },
            result = worker.wait() => break result,
        }
    };
    while let Ok(Some(event)) = events.try_recv() {
        printer.print(&event);
    }
    if json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!("\n{}: {}", result.status, result.summary);
        if let Some(error) = &result.error {
            println!("error: {error}");
        }
    }
    Ok(match result.status {
        ReportStatus::Success | ReportStatus::Partial if result.error.is_none() => {
            ExitCode::SUCCESS
        }
        _ => ExitCode::FAILURE,
    })
}

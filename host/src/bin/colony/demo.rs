//! `colony demo`: a small colony, end to end, with every event printed as it happens.
//!
//! A persistent overseer (the `chat` example) is seeded with a short conversation and
//! started; a fan-out of ephemeral workers (the `echo`, `silent` and `failing` examples)
//! runs in parallel; each worker's SUBAGENT_REPORT is handed to the overseer as a
//! "[WORKER_REPORT] …" turn; finally the overseer is asked to report and is stopped.
//! Nothing is compiled from source at run time: the guests come from `make guests`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use colony::{EventBus, EventFilter, EventType, MessagePart, Plugin, Runtime, Worker, WorkerSpec};
use serde_json::json;

use crate::print::EventPrinter;

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Folder holding the guest components (default: target/wasm32-wasip2/guest, or
    /// $COLONY_PLUGINS).
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// How many summariser workers to fan out (plus one silent and one failing worker).
    #[arg(long, default_value_t = 4)]
    workers: usize,
}

const TEXTS: [&str; 4] = [
    "WebAssembly components give every agent plugin its own sandbox with explicit grants",
    "The overseer fans tasks out to workers and waits for their structured reports",
    "Epoch interruption lets the host stop a guest that never yields to it",
    "Persistent workers keep their state across turns on one live instance",
];

async fn load(runtime: &Runtime, dir: &std::path::Path, name: &str) -> anyhow::Result<Plugin> {
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    if !path.is_file() {
        bail!(
            "guest component {} not found: build the guests first (`make guests`) or pass --plugins",
            path.display()
        );
    }
    Ok(runtime.load_plugin(name, &path).await?)
}

pub(crate) async fn demo(args: DemoArgs, env: crate::Env) -> anyhow::Result<ExitCode> {
    let runtime = env.runtime;
    let json_output = env.json;
    let plugin_dir = args.plugins.unwrap_or_else(crate::default_plugin_dir);
    // The demo keeps its files in a temporary folder unless a home was given.
    let temp;
    let home = match env.home_given {
        true => env.home.clone(),
        false => {
            temp = tempfile::tempdir().context("cannot create a temporary folder")?;
            temp.path().to_owned()
        }
    };
    let mut plugins = HashMap::new();
    for name in ["chat-agent", "echo-agent", "silent-agent", "failing-agent"] {
        plugins.insert(name, load(&runtime, &plugin_dir, name).await?);
    }

    let bus = EventBus::new();
    let printer = EventPrinter::new(json_output);
    let mut events = bus.subscribe(EventFilter::all());

    // The overseer: persistent, seeded, started first.
    let overseer = Worker::new(
        &plugins["chat-agent"],
        WorkerSpec::persistent("overseer", "Coordinate the summarisers")
            .with_colony("demo")
            .with_storage(home.join("overseer")),
        Some(bus.clone()),
    )?;
    overseer.seed_conversation(vec![
        MessagePart::new("user", "Please summarise these notes with a few workers."),
        MessagePart::new(
            "assistant",
            "I will fan the notes out and collect the reports.",
        ),
    ])?;
    overseer.start()?;

    // The fan-out.
    let mut workers = Vec::new();
    for i in 0..args.workers {
        let text = TEXTS[i % TEXTS.len()];
        let spec = WorkerSpec::ephemeral(format!("worker-{}", i + 1), format!("Summarise: {text}"))
            .with_input(json!({"text": text, "max_words": 6}))
            .with_colony("demo")
            .with_storage(home.join(format!("worker-{}", i + 1)));
        workers.push(Worker::new(
            &plugins["echo-agent"],
            spec,
            Some(bus.clone()),
        )?);
    }
    workers.push(Worker::new(
        &plugins["silent-agent"],
        WorkerSpec::ephemeral("worker-silent", "count the words in this sentence")
            .with_colony("demo"),
        Some(bus.clone()),
    )?);
    workers.push(Worker::new(
        &plugins["failing-agent"],
        WorkerSpec::ephemeral("worker-failing", "fetch the quarterly figures").with_colony("demo"),
        Some(bus.clone()),
    )?);
    for worker in &workers {
        worker.start()?;
    }
    overseer.inject("hello overseer, the workers are on their way")?;

    // Print every event; hand each worker report to the overseer as one turn.
    let mut pending_reports = workers.len();
    let mut overseer_turns_expected = 1 + workers.len();
    let mut overseer_turns = 0;
    let mut asked_for_report = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while overseer_turns < overseer_turns_expected {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("the demo did not finish within 60 s")?
            .context("event bus")?;
        printer.print(&event);
        match event.event_type {
            EventType::SubagentReport if event.node_id != "overseer" => {
                let d = &event.data;
                overseer.inject(format!(
                    "[WORKER_REPORT] {}: {} — {}",
                    event.node_id,
                    d["status"].as_str().unwrap_or("?"),
                    d["summary"].as_str().unwrap_or("")
                ))?;
                pending_reports -= 1;
            }
            EventType::TurnCompleted | EventType::TurnFailed if event.node_id == "overseer" => {
                overseer_turns += 1;
            }
            _ => {}
        }
        if pending_reports == 0 && !asked_for_report {
            asked_for_report = true;
            overseer.inject("report")?;
            overseer_turns_expected += 1;
        }
    }
    // The overseer's report to its parent comes right after its last turn.
    if let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
        printer.print(&event);
    }
    let stop = overseer.stop().await;
    while let Ok(Some(event)) = events.try_recv() {
        printer.print(&event);
    }
    if !json_output {
        println!(
            "\noverseer stopped ({}, {:?}); {} workers:",
            if stop.clean { "clean" } else { "aborted" },
            stop.elapsed,
            workers.len()
        );
        for worker in &workers {
            let info = worker.info();
            let summary = info.result.map(|r| r.summary).unwrap_or_default();
            println!("  {:<15} {:<10} {}", info.id, info.state.as_str(), summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}

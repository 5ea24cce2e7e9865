//! `colony demo`: a small colony, end to end, with every event printed as it happens.
//!
//! A persistent overseer (the `chat` example) is seeded with a short conversation and
//! started; a fan-out of ephemeral workers (the `echo`, `silent` and `failing` examples)
//! runs through the colony's queue (at most 4 at once); the colony hands each worker's
//! SUBAGENT_REPORT to the overseer as a "[WORKER_REPORT] …" turn; finally the overseer is
//! asked to report and the colony is stopped. Nothing is compiled from source at run time:
//! the guests come from `make guests`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use colony::{EventFilter, EventType, MessagePart, Plugin, Runtime, Task};
use serde_json::json;

use crate::Env;
use crate::print::{EventPrinter, say};

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Folder holding the guest components (default: target/wasm32-wasip2/guest, or
    /// $COLONY_PLUGINS).
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// How many summariser workers to fan out (plus one silent, one failing and one
    /// agent-loop worker).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// The scripted model responses for the agent-loop worker, used when the host config
    /// names no model provider.
    #[arg(long, default_value = "examples/agents/agent-loop/demo-script.json")]
    script: PathBuf,
}

const TEXTS: [&str; 4] = [
    "WebAssembly components give every agent plugin its own sandbox with explicit grants",
    "The overseer fans tasks out to workers and waits for their structured reports",
    "Epoch interruption lets the host stop a guest that never yields to it",
    "Persistent workers keep their state across turns on one live instance",
];

async fn load(runtime: &Runtime, dir: &std::path::Path, name: &str) -> anyhow::Result<Plugin> {
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    Ok(runtime.load_plugin(name, &path).await?)
}

pub(crate) async fn demo(args: DemoArgs, env: Env) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        env.nats.is_none(),
        "the demo runs in one process; fan tasks out to nodes with `colony --nats URL fanout`"
    );
    let plugin_dir = args.plugins.unwrap_or_else(crate::default_plugin_dir);
    for name in [
        "chat_agent",
        "echo_agent",
        "silent_agent",
        "failing_agent",
        "agent_loop",
    ] {
        let path = plugin_dir.join(format!("{name}.wasm"));
        if !path.is_file() {
            bail!(
                "guest component {} not found: build the guests first (`make guests`) or pass --plugins",
                path.display()
            );
        }
    }
    // The agent loop needs a model: the configured one, else the offline script.
    let env = if env.runtime.has_llm() {
        env
    } else {
        let script = colony::llm::ScriptedProvider::load(&args.script)?;
        let runtime = Runtime::with_parts(
            env.runtime.config().clone(),
            Some(std::sync::Arc::new(script)),
            colony::tools::ToolRegistry::with_builtins(),
        )?;
        Env { runtime, ..env }
    };
    let [chat, echo, silent, failing] = [
        load(&env.runtime, &plugin_dir, "chat-agent").await?,
        load(&env.runtime, &plugin_dir, "echo-agent").await?,
        load(&env.runtime, &plugin_dir, "silent-agent").await?,
        load(&env.runtime, &plugin_dir, "failing-agent").await?,
    ];
    // The demo keeps its files in a temporary folder unless a home was given.
    let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
    let home = if env.home_given {
        env.home.clone()
    } else {
        temp.path().to_owned()
    };
    let env = Env { home, ..env };
    std::fs::create_dir_all(&env.home)
        .with_context(|| format!("cannot create the colony home {}", env.home.display()))?;
    let agent_manifest = env.home.join("agent-loop.toml");
    std::fs::write(
        &agent_manifest,
        format!(
            "component = {:?}\n[grants]\ntools = [\"time.now\", \"files.write\"]\n",
            std::path::absolute(plugin_dir.join("agent_loop.wasm"))?
                .display()
                .to_string()
        ),
    )
    .with_context(|| format!("cannot write {}", agent_manifest.display()))?;
    let agent = env.runtime.load_manifest(&agent_manifest).await?;
    let colony = env.colony(|c| c.id = "demo".into()).await?;
    let printer = EventPrinter::new(env.json);
    let mut events = colony.bus().subscribe(EventFilter::all());

    let overseer = colony.start_overseer(
        &chat,
        "Coordinate the summarisers",
        vec![
            MessagePart::new("user", "Please summarise these notes with a few workers."),
            MessagePart::new(
                "assistant",
                "I will fan the notes out and collect the reports.",
            ),
        ],
    )?;
    overseer.inject("hello overseer, the workers are on their way")?;

    let summaries: Vec<Task> = (0..args.workers)
        .map(|i| {
            let text = TEXTS[i % TEXTS.len()];
            Task::new(format!("Summarise: {text}"))
                .with_input(json!({"text": text, "max_words": 6}))
        })
        .collect();
    let mut ids = Vec::new();
    for batch in summaries.chunks(colony.config().max_batch) {
        ids.extend(colony.run_parallel(&echo, batch.to_vec())?);
    }
    ids.extend(colony.run_parallel(&silent, vec![Task::new("count the words in this sentence")])?);
    ids.extend(colony.run_parallel(&failing, vec![Task::new("fetch the quarterly figures")])?);
    ids.extend(colony.run_parallel(
        &agent,
        vec![Task::new(
            "Summarise the colony's notes into /data/summary.txt",
        )],
    )?);

    // Print every event until the overseer has heard every worker, then ask it to report.
    let mut expected_turns = 1 + ids.len();
    let mut turns = 0;
    let mut asked = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context("the demo did not finish within 60 s")?
            .context("event bus")?;
        printer.print(&event);
        let overseer_event = event.worker_id == overseer.id();
        match event.event_type {
            EventType::TurnCompleted | EventType::TurnFailed if overseer_event => turns += 1,
            EventType::SubagentReport if overseer_event && asked => break,
            _ => {}
        }
        if turns == expected_turns && !asked {
            asked = true;
            overseer.inject("report")?;
            expected_turns += 1;
        }
    }
    let reports = colony
        .wait_for_reports(&ids, Duration::from_secs(5))
        .await?;
    let stops = colony.stop_all().await;
    while let Ok(Some(event)) = events.try_recv() {
        printer.print(&event);
    }
    if !env.json {
        let clean = stops.iter().filter(|(_, s)| s.clean).count();
        say!();
        say!(
            "colony stopped ({clean}/{} clean); {} workers:",
            stops.len(),
            reports.len()
        );
        for r in &reports {
            say!(
                "  {:<14} {:<8} {}",
                r.worker_id,
                r.status.as_str(),
                r.summary
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

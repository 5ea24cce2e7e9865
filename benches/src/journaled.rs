//! Table 8: the journaled colony — what `colony fanout` runs: every worker's states,
//! events, result and report in the journal, committed in batches — beside bare workers
//! of the same guest (no journal) in one run, so the ratio is what journaling costs; and
//! the same colony syncing the journal at every batch (`--fsync`), and not recording its
//! workers' host calls (`ColonyConfig::record = false`).

use std::time::Duration;

use colony::{
    Colony, ColonyConfig, EventBus, EventFilter, EventType, JournalSync, Plugin, Worker, WorkerSpec,
};

const TASKS: usize = 10_000;
const IN_FLIGHT: usize = 64;

async fn bare(plugin: &Plugin) -> Duration {
    let bus = EventBus::new();
    let consumer = crate::consume(&bus);
    let (plugin, b) = (plugin.clone(), bus.clone());
    let (elapsed, _) = crate::closed_loop(TASKS, IN_FLIGHT, move |i| {
        let (plugin, bus) = (plugin.clone(), b.clone());
        async move {
            let spec = WorkerSpec::ephemeral(format!("w{i}"), "count these words");
            let worker = Worker::new(&plugin, spec, Some(bus)).expect("worker");
            worker.start().expect("start");
            worker.wait().await;
        }
    })
    .await;
    drop(bus);
    consumer.await.expect("consumer");
    elapsed
}

async fn journaled(plugin: &Plugin, sync: JournalSync, record: bool) -> Duration {
    let home = tempfile::tempdir().expect("temp dir");
    let mut config = ColonyConfig::new("bench", home.path());
    config.journal_sync = sync;
    config.record = record;
    config.max_batch = TASKS;
    config.max_concurrent_workers = IN_FLIGHT;
    let colony = Colony::open(plugin.runtime().clone(), config).expect("colony");
    let mut reports = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let elapsed = crate::cluster::fan_out(&colony, plugin, TASKS, &mut reports).await;
    colony.stop_all().await;
    elapsed
}

pub async fn table() {
    println!("\n### 8. The journaled colony: {TASKS} echo-agent tasks, {IN_FLIGHT} in flight\n");
    println!("| what | workers/s | ÷ bare workers |\n|---|---|---|");
    let runtime = crate::runtime(1000);
    let plugin = crate::plugin(&runtime, "echo-agent").await;
    let bare = TASKS as f64 / bare(&plugin).await.as_secs_f64();
    println!("| bare workers (no journal) | {bare:.0} | 1.00 |");
    // Each colony row is the best of two runs, the rows' runs interleaved: the machine's
    // drift (and the order rows run in) otherwise moves them more than what they differ by.
    let rows = [
        (
            "colony: journal, host calls not recorded",
            JournalSync::Os,
            false,
        ),
        ("colony: journal, batched commits", JournalSync::Os, true),
        (
            "colony: journal, fsync per batch (`--fsync`)",
            JournalSync::EveryBatch,
            true,
        ),
    ];
    let mut best = [Duration::MAX; 3];
    for _ in 0..2 {
        for (i, (_, sync, record)) in rows.iter().enumerate() {
            best[i] = best[i].min(journaled(&plugin, *sync, *record).await);
        }
    }
    for ((what, ..), elapsed) in rows.iter().zip(best) {
        let colony = TASKS as f64 / elapsed.as_secs_f64();
        println!("| {what} | {colony:.0} | {:.2} |", colony / bare);
    }
}

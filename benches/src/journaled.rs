//! Table 8: the journaled colony — what `colony fanout` runs: every worker's states,
//! events, result and report in the journal, committed in batches — beside bare workers
//! of the same guest (no journal) in one run, so the ratio is what journaling costs; and
//! the same colony syncing the journal at every batch (`--fsync`), and not recording its
//! workers' host calls (`ColonyConfig::record = false`).

use std::time::Duration;

use crate::cpu::CpuTime;

use colony::{
    Colony, ColonyConfig, EventBus, EventFilter, EventType, JournalSync, Plugin, Worker, WorkerSpec,
};

const TASKS: usize = 10_000;
const IN_FLIGHT: usize = 64;

/// How one run went: its wall time and the CPU a worker cost (total, journal writer), µs.
#[derive(Clone, Copy)]
struct Run {
    elapsed: Duration,
    cpu: (f64, f64),
}

impl Run {
    const NONE: Self = Self {
        elapsed: Duration::MAX,
        cpu: (f64::MAX, f64::MAX),
    };

    /// The best of both runs in each measure.
    fn best(self, other: Self) -> Self {
        Self {
            elapsed: self.elapsed.min(other.elapsed),
            cpu: (self.cpu.0.min(other.cpu.0), self.cpu.1.min(other.cpu.1)),
        }
    }

    fn row(&self, what: &str, bare: &Run) -> String {
        let rate = TASKS as f64 / self.elapsed.as_secs_f64();
        let bare_rate = TASKS as f64 / bare.elapsed.as_secs_f64();
        format!(
            "| {what} | {rate:.0} | {:.2} | {:.1} | {:.1} |",
            rate / bare_rate,
            self.cpu.0,
            self.cpu.1
        )
    }
}

async fn bare(plugin: &Plugin) -> Run {
    let before = CpuTime::now();
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
    Run {
        elapsed,
        cpu: CpuTime::now().per_item_since(before, TASKS),
    }
}

async fn journaled(plugin: &Plugin, sync: JournalSync, record: bool) -> Run {
    let before = CpuTime::now();
    let home = tempfile::tempdir().expect("temp dir");
    let mut config = ColonyConfig::new("bench", home.path());
    config.journal_sync = sync;
    config.record = record;
    config.max_batch = TASKS;
    config.max_concurrent_workers = IN_FLIGHT;
    let colony = Colony::open(plugin.runtime().clone(), config).expect("colony");
    let reports = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let (elapsed, _) = crate::cluster::fan_out(&colony, plugin, TASKS, reports).await;
    // Read before the colony is dropped: its journal thread's time goes with it.
    let cpu = CpuTime::now().per_item_since(before, TASKS);
    colony.stop_all().await;
    Run { elapsed, cpu }
}

pub async fn table() {
    println!("\n### 8. The journaled colony: {TASKS} echo-agent tasks, {IN_FLIGHT} in flight\n");
    println!(
        "| what | workers/s | ÷ bare workers | CPU µs/worker | of it, journal writer µs |\n|---|---|---|---|---|"
    );
    let runtime = crate::runtime(1000);
    let plugin = crate::plugin(&runtime, "echo-agent").await;
    let bare = bare(&plugin).await;
    println!("{}", bare.row("bare workers (no journal)", &bare));
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
    let mut best = [Run::NONE; 3];
    for _ in 0..2 {
        for (i, (_, sync, record)) in rows.iter().enumerate() {
            best[i] = best[i].best(journaled(&plugin, *sync, *record).await);
        }
    }
    for ((what, ..), run) in rows.iter().zip(best) {
        println!("{}", run.row(what, &bare));
    }
}

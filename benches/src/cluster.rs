//! Table 7: the same fan-out through NATS JetStream nodes — one, then three — beside the
//! in-process colony, in one run. The nodes run in this process (each with its own NATS
//! connection, as separate `colony node` processes would have); the server is a real
//! `nats-server -js` on loopback, started here.

use std::time::Instant;

use colony::cluster::{Cluster, LocalNats, Node, NodeConfig};
use colony::{Colony, ColonyConfig, EventFilter, EventType, Plugin, Task};
use tokio_util::sync::CancellationToken;

use crate::percentiles;

const TASKS: usize = 2000;
const LATENCY_SAMPLES: usize = 200;
const SLOTS_PER_NODE: usize = 32;

/// Fans `count` tasks out on `colony` and waits for their reports on `reports`; how long
/// it took, and the subscription back. The reports are awaited on a runtime thread, as
/// the bare rows' workers are: awaited on the `block_on` thread, every report would wake
/// that thread from its park (≈ 10 µs a report on this machine, a tenth of a colony
/// worker's cost).
pub async fn fan_out(
    colony: &Colony,
    plugin: &Plugin,
    count: usize,
    mut reports: colony::Subscription,
) -> (std::time::Duration, colony::Subscription) {
    let begun = Instant::now();
    let tasks = (0..count).map(|i| Task::new(format!("task {i}"))).collect();
    let ids = colony.run_parallel(plugin, tasks).expect("fan out");
    let reports = tokio::spawn(async move {
        for _ in 0..ids.len() {
            reports.recv().await.expect("report");
        }
        reports
    })
    .await
    .expect("report waiter");
    (begun.elapsed(), reports)
}

/// Runs `tasks` tasks, then `LATENCY_SAMPLES` single tasks one after another; one row.
async fn measure(name: &str, colony: &Colony, plugin: &Plugin) -> String {
    let reports = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let (elapsed, mut reports) = fan_out(colony, plugin, TASKS, reports).await;
    let throughput = TASKS as f64 / elapsed.as_secs_f64();
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let begun = Instant::now();
        let ids = colony
            .run_parallel(plugin, vec![Task::new(format!("single {i}"))])
            .expect("run");
        loop {
            if reports.recv().await.expect("report").worker_id == ids[0] {
                break;
            }
        }
        latencies.push(begun.elapsed());
    }
    let (p50, p99) = percentiles(&mut latencies);
    format!(
        "| {name} | {TASKS} | {throughput:.0} | {:.2} | {:.2} |",
        p50 / 1e3,
        p99 / 1e3
    )
}

fn config(id: &str, home: &std::path::Path, in_flight: usize) -> ColonyConfig {
    let mut config = ColonyConfig::new(id, home);
    config.max_batch = TASKS;
    config.max_concurrent_workers = in_flight;
    config
}

pub async fn cluster() {
    println!("\n### 7. Scale-out: the same fan-out in-process and through NATS nodes\n");
    let store = tempfile::tempdir().expect("temp dir");
    let nats = match LocalNats::start(store.path()) {
        Ok(nats) => nats,
        Err(e) => {
            println!("(skipped: {e})");
            return;
        }
    };
    println!(
        "{TASKS} echo-agent tasks fanned out at once, then {LATENCY_SAMPLES} single tasks one \
         after another (latency: run_parallel → SUBAGENT_REPORT on the colony's bus). \
         {SLOTS_PER_NODE} slots per node; the colony keeps as many tasks in flight as the \
         nodes have slots.\n"
    );
    println!("| backend | tasks | workers/s | latency p50 (ms) | latency p99 (ms) |");
    println!("|---|---|---|---|---|");
    let home = tempfile::tempdir().expect("temp dir");
    let runtime = crate::runtime(1000);
    let plugin = crate::plugin(&runtime, "echo-agent").await;

    let local = Colony::open(
        runtime.clone(),
        config("bench-local", &home.path().join("local"), SLOTS_PER_NODE),
    )
    .expect("colony");
    println!("{}", measure("in-process colony", &local, &plugin).await);
    local.stop_all().await;

    for nodes in [1, 3] {
        let shutdown = CancellationToken::new();
        let mut running = Vec::new();
        for n in 0..nodes {
            let name = format!("bench-{nodes}-{n}");
            let cluster = Cluster::connect(nats.url(), &name).await.expect("connect");
            let node_config = NodeConfig {
                slots: SLOTS_PER_NODE,
                ..NodeConfig::new(&name, home.path().join(&name))
            };
            let node = Node::new(cluster, vec![plugin.clone()], node_config)
                .await
                .expect("node");
            running.push(tokio::spawn(node.run(shutdown.clone())));
        }
        let mut config = config(
            &format!("bench-{nodes}"),
            &home.path().join(format!("colony-{nodes}")),
            SLOTS_PER_NODE * nodes,
        );
        config.nats = Some(nats.url().to_owned());
        let colony = Colony::connect(runtime.clone(), config)
            .await
            .expect("colony on NATS");
        let label = format!("NATS, {nodes} node{}", if nodes == 1 { "" } else { "s" });
        println!("{}", measure(&label, &colony, &plugin).await);
        colony.stop_all().await;
        shutdown.cancel();
        for node in running {
            let _ = node.await;
        }
    }
}

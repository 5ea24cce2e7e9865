//! Table 1, ephemeral throughput: spawn → SUBAGENT_REPORT, each Colony row beside its
//! baselines measured in the same run — the same guest run by wasmtime alone (what a
//! sandbox costs without Colony: [`crate::wasmtime_alone`]), the bare-tokio floor (a task
//! that publishes the same report on the same bus: what no sandbox at all costs) and the
//! reference Python `Worker` on asyncio (no sandbox either) — with the ratio to each.

use colony::{AgentEvent, AllocatorChoice, EventBus, EventType, Runtime, RuntimeConfig};
use serde_json::json;

/// One measured row: throughput and latency percentiles.
struct Measured {
    per_s: f64,
    p50: f64,
    p99: f64,
}

impl Measured {
    fn parse(row: &str) -> Option<Self> {
        // "| name | concurrency | per_s | p50 | p99 |"
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        Some(Self {
            per_s: cells.get(3)?.parse().ok()?,
            p50: cells.get(4)?.parse().ok()?,
            p99: cells.get(5)?.parse().ok()?,
        })
    }
}

pub async fn table() {
    let pooled = crate::runtime(1000);
    let on_demand = Runtime::with_config(RuntimeConfig {
        allocator: AllocatorChoice::OnDemand,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let pooled_name = format!(
        "colony, silent-agent guest ({:?} allocator)",
        pooled.allocator()
    );
    let pooled_guest = crate::plugin(&pooled, "silent-agent").await;
    let on_demand_guest = crate::plugin(&on_demand, "silent-agent").await;
    let alone = crate::wasmtime_alone::WasmtimeAlone::new(&crate::guest("silent-agent"))
        .expect("the silent guest in wasmtime alone");
    println!("\n### 1. Ephemeral workers: spawn → SUBAGENT_REPORT published\n");
    println!(
        "| what | concurrency | workers/s | p50 µs | p99 µs | ÷ wasmtime alone | ÷ floor | ÷ reference |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for concurrency in [1usize, 64] {
        let total = if concurrency == 1 { 5_000 } else { 20_000 };
        let floor = floor(total, concurrency).await;
        let alone = crate::wasmtime_alone::row(&alone, total, concurrency).await;
        let reference = python_reference(total.min(10_000), concurrency);
        let rows = [
            (
                pooled_name.as_str(),
                crate::colony_row(&pooled_name, &pooled_guest, total, concurrency).await,
            ),
            (
                "colony, silent-agent guest (on-demand allocator)",
                crate::colony_row("", &on_demand_guest, total, concurrency).await,
            ),
            ("wasmtime alone: same guest and pool, no Colony", alone),
            ("floor: bare tokio task + bus", floor),
        ];
        let per_s = |row: &str| Measured::parse(row).map(|m| m.per_s);
        let baselines = Baselines {
            alone: per_s(&rows[2].1),
            floor: per_s(&rows[3].1),
            reference: reference.as_ref().map(|m| m.per_s),
        };
        for (name, row) in &rows {
            print_row(name, concurrency, row, &baselines);
        }
        match reference {
            Some(m) => println!(
                "| reference Python Worker (asyncio) | {concurrency} | {:.0} | {:.1} | {:.1} | {} | {} | 1.00 |",
                m.per_s,
                m.p50,
                m.p99,
                ratio(Some(m.per_s), baselines.alone),
                ratio(Some(m.per_s), baselines.floor)
            ),
            None => println!(
                "| reference Python Worker (asyncio) | {concurrency} | python3 unavailable | - | - | - | - | - |"
            ),
        }
    }
}

/// The rates every row of one concurrency is divided by.
struct Baselines {
    alone: Option<f64>,
    floor: Option<f64>,
    reference: Option<f64>,
}

fn print_row(name: &str, concurrency: usize, row: &str, baselines: &Baselines) {
    let Some(m) = Measured::parse(row) else {
        println!("| {name} | {concurrency} | unmeasured | - | - | - | - | - |");
        return;
    };
    let of = |baseline| ratio(Some(m.per_s), baseline);
    println!(
        "| {name} | {concurrency} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
        m.per_s,
        m.p50,
        m.p99,
        of(baselines.alone),
        of(baselines.floor),
        of(baselines.reference)
    );
}

/// `a ÷ b` to two places, or "-" when either is missing.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".to_owned(),
    }
}

/// The floor: a tokio task that publishes the same report on a bus, nothing else.
async fn floor(total: usize, concurrency: usize) -> String {
    let bus = EventBus::new();
    let consumer = crate::consume(&bus);
    let b = bus.clone();
    let (elapsed, mut lat) = crate::closed_loop(total, concurrency, move |i| {
        let bus = b.clone();
        async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let id = format!("w{i}");
                bus.publish(AgentEvent {
                    event_type: EventType::SubagentReport,
                    stream_id: id.clone(),
                    worker_id: id.clone(),
                    execution_id: id.clone(),
                    data: json!({"worker_id": id, "colony_id": "", "task": "count these words",
                        "status": "success", "summary": "Completed task 'count these words' with 2 outputs.",
                        "data": {"words": 3, "shout": "COUNT THESE WORDS"}, "error": null,
                        "duration_seconds": 0.0, "tokens_used": 0}),
                    timestamp: chrono::Utc::now(),
                });
                let _ = tx.send(());
            });
            rx.await.unwrap();
        }
    })
    .await;
    drop(bus);
    consumer.await.unwrap();
    crate::row("floor", concurrency, total, elapsed, &mut lat)
}

/// The reference Python `Worker` on asyncio, run as a subprocess.
fn python_reference(total: usize, concurrency: usize) -> Option<Measured> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/reference_worker.py");
    let output = std::process::Command::new("python3")
        .args([
            script,
            "--total",
            &total.to_string(),
            "--concurrency",
            &concurrency.to_string(),
        ])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    Some(Measured {
        per_s: v["workers_per_s"].as_f64()?,
        p50: v["p50_us"].as_f64()?,
        p99: v["p99_us"].as_f64()?,
    })
}

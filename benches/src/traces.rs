//! Table 11, traces: the same ephemeral workers (table 1's silent-agent guest) with
//! tracing off — the default — and on (every worker's `invoke_agent` span and its
//! events, exported by the SDK's batch thread to a trace file), rows alternated so the
//! machine's drift hits both alike.

use colony::{Runtime, RuntimeConfig};

pub async fn table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let off = crate::runtime(1000);
    let mut config = RuntimeConfig {
        pool_instances: 1000,
        ..RuntimeConfig::default()
    };
    config.telemetry.file = Some(dir.path().join("spans.jsonl"));
    let on = Runtime::with_config(config).expect("runtime");
    assert!(off.telemetry().is_none() && on.telemetry().is_some());
    let off_guest = crate::plugin(&off, "silent-agent").await;
    let on_guest = crate::plugin(&on, "silent-agent").await;
    println!("\n### 11. Traces: ephemeral workers with tracing off (default) and on\n");
    println!(
        "| what | concurrency | workers/s | p50 µs | p99 µs |\n\
         |---|---|---|---|---|"
    );
    for concurrency in [1usize, 64] {
        let total = if concurrency == 1 { 5_000 } else { 20_000 };
        for round in 1..=2 {
            let name = format!("tracing off (round {round})");
            println!(
                "{}",
                crate::colony_row(&name, &off_guest, total, concurrency).await
            );
            let name = format!("tracing on, spans to a file (round {round})");
            println!(
                "{}",
                crate::colony_row(&name, &on_guest, total, concurrency).await
            );
        }
    }
    let telemetry = on.telemetry().expect("on").clone();
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    let bytes = std::fs::metadata(dir.path().join("spans.jsonl")).map_or(0, |m| m.len());
    println!("\n(spans written: {:.1} MB)", bytes as f64 / 1e6);
}

//! Read amplification, measured: 50 workers at once append a conversation larger than
//! their memory limit and read it back page by page. The host hands each a page at a
//! time, never the whole conversation, so the process grows by at most
//! 50 × (memory limit + host memory budget) — read from `/proc/self/status`.
//!
//! A test binary of its own: no other test's allocations share the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use colony::{ReportStatus, Runtime, RuntimeConfig, Worker, WorkerSpec};
use colony_tests::guest_path;
use serde_json::json;

const MIB: u64 = 1 << 20;

/// The process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_workers_reading_back_large_conversations_stay_within_their_budgets() {
    const WORKERS: usize = 50;
    let memory = 16 * MIB;
    let host_budget = 4 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("reader.toml");
    std::fs::write(
        &manifest,
        format!(
            "name = \"reader\"\ncomponent = {:?}\n[limits]\nmemory_bytes = {memory}\n\
             host_memory_bytes = {host_budget}\ndisk_bytes = {}\n",
            guest_path("hostile-fixture").display().to_string(),
            24 * MIB
        ),
    )
    .unwrap();
    let runtime = Runtime::with_config(RuntimeConfig {
        cache_dir: Some(dir.path().join("cache")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = runtime
        .plugin_from_manifest(colony::Manifest::load(&manifest).unwrap())
        .unwrap();
    // 20 parts of (almost) 1 MiB, the most one part may hold: more than the memory limit and five times the host budget.
    let input = |attack: &str| json!({"attack": attack, "parts": 20, "part_bytes": MIB - 4096, "rounds": 2});
    let spec = |i: usize| {
        WorkerSpec::ephemeral(format!("reader-{i}"), "read it all back")
            .with_input(input("read-amplification"))
            .with_storage(dir.path().join(format!("workers/{i}")))
    };
    // Warm up: compile, fill the instance pool's first slots.
    let warm = Worker::new(&plugin, spec(999), None).unwrap();
    assert_eq!(warm.run().await.unwrap().status, ReportStatus::Success);

    let baseline = rss();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let workers: Vec<Worker> = (0..WORKERS)
        .map(|i| Worker::new(&plugin, spec(i), None).unwrap())
        .collect();
    for w in &workers {
        w.start().unwrap();
    }
    for w in &workers {
        let result = tokio::time::timeout(Duration::from_secs(120), w.wait())
            .await
            .expect("the reader ends");
        assert_eq!(result.status, ReportStatus::Success, "{result:?}");
        let out = &result.output;
        assert_eq!(out["appended"], 20, "{out:?}");
        assert_eq!(out["read"], 20, "every part came back: {out:?}");
        assert!(out["pages"].as_u64().unwrap() >= 2 * 20 / 2, "{out:?}");
        assert!(
            out["largest_page"].as_u64().unwrap() <= host_budget,
            "{out:?}"
        );
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let grown = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    let bound = WORKERS as u64 * (memory + host_budget);
    eprintln!(
        "{WORKERS} readers: RSS grew by {} MiB at peak (bound {} MiB)",
        grown / MIB,
        bound / MIB
    );
    assert!(grown <= bound, "RSS grew by {grown} bytes, bound {bound}");
}

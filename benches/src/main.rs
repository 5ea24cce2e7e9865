//! Colony's benchmarks, each measured side by side with its baseline in the same run.
//! Run with `cargo run --release -p colony-bench` (after `make guests`); the output is
//! the Markdown tables of BENCHMARKS.md. `colony-bench <name>…` runs some of them:
//! `ephemeral`, `injection`, `memory`, `stop`, `load`, `hostcall`, `cluster`, `journaled`,
//! `fanout`.

mod cluster;
mod cpu;
mod ephemeral;
mod fanout;
mod injection;
mod journaled;
mod traces;
mod wasmtime_alone;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use colony::{
    AllocatorChoice, EventBus, EventFilter, EventType, Plugin, Runtime, RuntimeConfig, Worker,
    WorkerSpec,
};
use serde_json::json;

fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("COLONY_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/wasm32-wasip2/guest"
            ))
        });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "{} missing: run `make guests` first",
        path.display()
    );
    path
}

/// Latency percentiles of `samples` (sorted in place), in microseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

fn runtime(pool: u32) -> Runtime {
    Runtime::with_config(RuntimeConfig {
        pool_instances: pool,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

async fn plugin(runtime: &Runtime, name: &str) -> Plugin {
    runtime
        .load_plugin(name, guest(name))
        .await
        .expect("plugin")
}

/// Drains every event of `bus` in the background, as a real subscriber would.
fn consume(bus: &EventBus) -> tokio::task::JoinHandle<u64> {
    let mut sub = bus.subscribe(EventFilter::all());
    tokio::spawn(async move {
        let mut n = 0;
        while sub.recv().await.is_ok() {
            n += 1;
        }
        n
    })
}

/// Runs `total` jobs with `concurrency` in flight; returns (elapsed, latencies).
async fn closed_loop<F, Fut>(total: usize, concurrency: usize, job: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let begun = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (job, next) = (job.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return latencies;
                }
                let t = Instant::now();
                job(i).await;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (begun.elapsed(), latencies)
}

fn row(
    name: &str,
    concurrency: usize,
    total: usize,
    elapsed: Duration,
    latencies: &mut [Duration],
) -> String {
    let (p50, p99) = percentiles(latencies);
    format!(
        "| {name} | {concurrency} | {:.0} | {p50:.1} | {p99:.1} |",
        total as f64 / elapsed.as_secs_f64()
    )
}

/// Ephemeral workers of `plugin` in a closed loop; one table row.
async fn colony_row(name: &str, plugin: &Plugin, total: usize, concurrency: usize) -> String {
    let bus = EventBus::new();
    let consumer = consume(&bus);
    let (plugin, b) = (plugin.clone(), bus.clone());
    let (elapsed, mut lat) = closed_loop(total, concurrency, move |i| {
        let (plugin, bus) = (plugin.clone(), b.clone());
        async move {
            let spec = WorkerSpec::ephemeral(format!("w{i}"), "count these words");
            let w = Worker::new(&plugin, spec, Some(bus)).unwrap();
            w.start().unwrap();
            w.wait().await;
        }
    })
    .await;
    drop(bus);
    consumer.await.unwrap();
    row(name, concurrency, total, elapsed, &mut lat)
}

/// For profiling: 100,000 pooled ephemeral workers at concurrency 64, nothing else, with
/// the CPU a worker cost (µs, all threads) — steadier than the rate on a noisy machine.
async fn cycle() {
    const WORKERS: usize = 100_000;
    let pooled = runtime(1000);
    let guest = plugin(&pooled, "silent-agent").await;
    let before = cpu::CpuTime::now();
    let row = colony_row("cycle", &guest, WORKERS, 64).await;
    let (cpu, _) = cpu::CpuTime::now().per_item_since(before, WORKERS);
    println!("{row} {cpu:.1} CPU µs/worker |");
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// 3. Memory: RSS of N idle persistent overseers.
async fn memory() {
    println!("\n### 3. Memory: idle persistent workers (after their initial run)\n");
    println!("| workers | allocator | RSS added | bytes per worker |\n|---|---|---|---|");
    for n in [100usize, 1_000, 10_000] {
        for allocator in [AllocatorChoice::Pooling, AllocatorChoice::OnDemand] {
            let runtime = match Runtime::with_config(RuntimeConfig {
                pool_instances: n as u32 + 10,
                allocator,
                ..RuntimeConfig::default()
            }) {
                Ok(r) => r,
                Err(e) => {
                    println!("| {n} | {allocator:?} | refused: {e} | - |");
                    continue;
                }
            };
            let chat = plugin(&runtime, "chat-agent").await;
            let bus = EventBus::new();
            let mut ready = bus.subscribe(EventFilter::all().types([EventType::SubagentReport]));
            let before = rss_bytes();
            let mut pool = Vec::with_capacity(n);
            for i in 0..n {
                let w = Worker::new(
                    &chat,
                    WorkerSpec::persistent(format!("o{i}"), ""),
                    Some(bus.clone()),
                )
                .unwrap();
                w.start().unwrap();
                pool.push(w);
            }
            let mut failed = 0;
            for _ in 0..n {
                let e = ready.recv().await.unwrap();
                if e.data["status"] != "success" {
                    failed += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let added = rss_bytes().saturating_sub(before);
            if failed > 0 {
                println!("| {n} | {allocator:?} | {failed} workers failed to start | - |");
            } else {
                println!(
                    "| {n} | {allocator:?} | {:.1} MiB | {} |",
                    added as f64 / (1 << 20) as f64,
                    added / n as u64
                );
            }
            for w in &pool {
                w.stop().await;
            }
        }
    }
}

/// 4. Stop latency of a guest spinning in `loop {}`.
async fn stop() {
    let runtime = runtime(100);
    let probe = plugin(&runtime, "probe-fixture").await;
    let bus = EventBus::new();
    let mut latencies = Vec::new();
    for i in 0..1000 {
        let mut started = bus.subscribe(
            EventFilter::all()
                .types([EventType::ExecutionStarted])
                .worker(format!("s{i}")),
        );
        let spec =
            WorkerSpec::ephemeral(format!("s{i}"), "spin").with_input(json!({"action": "spin"}));
        let w = Worker::new(&probe, spec, Some(bus.clone())).unwrap();
        w.start().unwrap();
        started.recv().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let t = Instant::now();
        let outcome = w.stop().await;
        latencies.push(t.elapsed());
        assert!(outcome.clean);
    }
    let (p50, p99) = percentiles(&mut latencies);
    let max = latencies.last().unwrap().as_secs_f64() * 1e3;
    println!("\n### 4. Stop: stop() → STOPPED for a guest spinning in `loop {{}}`\n");
    println!(
        "| stops | p50 µs | p99 µs | max ms |\n|---|---|---|---|\n| 1000 | {p50:.0} | {p99:.0} | {max:.2} |"
    );
}

/// 5. Component load: cold compile vs the precompiled cache, then worker start-up.
async fn load() {
    println!("\n### 5. Component load: cold compile vs precompiled cache, and worker start-up\n");
    println!(
        "| guest | size | cold compile ms | from cache ms | first worker ms | next workers ms |"
    );
    println!("|---|---|---|---|---|---|");
    let lang = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/lang-guests"
    ));
    let guests = [
        ("rust worker", guest("rust-worker")),
        ("c worker", lang.join("c_worker.wasm")),
        ("javascript worker", lang.join("js_worker.wasm")),
        ("python worker", lang.join("py_worker.wasm")),
    ];
    for (name, path) in guests {
        if !path.is_file() {
            println!("| {name} | missing: `make lang-guests` | - | - | - | - |");
            continue;
        }
        let cache = tempfile::tempdir().unwrap();
        let config = RuntimeConfig {
            cache_dir: Some(cache.path().to_owned()),
            ..RuntimeConfig::default()
        };
        let reps = if std::fs::metadata(&path).unwrap().len() > 1 << 20 {
            2
        } else {
            5
        };
        let (mut cold, mut warm, mut first, mut next) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for rep in 0..reps {
            let _ = std::fs::remove_dir_all(cache.path());
            let runtime = Runtime::with_config(config.clone()).unwrap();
            let t = Instant::now();
            let p = runtime.load_plugin(name, &path).await.unwrap();
            cold.push(t.elapsed());
            assert_eq!(p.from_cache(), Some(false));
            let runtime = Runtime::with_config(config.clone()).unwrap();
            let t = Instant::now();
            let p = runtime.load_plugin(name, &path).await.unwrap();
            warm.push(t.elapsed());
            assert_eq!(p.from_cache(), Some(true));
            for i in 0..11 {
                let w = Worker::new(
                    &p,
                    WorkerSpec::ephemeral(format!("l{rep}-{i}"), "start"),
                    None,
                )
                .unwrap();
                let t = Instant::now();
                w.run().await.unwrap();
                if i == 0 {
                    first.push(t.elapsed())
                } else {
                    next.push(t.elapsed())
                }
            }
        }
        let size = std::fs::metadata(&path).unwrap().len();
        let ms = |v: &mut Vec<Duration>| percentiles(v).0 / 1e3;
        println!(
            "| {name} | {} KB | {:.1} | {:.1} | {:.2} | {:.2} |",
            size / 1024,
            ms(&mut cold),
            ms(&mut warm),
            ms(&mut first),
            ms(&mut next)
        );
    }
}

/// 6. 1,000 workers each waiting 100 ms in a host call.
async fn hostcall() {
    let runtime = runtime(1100);
    let probe = plugin(&runtime, "probe-fixture").await;
    println!("\n### 6. Host-call concurrency: 1,000 workers each in a 100 ms host call\n");
    println!("| workers | total ms | vs 100 ms |\n|---|---|---|");
    for round in 0..2 {
        let bus = EventBus::new();
        let workers: Vec<Worker> = (0..1000)
            .map(|i| {
                let spec = WorkerSpec::ephemeral(format!("h{round}-{i}"), "wait")
                    .with_input(json!({"action": "wait_ms", "ms": 100}));
                Worker::new(&probe, spec, Some(bus.clone())).unwrap()
            })
            .collect();
        let t = Instant::now();
        for w in &workers {
            w.start().unwrap();
        }
        for w in &workers {
            w.wait().await;
        }
        let total = t.elapsed().as_secs_f64() * 1e3;
        if round == 1 {
            println!("| 1000 | {total:.0} | {:.2}× |", total / 100.0);
        }
    }
}

/// The same allocator as the `colony` binary, so the rows measure what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // A captured backtrace on every dropped guest future costs microseconds per worker.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: set before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    tokio::runtime::Runtime::new()
        .expect("tokio runtime")
        .block_on(run());
}

async fn run() {
    let all = [
        "ephemeral",
        "injection",
        "memory",
        "stop",
        "load",
        "hostcall",
        "cluster",
        "journaled",
        "fanout",
        "traces",
        "cycle",
    ];
    let chosen: Vec<String> = std::env::args().skip(1).collect();
    // `cycle` (pooled workers only, for profiling) runs only when asked for.
    let run =
        |name: &str| (chosen.is_empty() && name != "cycle") || chosen.iter().any(|c| c == name);
    println!(
        "Colony benchmarks — {} — {} cores",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for name in all {
        if !run(name) {
            continue;
        }
        match name {
            "ephemeral" => ephemeral::table().await,
            "injection" => injection::table().await,
            "memory" => memory().await,
            "stop" => stop().await,
            "load" => load().await,
            "cycle" => cycle().await,
            "cluster" => cluster::cluster().await,
            "journaled" => journaled::table().await,
            "fanout" => fanout::table().await,
            "traces" => traces::table().await,
            _ => hostcall().await,
        }
    }
}

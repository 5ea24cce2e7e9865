//! Table 9: `colony fanout` end to end, as a user runs it — process start, plugin from
//! the compile cache, 10,000 tasks journaled, summary — beside the reference Python
//! `Worker` running the same number of tasks in its own process (no sandbox, no journal),
//! wall time of each process, in the same run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TASKS: usize = 10_000;
const IN_FLIGHT: usize = 64;

pub async fn table() {
    println!(
        "\n### 9. `colony fanout` end to end: {TASKS} echo-agent tasks, {IN_FLIGHT} in flight\n"
    );
    println!("| what | wall s | tasks/s | ÷ reference |\n|---|---|---|---|");
    let reference = python_reference();
    let Some(binary) = colony_binary() else {
        println!("| colony fanout | `colony` not built: cargo build --release -p colony | - | - |");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let tasks = dir.path().join("tasks.txt");
    let lines: String = (0..TASKS)
        .map(|i| format!("count the words of task {i}\n"))
        .collect();
    std::fs::write(&tasks, lines).expect("tasks file");
    // A first, small fan-out fills the compile cache, as any earlier run would have.
    let warm = dir.path().join("warm.txt");
    std::fs::write(&warm, "warm up\n").expect("tasks file");
    if let Err(e) = fanout(&binary, dir.path(), "warm", &warm, &[]) {
        println!("| colony fanout | failed: {e} | - | - |");
        return;
    }
    for (what, flags) in [
        ("colony fanout", &[][..]),
        ("colony fanout --fsync", &["--fsync"][..]),
    ] {
        match fanout(&binary, dir.path(), what, &tasks, flags) {
            Ok(wall) => {
                let secs = wall.as_secs_f64();
                let ratio = reference.map_or("-".to_owned(), |r| format!("{:.2}", r / secs));
                println!(
                    "| {what} | {secs:.2} | {:.0} | {ratio} |",
                    TASKS as f64 / secs
                );
            }
            Err(e) => println!("| {what} | failed: {e} | - | - |"),
        }
    }
    match reference {
        Some(secs) => println!(
            "| reference Python Worker (asyncio, one process) | {secs:.2} | {:.0} | 1.00 |",
            TASKS as f64 / secs
        ),
        None => println!("| reference Python Worker | python3 unavailable | - | - |"),
    }
}

/// The `colony` binary built beside this one.
fn colony_binary() -> Option<PathBuf> {
    let binary = std::env::current_exe().ok()?.with_file_name("colony");
    binary.is_file().then_some(binary)
}

/// Runs `colony fanout` of `tasks` in a fresh home under `dir`; its wall time.
fn fanout(
    binary: &Path,
    dir: &Path,
    name: &str,
    tasks: &Path,
    flags: &[&str],
) -> Result<Duration, String> {
    let home = dir.join(name.replace(' ', "-"));
    let begun = Instant::now();
    let status = Command::new(binary)
        .arg("--home")
        .arg(&home)
        .args(flags)
        .arg("fanout")
        .arg(crate::guest("echo-agent"))
        .arg("--tasks")
        .arg(tasks)
        .args(["--max-concurrency", &IN_FLIGHT.to_string(), "--json"])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    let wall = begun.elapsed();
    status
        .success()
        .then_some(wall)
        .ok_or_else(|| format!("exit {status}"))
}

/// Wall seconds of the reference Python `Worker` running [`TASKS`] tasks in its process.
fn python_reference() -> Option<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/reference_worker.py");
    let begun = Instant::now();
    let status = Command::new("python3")
        .args([
            script,
            "--total",
            &TASKS.to_string(),
            "--concurrency",
            &IN_FLIGHT.to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| begun.elapsed().as_secs_f64())
}

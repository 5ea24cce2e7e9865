//! An MCP server the host spawned does not outlive a host killed with `kill -9`: a
//! `colony run` whose guest waits in a call to the hostile server's `hang` tool is
//! killed, and the server process goes with it (the kernel's parent-death signal) —
//! even a server that, unlike a well-behaved one, stays on once its stdin closes.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::*;

/// The process ids whose parent is `parent` and whose command line mentions `needle`.
fn children(parent: u32, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let (Ok(stat), Ok(cmdline)) = (
            std::fs::read_to_string(entry.path().join("stat")),
            std::fs::read(entry.path().join("cmdline")),
        ) else {
            continue;
        };
        // The fields after the command name (which may hold spaces) in parentheses.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == parent && String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` still runs (a zombie nobody reaped has ended).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        !after.starts_with('Z') && !after.starts_with('X')
    })
}

#[test]
fn a_server_spawned_by_a_host_killed_with_sigkill_dies_too() {
    let python = target_dir().join("mcpvenv/bin/python");
    assert!(python.exists(), "run `make mcp-servers` first");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/mcp-servers/hostile_server.py")
        .canonicalize()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    std::fs::write(
        &config,
        format!(
            "[mcp.bad]\ncommand = {:?}\nargs = [{:?}, \"--linger\"]\nstart_timeout = \"30s\"\n",
            python.display().to_string(),
            script.display().to_string()
        ),
    )
    .unwrap();
    let manifest = dir.path().join("caller.toml");
    std::fs::write(
        &manifest,
        format!(
            "component = {:?}\n[grants]\ntools = [\"mcp:bad\"]\n",
            guest("hostile_fixture").display().to_string()
        ),
    )
    .unwrap();
    let mut host = Command::new(env!("CARGO_BIN_EXE_colony"))
        .arg("--home")
        .arg(dir.path().join("home"))
        .arg("--config")
        .arg(&config)
        .args(["--no-cache", "run", "--task", "hang"])
        .arg(&manifest)
        .args([
            "--input",
            r#"{"attack": "tool", "arg": "mcp:bad/hang", "args": {}}"#,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let begun = Instant::now();
    let server = loop {
        if let Some(&pid) = children(host.id(), "hostile_server.py").first() {
            break pid;
        }
        assert!(
            host.try_wait().unwrap().is_none(),
            "the host ended before it spawned the server"
        );
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "no server spawned"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the call reach the server (it never answers), then kill the host outright.
    std::thread::sleep(Duration::from_secs(2));
    assert!(alive(server));
    host.kill().unwrap(); // SIGKILL: no destructor runs
    host.wait().unwrap();

    let killed = Instant::now();
    while alive(server) {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "MCP server {server} outlived its host"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! The `colony` command: against a guest whose log line and error hold terminal escape
//! sequences, carriage returns and a forged line (text output shows them inert, `--json`
//! keeps them exact); chat ending with stdin; Ctrl-C and SIGTERM stopping a fan-out
//! gracefully.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A guest built by `make guests`.
fn guest(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join(format!("wasm32-wasip2/guest/{name}.wasm"));
    assert!(path.is_file(), "build the guests first: make guests");
    path
}

/// The hostile fixture.
fn hostile() -> PathBuf {
    guest("hostile_fixture")
}

fn run(json: bool) -> (Vec<u8>, Vec<u8>, bool) {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_colony"));
    command.arg("--home").arg(home.path());
    if json {
        command.arg("--json");
    }
    let out = command
        .arg("run")
        .arg(hostile())
        .args([
            "--task",
            "print nasty text",
            "--input",
            r#"{"attack": "escapes"}"#,
        ])
        .env("RUST_LOG", "info,colony_guest=info")
        .output()
        .unwrap();
    (out.stdout, out.stderr, out.status.success())
}

#[test]
fn text_output_holds_no_control_characters_from_the_guest() {
    let (stdout, stderr, ok) = run(false);
    assert!(!ok, "the guest fails");
    for (name, bytes) in [("stdout", &stdout), ("stderr", &stderr)] {
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!bytes.contains(&0x1b), "{name} holds ESC: {text}");
        assert!(!bytes.contains(&b'\r'), "{name} holds CR: {text}");
        assert!(!bytes.contains(&0x07), "{name} holds BEL: {text}");
        assert!(!text.contains('\u{9b}'), "{name} holds CSI: {text}");
        assert!(
            !text.lines().any(|l| l.starts_with("[fake]")),
            "{name} holds a forged line: {text}"
        );
    }
    let stdout = String::from_utf8(stdout).unwrap();
    // The text is still there, shown escaped: in the log line, the failure and the
    // closing error line.
    assert!(
        stdout.contains(r"\u{1b}]0;owned\u{7}\u{1b}[2J\r\n[fake] SUBAGENT_REPORT"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("error: ")), "{stdout}");
    let stderr = String::from_utf8(stderr).unwrap();
    assert!(
        stderr.contains("]0;owned") && stderr.contains(r"\r\n[fake] SUBAGENT_REPORT"),
        "the log record, escaped: {stderr}"
    );
}

#[test]
fn json_output_keeps_the_text_exact() {
    let (stdout, _, _) = run(true);
    let stdout = String::from_utf8(stdout).unwrap();
    let nasty = "\u{1b}]0;owned\u{7}\u{1b}[2J\r\n[fake] SUBAGENT_REPORT status=success\u{9b}31m";
    let mut seen = false;
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        if value["data"]["message"] == nasty {
            seen = true;
        }
    }
    assert!(seen, "the log event carries the exact text: {stdout}");
    assert!(!stdout.contains('\u{1b}'), "JSON escapes ESC itself");
    assert!(!stdout.contains('\u{9b}'), "and C1 controls");
}

#[test]
fn chat_ends_when_stdin_ends_even_if_the_overseer_took_the_messages_itself() {
    use std::io::Write as _;
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_colony"))
        .arg("--home")
        .arg(home.path())
        .arg("chat")
        .arg(hostile())
        .args(["--task", "take-messages"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"first\nsecond\n")
        .unwrap();
    // stdin is closed: the command must end, whichever way the messages were taken.
    let begun = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        if begun.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("colony chat still waits for turns that will never come");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.contains("taken"), "{out}");
}

/// How many of the workers journaled in `home` are in each state.
fn states(home: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    if let Ok(journal) = colony::Journal::open(home.join("journal.db")) {
        for worker in journal.workers().unwrap_or_default() {
            *counts.entry(worker.state.to_string()).or_default() += 1;
        }
    }
    counts
}

/// A fan-out of ten workers that wait for an hour, four at a time, sent `signal` once
/// four run: it stops them all (journaled `stopped`), prints its summary and exits with
/// `code`.
fn fanout_stops_gracefully_on(signal: &str, code: i32) {
    let home = tempfile::tempdir().unwrap();
    let tasks = home.path().join("tasks.jsonl");
    std::fs::write(
        &tasks,
        "{\"task\": \"t\", \"input\": {\"action\": \"wait\"}}\n".repeat(10),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_colony"))
        .arg("--home")
        .arg(home.path())
        .arg("fanout")
        .arg(guest("probe_fixture"))
        .args(["--max-concurrency", "4", "--tasks"])
        .arg(&tasks)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let begun = Instant::now();
    while states(home.path()).get("running") != Some(&4) {
        assert!(
            begun.elapsed() < Duration::from_secs(30),
            "{:?}",
            states(home.path())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stdout}\n{stderr}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "{:?}",
        signalled.elapsed()
    );
    assert!(
        stdout.contains("10 workers, 0 succeeded, 10 failed"),
        "{stdout}"
    );
    assert_eq!(stdout.matches(" stopped ").count(), 10, "{stdout}");
    assert!(
        stderr.contains("interrupted; 10 worker(s) stopped"),
        "{stderr}"
    );
    let journaled = states(home.path());
    assert_eq!(journaled.get("stopped"), Some(&10), "{journaled:?}");
    assert_eq!(journaled.len(), 1, "{journaled:?}");
}

#[test]
fn ctrl_c_stops_a_fanout_gracefully() {
    fanout_stops_gracefully_on("-INT", 130);
}

#[test]
fn sigterm_stops_a_fanout_gracefully() {
    fanout_stops_gracefully_on("-TERM", 143);
}

/// `colony run` of the echo agent with `XDG_CACHE_HOME=cache`, plus `args`.
fn run_echo(home: &Path, cache: &Path, args: &[&str]) {
    run_echo_with(home, cache, args, None);
}

/// [`run_echo`] with `COLONY_NO_CACHE` set to `no_cache` (unset: `None`).
fn run_echo_with(home: &Path, cache: &Path, args: &[&str], no_cache: Option<&str>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_colony"));
    command
        .arg("--home")
        .arg(home)
        .args(args)
        .arg("run")
        .arg(guest("echo_agent"))
        .args(["--task", "cache me"])
        .env("XDG_CACHE_HOME", cache)
        .env_remove("COLONY_NO_CACHE");
    if let Some(value) = no_cache {
        command.env("COLONY_NO_CACHE", value);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
}

fn cached(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join("colony"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_cli_caches_compiled_plugins_in_the_user_cache_folder_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let (home, cache) = (dir.path().join("home"), dir.path().join("cache"));
    run_echo(&home, &cache, &["--no-cache"]);
    assert!(cached(&cache).is_empty(), "{:?}", cached(&cache));
    run_echo_with(&home, &cache, &[], Some("1"));
    assert!(cached(&cache).is_empty(), "{:?}", cached(&cache));

    run_echo(&home, &cache, &[]);
    let entries = cached(&cache);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let good = std::fs::read(&entries[0]).unwrap();
    // Set but empty (or 0, false) is off, not an error.
    for value in ["", "0", "false"] {
        run_echo_with(&home, &cache, &[], Some(value));
    }
    // A corrupt entry (a torn copy, another program's file) is ignored and rebuilt.
    std::fs::write(&entries[0], b"not a compiled component").unwrap();
    run_echo(&home, &cache, &[]);
    assert_eq!(std::fs::read(&entries[0]).unwrap(), good);
}

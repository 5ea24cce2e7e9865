//! The `colony` binary: the demo (README's main job) and `colony run`, including bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn guests() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("wasm32-wasip2/guest");
    assert!(
        dir.join("echo_agent.wasm").is_file(),
        "guests are not built: run `make guests` first"
    );
    dir
}

fn colony(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    colony_in(home.path(), args)
}

/// Runs `colony` with `home` as its colony home.
fn colony_in(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_colony"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("COLONY_PLUGINS", guests())
        .env("COLONY_HOME", home)
        .output()
        .expect("run colony")
}

/// Runs `colony` in `home` with `input` on stdin.
fn colony_with_stdin(home: &std::path::Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_colony"))
        .args(args)
        .env("COLONY_HOME", home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn guest(name: &str) -> String {
    guests().join(format!("{name}.wasm")).display().to_string()
}

#[test]
fn chat_takes_one_turn_per_line_and_ps_inspect_events_read_the_journal() {
    let home = tempfile::tempdir().unwrap();
    let output = colony_with_stdin(
        home.path(),
        &["chat", &guest("chat_agent")],
        "hello\n\nsecond line\n",
    );
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.contains("turn=1 message=\"hello\""), "{out}");
    assert!(
        out.contains("turn 2: heard 'second line' (before that: 'hello')"),
        "{out}"
    );
    assert!(out.contains("status=stopped"), "{out}");

    let ps = colony_in(home.path(), &["ps", "--json"]);
    let records: Vec<serde_json::Value> = stdout(&ps)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["state"], "stopped");
    assert_eq!(records[0]["mode"], "persistent");
    let id = records[0]["id"].as_str().unwrap().to_owned();
    let human = stdout(&colony_in(home.path(), &["ps"]));
    assert!(human.lines().nth(1).unwrap().starts_with(&id), "{human}");

    let inspect = colony_in(home.path(), &["inspect", &id, "--json"]);
    let view: serde_json::Value = serde_json::from_str(stdout(&inspect).trim()).unwrap();
    assert_eq!(view["worker"]["id"], id.as_str());
    assert_eq!(
        view["conversation"].as_array().unwrap().len(),
        4,
        "2 user + 2 assistant parts"
    );
    assert_eq!(
        view["reports"].as_array().unwrap().len(),
        2,
        "initial run and stop"
    );

    let events = colony_in(home.path(), &["events", "--worker", &id, "--json"]);
    let types: Vec<String> = stdout(&events)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("EXECUTION_STARTED"));
    assert_eq!(types.iter().filter(|t| *t == "TURN_COMPLETED").count(), 2);
    assert_eq!(types.last().map(String::as_str), Some("SUBAGENT_REPORT"));

    let unknown = colony_in(home.path(), &["inspect", "w-nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no worker 'w-nope' in the journal"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn fanout_runs_every_task_and_prints_a_summary_table() {
    let home = tempfile::tempdir().unwrap();
    let tasks = home.path().join("tasks.txt");
    let lines: Vec<String> = (0..10).map(|i| format!("task number {i}")).collect();
    std::fs::write(
        &tasks,
        format!(
            "{}\n{{\"task\": \"json task\", \"input\": {{\"text\": \"from input\"}}}}\n",
            lines.join("\n")
        ),
    )
    .unwrap();
    let output = colony_in(
        home.path(),
        &[
            "fanout",
            &guest("echo_agent"),
            "--tasks",
            tasks.to_str().unwrap(),
            "--max-concurrency",
            "3",
        ],
    );
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.starts_with("WORKER"), "{out}");
    assert!(out.contains("Summary: from input"), "{out}");
    assert!(out.contains("11 workers, 11 succeeded, 0 failed"), "{out}");

    let json = colony_in(
        home.path(),
        &[
            "fanout",
            &guest("failing_agent"),
            "--tasks",
            tasks.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(
        json.status.code(),
        Some(1),
        "failed workers make a non-zero exit"
    );
    let reports: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 11);
    assert!(reports.iter().all(|r| r["status"] == "failed"));

    std::fs::write(&tasks, "ok task\n{\"task\": 5}\n").unwrap();
    let bad = colony_in(
        home.path(),
        &[
            "fanout",
            &guest("echo_agent"),
            "--tasks",
            tasks.to_str().unwrap(),
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("tasks.txt line 2: not a task"),
        "{}",
        stderr(&bad)
    );
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_demo_runs_an_overseer_and_a_fan_out_printing_every_event() {
    let output = colony(&["demo"]);
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(output.status.success(), "{out}\n{}", stderr(&output));
    let reports: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("SUBAGENT_REPORT"))
        .collect();
    let worker_reports: Vec<&&str> = reports.iter().filter(|l| l.contains(" w-")).collect();
    assert_eq!(worker_reports.len(), 7, "{out}");
    assert_eq!(
        worker_reports
            .iter()
            .filter(|l| l.contains("status=success"))
            .count(),
        6
    );
    assert!(out.contains("LLM_TEXT_DELTA"), "{out}");
    assert!(
        out.contains("summary=\"Saved the summary to /data/summary.txt;"),
        "{out}"
    );
    assert_eq!(
        worker_reports
            .iter()
            .filter(|l| l.contains("status=failed"))
            .count(),
        1
    );
    assert!(out.contains("EXECUTION_FAILED"), "{out}");
    assert_eq!(
        out.matches("message=\"[WORKER_REPORT] w-").count(),
        7,
        "{out}"
    );
    assert!(
        out.contains("summary=\"9 turns, 7 worker reports heard\""),
        "{out}"
    );
    assert!(out.contains("status=stopped"), "{out}");
    assert!(
        out.contains("colony stopped (8/8 clean); 7 workers:"),
        "{out}"
    );
}

#[test]
fn the_demo_prints_json_lines_with_json() {
    let output = colony(&["demo", "--json", "--workers", "2"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let events: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let reports = events
        .iter()
        .filter(|e| e["type"] == "SUBAGENT_REPORT")
        .count();
    // 5 workers, the overseer's initial run, its requested report, and its stop.
    assert_eq!(reports, 8);
    for e in &events {
        for field in [
            "type",
            "stream_id",
            "node_id",
            "execution_id",
            "data",
            "timestamp",
        ] {
            assert!(e.get(field).is_some(), "{field} missing in {e}");
        }
    }
}

#[test]
fn run_prints_the_report_and_exits_zero_on_success() {
    let echo = guests().join("echo_agent.wasm");
    let output = colony(&["run", echo.to_str().unwrap(), "--task", "alpha beta gamma"]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("success: Summary: alpha beta gamma"), "{out}");
}

#[test]
fn run_takes_a_manifest_with_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("echo.toml");
    let component = guests().join("echo_agent.wasm");
    std::fs::write(
        &manifest,
        format!(
            "component = {:?}\n[limits]\nmax_report_summary_bytes = 8\n",
            component.display().to_string()
        ),
    )
    .unwrap();
    let output = colony(&[
        "run",
        manifest.to_str().unwrap(),
        "--task",
        "alpha beta gamma",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("report summary is 25 bytes, over the limit of 8 bytes"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn run_exits_non_zero_when_the_worker_fails() {
    let failing = guests().join("failing_agent.wasm");
    let output = colony(&["run", failing.to_str().unwrap(), "--task", "t", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let last = stdout(&output).lines().last().unwrap().to_owned();
    let result: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(result["status"], "failed");
}

#[test]
fn bad_input_gets_one_clear_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, "junk").unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["run", junk.to_str().unwrap(), "--task", "t"],
            "plugin 'junk' is not a WebAssembly component",
        ),
        (
            &["run", "/nonexistent.wasm", "--task", "t"],
            "cannot read /nonexistent.wasm",
        ),
        (
            &[
                "run",
                junk.to_str().unwrap(),
                "--task",
                "t",
                "--input",
                "[1",
            ],
            "--input is not valid JSON",
        ),
    ];
    for (args, expected) in cases {
        let output = colony(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::write(dir.path().join("typo.toml"), "componnet = \"x.wasm\"").unwrap();
    let typo = dir.path().join("typo.toml");
    let output = colony(&["run", typo.to_str().unwrap(), "--task", "t"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("typo.toml") && err.contains("unknown field `componnet`"),
        "{err}"
    );
    let output = colony(&[
        "--config",
        typo.to_str().unwrap(),
        "run",
        "x.wasm",
        "--task",
        "t",
    ]);
    assert!(
        stderr(&output).contains("unknown field `componnet`"),
        "{}",
        stderr(&output)
    );

    let output = Command::new(env!("CARGO_BIN_EXE_colony"))
        .args(["demo", "--plugins", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("make guests"),
        "{}",
        stderr(&output)
    );
}

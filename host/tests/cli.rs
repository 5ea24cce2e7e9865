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
    Command::new(env!("CARGO_BIN_EXE_colony"))
        .args(args)
        .env("COLONY_PLUGINS", guests())
        .output()
        .expect("run colony")
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
    let out = stdout(&output);
    assert!(output.status.success(), "{out}\n{}", stderr(&output));
    for worker in [
        "worker-1",
        "worker-2",
        "worker-3",
        "worker-4",
        "worker-silent",
        "worker-failing",
    ] {
        let report = out
            .lines()
            .find(|l| l.contains("SUBAGENT_REPORT") && l.split_whitespace().any(|w| w == worker))
            .unwrap_or_else(|| panic!("no report line for {worker} in\n{out}"));
        assert!(report.contains("status="), "{report}");
    }
    assert!(out.contains("EXECUTION_FAILED     worker-failing"), "{out}");
    assert_eq!(
        out.matches("TURN_COMPLETED       overseer").count(),
        8,
        "{out}"
    );
    assert!(
        out.contains("summary=\"8 turns, 6 worker reports heard\""),
        "{out}"
    );
    assert!(out.contains("status=stopped"), "{out}");
    assert!(out.contains("overseer stopped (clean"), "{out}");
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
    // 4 workers, the overseer's initial run, its requested report, and its stop.
    assert_eq!(reports, 7);
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

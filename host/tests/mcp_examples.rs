//! README's MCP example for guests, run as written from the repository's root: the
//! agent-loop guest calls the published `mcp-server-time` (installed by
//! `make mcp-servers`) through `examples/mcp/host.toml` and `time-agent.toml`.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_readme_mcp_example_calls_the_time_server_from_a_guest() {
    let root = root();
    assert!(
        root.join("target/mcpvenv/bin/mcp-server-time").exists(),
        "run `make mcp-servers` first"
    );
    let home = tempfile::tempdir().unwrap();
    let colony = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_colony"))
            .current_dir(&root)
            .arg("--home")
            .arg(home.path())
            .args(["--no-cache", "--config", "examples/mcp/host.toml"])
            .args(args)
            .output()
            .unwrap()
    };
    let run = colony(&[
        "--json",
        "run",
        "examples/mcp/time-agent.toml",
        "--task",
        "What time is it in Oslo?",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["status"], "success", "{report}");
    // The tool's answer, as the guest's conversation recorded it.
    let worker = report["worker_id"].as_str().unwrap();
    let inspect = colony(&["inspect", worker]);
    let shown = String::from_utf8_lossy(&inspect.stdout);
    assert!(shown.contains(r#"\"timezone\":\"Europe/Oslo\""#), "{shown}");
    assert!(shown.contains("datetime"), "{shown}");
}

//! `colony replay`, `colony fork` and `colony export` as a user runs them: the agent
//! loop recorded with the scripted model, replayed with no model configured at all,
//! made to diverge, exported as a script that reproduces the run, forked onto another
//! script, and refused when its plugin file has changed.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `colony --home home [args…]`.
fn colony(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_colony"))
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The last JSON line of `output`'s stdout.
fn last_json(output: &Output) -> Value {
    let stdout = text(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap();
    serde_json::from_str(line).unwrap()
}

/// A manifest of the agent loop at `component`, granted the demo script's tools.
fn manifest(dir: &Path, component: &Path) -> String {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "component = {:?}\n[grants]\ntools = [\"time.now\", \"files.write\"]\n",
            component.display().to_string()
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// `home/<name>.toml`: the scripted provider playing `script`.
fn scripted_config(home: &Path, name: &str, script: &Path) -> String {
    let path = home.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "cache_dir = {:?}\n[llm]\nprovider = \"scripted\"\nscript = {:?}\n",
            support::target_dir().join("colony-cache"),
            script
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Runs the agent loop once with the demo script; its worker id and report summary.
fn recorded_run(home: &Path, manifest: &str) -> (String, String) {
    support::write_scripted_host_config(home);
    let config = home.join("host.toml").display().to_string();
    let out = colony(
        home,
        &[
            "--config",
            &config,
            "--json",
            "run",
            manifest,
            "--task",
            "Summarise the notes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = last_json(&out);
    (
        report["worker_id"].as_str().unwrap().to_owned(),
        report["summary"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_recorded_run_replays_offline_diverges_on_a_changed_prompt_and_exports_a_script() {
    let home = tempfile::tempdir().unwrap();
    let plugin = manifest(home.path(), &support::guest("agent_loop"));
    let (id, summary) = recorded_run(home.path(), &plugin);

    // No --config: this host has no model at all.
    let out = colony(home.path(), &["replay", &id]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("every step matched the recording"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("report matches: success: {summary}")),
        "{stdout}"
    );
    assert!(stdout.contains("LLM_TEXT_DELTA"), "{stdout}");
    let out = colony(home.path(), &["--json", "replay", &id]);
    let outcome = last_json(&out);
    assert_eq!(outcome["divergence"], Value::Null);
    assert_eq!(outcome["steps"], outcome["recorded_steps"]);

    let out = colony(
        home.path(),
        &["replay", &id, "--input", r#"{"system": "Be terse."}"#],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("DIVERGED at step 2: llm.complete asked something else: at system, recorded \"You are a worker agent")
            && stdout.contains("now \"Be terse.\""),
        "{stdout}"
    );

    let script = home.path().join("exported.json");
    let out = colony(
        home.path(),
        &["export", &id, "--script", &script.display().to_string()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("wrote 2 model answer(s)"));
    // The export plays the run again, on a fresh home, as a scripted fixture.
    let fresh = tempfile::tempdir().unwrap();
    let config = scripted_config(fresh.path(), "exported", &script);
    let out = colony(
        fresh.path(),
        &[
            "--config",
            &config,
            "--json",
            "run",
            &plugin,
            "--task",
            "Summarise the notes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(last_json(&out)["summary"], summary.as_str());
}

#[test]
fn a_fork_goes_live_on_the_config_it_is_given_and_its_row_says_where_it_came_from() {
    let home = tempfile::tempdir().unwrap();
    let plugin = manifest(home.path(), &support::guest("agent_loop"));
    let (id, _) = recorded_run(home.path(), &plugin);
    let other = home.path().join("other.json");
    std::fs::write(&other, r#"[{"text": "A different ending."}]"#).unwrap();
    let config = scripted_config(home.path(), "other", &other);
    let out = colony(
        home.path(),
        &["--config", &config, "fork", &id, "--at", "2"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("of worker {id} at step 2")),
        "{stdout}"
    );
    assert!(stdout.contains("success: A different ending."), "{stdout}");
    let fork = stdout
        .lines()
        .find_map(|l| l.strip_prefix("fork "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let out = colony(home.path(), &["--json", "inspect", &fork]);
    let view = last_json(&out);
    assert_eq!(view["worker"]["lineage"]["fork"]["from"], id.as_str());
    assert_eq!(view["worker"]["lineage"]["fork"]["at"], 2);
    // The tool list, the model's two tool calls, both tools, the script's answer.
    assert_eq!(view["recording"]["steps"], 5);

    let out = colony(home.path(), &["fork", &id, "--at", "99"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot fork at step 99"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_changed_plugin_file_is_refused_unless_named() {
    let home = tempfile::tempdir().unwrap();
    let component = home.path().join("agent.wasm");
    std::fs::copy(support::guest("agent_loop"), &component).unwrap();
    let plugin = manifest(home.path(), &component);
    let (id, _) = recorded_run(home.path(), &plugin);
    std::fs::copy(support::guest("echo_agent"), &component).unwrap();
    let out = colony(home.path(), &["replay", &id]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("has changed since worker"), "{stderr}");
    let out = colony(home.path(), &["replay", &id, "--plugin", &plugin]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("DIVERGED at step 1"), "{stdout}");
}

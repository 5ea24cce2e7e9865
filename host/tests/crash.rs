//! Durability: a real `colony` process killed with SIGKILL mid-run. Every report it
//! published is still in the journal, the workers it was running are `interrupted` with
//! the time of the crash, and its overseer resumes with its conversation as it was.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn guest(name: &str) -> String {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target
        .join(format!("wasm32-wasip2/guest/{name}.wasm"))
        .display()
        .to_string()
}

fn colony(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_colony"));
    command.env("COLONY_HOME", home);
    command
}

fn ps(home: &Path) -> Vec<Value> {
    let output: Output = colony(home).args(["ps", "--json"]).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until `done` holds for the journal, or fails after 20 s.
fn wait_for(home: &Path, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let begun = Instant::now();
    loop {
        let workers = ps(home);
        if done(&workers) {
            return workers;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}: {workers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill(mut child: Child) -> chrono::DateTime<chrono::Utc> {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed = chrono::Utc::now();
    // Let the dead process's heartbeat go stale.
    std::thread::sleep(colony::HEARTBEAT_STALE_AFTER + Duration::from_millis(500));
    killed
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn a_killed_fanout_keeps_its_reports_and_marks_running_workers_interrupted() {
    let home = tempfile::tempdir().unwrap();
    let tasks = home.path().join("tasks.txt");
    std::fs::write(
        &tasks,
        "{\"task\": \"quick 1\", \"input\": {\"action\": \"echo\"}}\n\
         {\"task\": \"quick 2\", \"input\": {\"action\": \"echo\"}}\n\
         {\"task\": \"slow 1\", \"input\": {\"action\": \"wait\"}}\n\
         {\"task\": \"slow 2\", \"input\": {\"action\": \"wait\"}}\n",
    )
    .unwrap();
    let child = colony(home.path())
        .args([
            "fanout",
            &guest("probe_fixture"),
            "--tasks",
            tasks.to_str().unwrap(),
            "--json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(home.path(), "2 completed and 2 running", |w| {
        w.iter().filter(|r| r["state"] == "completed").count() == 2
            && w.iter().filter(|r| r["state"] == "running").count() == 2
    });
    let started = chrono::Utc::now();
    let killed = kill(child);

    let workers = ps(home.path());
    for w in &workers {
        let task = w["task"].as_str().unwrap();
        if task.starts_with("quick") {
            assert_eq!(w["state"], "completed", "{w}");
            assert_eq!(w["result"]["status"], "success");
            let id = w["id"].as_str().unwrap();
            let inspect = colony(home.path())
                .args(["inspect", id, "--json"])
                .output()
                .unwrap();
            let view: Value = serde_json::from_slice(&inspect.stdout).unwrap();
            let reports = view["reports"].as_array().unwrap();
            assert_eq!(reports.len(), 1, "the published report survived: {view}");
            assert_eq!(reports[0]["report"]["status"], "success");
        } else {
            assert_eq!(w["state"], "interrupted", "{w}");
            let at = time(&w["interrupted_at"]);
            assert!(
                at <= killed && at >= started - chrono::Duration::seconds(2),
                "{at} vs kill at {killed}"
            );
        }
    }
    let human = String::from_utf8_lossy(&colony(home.path()).arg("ps").output().unwrap().stdout)
        .into_owned();
    assert_eq!(human.matches("interrupted").count(), 2, "{human}");
}

#[test]
fn a_killed_overseer_resumes_with_its_conversation() {
    let home = tempfile::tempdir().unwrap();
    let mut child = colony(home.path())
        .args(["chat", &guest("chat_agent"), "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "remember the milk").unwrap();
    writeln!(stdin, "and the bread").unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut turns = 0;
    let mut overseer = String::new();
    while turns < 2 {
        let event: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        if event["type"] == "TURN_COMPLETED" {
            turns += 1;
            overseer = event["node_id"].as_str().unwrap().to_owned();
        }
    }
    kill(child);
    let workers = ps(home.path());
    assert_eq!(workers[0]["id"], overseer.as_str());
    assert_eq!(workers[0]["state"], "interrupted");

    let mut resumed = colony(home.path())
        .args(["resume", &overseer, "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(resumed.stdin.take().unwrap(), "what did I ask for?").unwrap();
    let output = resumed.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.iter().all(|e| e["node_id"] == overseer.as_str()),
        "same worker id"
    );
    let initial = events
        .iter()
        .find(|e| e["type"] == "SUBAGENT_REPORT")
        .unwrap();
    assert_eq!(
        initial["data"]["data"]["seeded_parts"], 4,
        "its conversation as it was: {initial}"
    );
    let turn = events
        .iter()
        .find(|e| e["type"] == "TURN_COMPLETED")
        .unwrap();
    assert_eq!(turn["data"]["message"], "what did I ask for?");
    assert_eq!(ps(home.path())[0]["state"], "stopped");
}

#[test]
fn a_fanout_of_ten_thousand_killed_under_load_keeps_every_report_it_printed() {
    let home = tempfile::tempdir().unwrap();
    let tasks = home.path().join("tasks.jsonl");
    let lines: Vec<String> = (0..10_000)
        .map(|i| {
            format!("{{\"task\": \"t{i}\", \"input\": {{\"action\": \"wait_ms\", \"ms\": 200}}}}")
        })
        .collect();
    std::fs::write(&tasks, lines.join("\n")).unwrap();
    let mut child = colony(home.path())
        .args(["fanout", &guest("probe_fixture"), "--json", "--tasks"])
        .arg(&tasks)
        .args(["--max-concurrency", "64"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    let batch = said
        .strip_prefix("colony: batch ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no batch id: {said}"))
        .to_owned();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = std::collections::HashSet::new();
    let mut note = |line: String| {
        let report: Value = serde_json::from_str(&line).unwrap();
        printed.insert(report["worker_id"].as_str().unwrap().to_owned());
    };
    for _ in 0..1000 {
        note(out.next().expect("the fan-out reports").unwrap());
    }
    kill(child);
    // And whatever it printed before it died.
    out.map_while(Result::ok).for_each(&mut note);

    let journal = colony::Journal::open(home.path().join("journal.db")).unwrap();
    let reported: std::collections::HashSet<String> = journal
        .reports(None)
        .unwrap()
        .into_iter()
        .map(|r| r.worker_id)
        .collect();
    let workers = ps(home.path());
    let state = |id: &str| {
        workers
            .iter()
            .find(|w| w["id"] == id)
            .map(|w| w["state"].as_str().unwrap().to_owned())
    };
    for id in &printed {
        assert!(reported.contains(id), "printed but not journaled: {id}");
        assert_eq!(state(id).as_deref(), Some("completed"), "{id}");
    }
    let mut ended = 0;
    for w in &workers {
        match w["state"].as_str().unwrap() {
            "completed" => ended += 1,
            "interrupted" => {}
            other => panic!("worker {} left {other} after the crash", w["id"]),
        }
    }
    assert!(ended >= printed.len() && ended < 10_000, "{ended} ended");

    // Resumed, the batch runs exactly the tasks left, once each, and reports them all.
    let resumed = colony(home.path())
        .args([
            "fanout",
            &guest("probe_fixture"),
            "--json",
            "--resume",
            &batch,
        ])
        .args(["--max-concurrency", "1000"])
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    // One report per task, each naming its place in the batch.
    let mut indexes: Vec<u64> = String::from_utf8_lossy(&resumed.stdout)
        .lines()
        .map(|line| {
            let report: Value = serde_json::from_str(line).unwrap();
            assert_eq!(report["batch_id"], batch.as_str(), "{line}");
            assert_eq!(report["batch_size"], 10_000, "{line}");
            report["batch_index"].as_u64().unwrap()
        })
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..10_000).collect::<Vec<u64>>());
    let record = journal.batch(&batch).unwrap().unwrap();
    let mut completed = vec![0; 10_000];
    for w in &record.workers {
        if w.state == colony::RecordState::Completed {
            completed[w.batch.as_ref().unwrap().index as usize] += 1;
        }
    }
    assert!(completed.iter().all(|n| *n == 1), "each task ends once");
}

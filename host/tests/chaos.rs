//! Scale-out under faults, against a real `nats-server` and real `colony node` (and
//! `colony fanout`) processes: nodes killed with SIGKILL or frozen with SIGSTOP past
//! their ack wait, the server killed and restarted on its store, the colony process
//! killed and restarted, everything started at the same instant, and a large fan-out
//! with no fault at all.
//!
//! Every case ends with the same audit: every task has exactly one report in the
//! report stream, the journal's state of every worker agrees with that report, and
//! `colony ps` says the same.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use colony::cluster::ReportMessage;
use colony::{EventFilter, EventType, Journal, RecordState, WorkerState};
use futures_util::StreamExt;
use serde_json::json;

mod support;
use support::*;

/// The reports stored for colony `colony`: each worker's terminal states, one per
/// stored report. Retried as a whole — after a cluster lost a server, JetStream answers
/// once it has elected new leaders, and a replica that was behind catches up — until
/// every one of `ids` has one, or for 60 s (then the last read is returned).
async fn stored_reports(
    url: &str,
    colony: &str,
    ids: &[String],
) -> HashMap<String, Vec<WorkerState>> {
    let servers: Vec<&str> = url.split(',').collect();
    let js = async_nats::jetstream::new(async_nats::connect(servers).await.unwrap());
    let begun = Instant::now();
    loop {
        let late = begun.elapsed() >= Duration::from_secs(60);
        match read_stored_reports(&js, colony).await {
            Ok(reports) if late || ids.iter().all(|id| reports.contains_key(id)) => {
                return reports;
            }
            Ok(_) => {}
            Err(e) => assert!(!late, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One read of the colony's report subjects from the first: as many reports as the
/// consumer had pending when it was made, each message saying how many are left.
async fn read_stored_reports(
    js: &async_nats::jetstream::Context,
    colony: &str,
) -> Result<HashMap<String, Vec<WorkerState>>, String> {
    let stream = js
        .get_stream("COLONY_REPORTS")
        .await
        .map_err(|e| e.to_string())?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("colony.{colony}.reports.*"),
            deliver_policy: DeliverPolicy::All,
            max_expires: Duration::from_secs(4),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut left = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    let mut reports: HashMap<String, Vec<WorkerState>> = HashMap::new();
    while left > 0 {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .map_err(|_| format!("the stored reports stopped coming with {left} left"))?
            .ok_or("the stored reports ended")?
            .map_err(|e| e.to_string())?;
        left = message.info().map_err(|e| e.to_string())?.pending;
        let report: ReportMessage = serde_json::from_slice(&message.payload).unwrap();
        reports
            .entry(report.event.worker_id)
            .or_default()
            .push(report.state);
    }
    Ok(reports)
}

/// What `colony ps --json` says of the workers in `home`: id → state.
fn ps(home: &Path) -> HashMap<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_colony"))
        .arg("--home")
        .arg(home)
        .args(["--json", "ps"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                row["id"].as_str().unwrap().to_owned(),
                row["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every task of `ids` has exactly one stored report, and none else does; the journal in
/// `home` and `colony ps` both give each worker the state its report tells.
async fn audit(nats: &Nats, home: &Path, colony: &str, ids: &[String]) {
    let stored = stored_reports(&nats.url, colony, ids).await;
    let missing: Vec<_> = ids.iter().filter(|id| !stored.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} without a report: {missing:?}",
        missing.len()
    );
    let repeated: Vec<_> = stored.iter().filter(|(_, r)| r.len() != 1).collect();
    assert!(repeated.is_empty(), "reports stored twice: {repeated:?}");
    assert_eq!(stored.len(), ids.len(), "reports of unknown workers");

    let journal = Journal::open(home.join("journal.db")).unwrap();
    let listed = ps(home);
    let mut disagree = Vec::new();
    for id in ids {
        let told = RecordState::from(stored[id][0]);
        let journaled = journal.worker(id).unwrap().map(|w| w.state);
        let shown = listed.get(id).map(String::as_str);
        if journaled != Some(told) || shown != Some(told.as_str()) {
            disagree.push(format!(
                "{id}: report {told}, journal {journaled:?}, ps {shown:?}"
            ));
        }
    }
    assert!(
        disagree.is_empty(),
        "{} of {} disagree: {:?}",
        disagree.len(),
        ids.len(),
        &disagree[..disagree.len().min(10)]
    );
}

/// Runs `tasks` of the probe fixture on the colony of `s`, lets `fault` strike once
/// `after` reports are in, then waits for every report (counting them on the bus:
/// exactly one each) and audits.
async fn fan_out_through(
    s: &mut Setup,
    tasks: Vec<colony::Task>,
    after: usize,
    fault: impl FnOnce(&mut Setup),
) {
    let mut reports = s
        .colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let ids = s.colony.run_parallel(&s.plugin, tasks).unwrap();
    let mut counts: HashMap<String, usize> = HashMap::new();
    while counts.len() < after {
        let event = tokio::time::timeout(Duration::from_secs(30), reports.recv())
            .await
            .expect("reports stopped coming before the fault")
            .unwrap();
        *counts.entry(event.worker_id).or_default() += 1;
    }
    fault(s);
    // Longer than the 2 s ack wait: a redelivered task's late duplicate would show.
    let settle = Duration::from_secs(3);
    count_reports(
        &mut reports,
        &mut counts,
        &ids,
        Duration::from_secs(90),
        settle,
    )
    .await;
    assert_exactly_once(&counts, &ids);
    s.colony.stop_all().await;
    audit(&s.nats, &s.dir.path().join("colony"), "c", &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_nodes_killed_mid_run() {
    let mut s = setup(&["n1", "n2", "n3"], |_| {}).await;
    let work = tasks(300, json!({"action": "wait_ms", "ms": 30}));
    fan_out_through(&mut s, work, 60, |s| {
        s.nodes[0].kill();
        s.nodes[1].kill();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_server_killed_and_restarted_on_its_store_mid_run() {
    let mut s = setup(&["n1", "n2"], |_| {}).await;
    let work = tasks(300, json!({"action": "wait_ms", "ms": 20}));
    fan_out_through(&mut s, work, 50, |s| {
        s.nats.servers[0].restart().unwrap();
    })
    .await;
}

/// Tasks queued while the server is frozen past the client's 5 s publish-ack timeout are
/// queued again once it answers: every one runs and completes, none fails for the fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_queued_while_the_nats_server_is_frozen_run_once_it_thaws() {
    let mut s = setup(&["n1", "n2"], |_| {}).await;
    let work = tasks(40, json!({"action": "wait_ms", "ms": 20}));
    fan_out_through(&mut s, work, 0, |s| {
        let pid = s.nats.servers[0].pid();
        send_signal(pid, "-STOP");
        std::thread::sleep(Duration::from_secs(7));
        send_signal(pid, "-CONT");
    })
    .await;
    let failed: Vec<_> = s
        .colony
        .workers()
        .into_iter()
        .filter(|w| w.state != WorkerState::Completed)
        .map(|w| format!("{}: {} {:?}", w.id, w.state, w.result.map(|r| r.error)))
        .collect();
    assert!(failed.is_empty(), "not completed: {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_of_a_three_server_cluster_killed_mid_run() {
    let nats = Nats::start_cluster(3).await;
    let mut s = setup_on(nats, &["n1", "n2"], &["--nats-replicas", "3"], |c| {
        c.nats_replicas = Some(3);
    })
    .await;
    let work = tasks(300, json!({"action": "wait_ms", "ms": 20}));
    fan_out_through(&mut s, work, 50, |s| s.nats.servers[0].kill()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_frozen_past_its_ack_wait_then_thawed() {
    let mut s = setup(&["frozen", "n2"], |_| {}).await;
    let work = tasks(120, json!({"action": "wait_ms", "ms": 100}));
    fan_out_through(&mut s, work, 20, |s| {
        s.nodes[0].pause();
        // Past the 2 s ack wait: its tasks go to the other node; thawed, it finishes
        // them too, and its late reports are dropped as duplicates.
        std::thread::sleep(Duration::from_secs(4));
        s.nodes[0].resume();
    })
    .await;
}

/// `colony --nats … fanout` of `count` probe tasks from `home`, as a child process.
fn cli_fanout(nats: &Nats, home: &Path, count: usize, input: serde_json::Value) -> Child {
    let file = home.join("tasks.jsonl");
    std::fs::create_dir_all(home).unwrap();
    let mut lines = std::fs::File::create(&file).unwrap();
    for i in 0..count {
        writeln!(
            lines,
            "{}",
            json!({"task": format!("t{i}"), "input": input})
        )
        .unwrap();
    }
    Command::new(env!("CARGO_BIN_EXE_colony"))
        .arg("--nats")
        .arg(&nats.url)
        .arg("--home")
        .arg(home)
        .args(["--json", "fanout"])
        .arg(guest("probe_fixture"))
        .args(["--max-concurrency", "1000", "--timeout", "120s", "--tasks"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The ids of colony `cli`'s workers in `home`, and how many have ended.
fn cli_workers(home: &Path) -> (Vec<String>, usize) {
    let Ok(journal) = Journal::open(home.join("journal.db")) else {
        return (Vec::new(), 0);
    };
    let workers = journal.workers().unwrap_or_default();
    let ended = workers.iter().filter(|w| w.state.has_ended()).count();
    (workers.into_iter().map(|w| w.id).collect(), ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_colony_killed_and_restarted_mid_run() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let _nodes: Vec<_> = ["n1", "n2"]
        .iter()
        .map(|name| NodeProcess::start(&nats, dir.path(), name))
        .collect();
    let home = dir.path().join("cli");
    let mut fanout = cli_fanout(&nats, &home, 100, json!({"action": "wait_ms", "ms": 200}));
    // Killed once some reports are journaled (all 100 tasks are on the queue by then).
    let begun = Instant::now();
    while cli_workers(&home).1 < 10 {
        assert!(begun.elapsed() < Duration::from_secs(30), "no reports");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fanout.kill().unwrap();
    fanout.wait().unwrap();

    // The nodes go on; a colony opened again on the home reads the reports it missed.
    let mut config = colony::ColonyConfig::new("cli", &home);
    config.nats = Some(nats.url.clone());
    let colony = colony::Colony::connect(runtime(), config).await.unwrap();
    let (ids, _) = cli_workers(&home);
    assert_eq!(ids.len(), 100);
    while cli_workers(&home).1 < ids.len() {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "{} of {} ended",
            cli_workers(&home).1,
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    colony.stop_all().await;
    audit(&nats, &home, "cli", &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_and_a_colony_started_at_the_same_instant() {
    for round in 0..2 {
        // A fresh server each round: nobody has created the streams yet.
        let nats = Nats::start();
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("cli");
        let mut fanout = cli_fanout(&nats, &home, 50, json!({"action": "echo"}));
        let nodes: Vec<_> = ["n1", "n2", "n3"]
            .iter()
            .map(|name| NodeProcess::spawn(&nats, dir.path(), name, &[]))
            .collect();
        let _nodes: Vec<_> = nodes.into_iter().map(NodeProcess::wait_serving).collect();
        let output = tokio::task::spawn_blocking(move || {
            let status = fanout.wait().unwrap();
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut fanout.stderr.take().unwrap(), &mut stderr).unwrap();
            (status, stderr)
        })
        .await
        .unwrap();
        assert!(output.0.success(), "round {round}: {output:?}");
        let (ids, ended) = cli_workers(&home);
        assert_eq!((ids.len(), ended), (50, 50), "round {round}");
        audit(&nats, &home, "cli", &ids).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_with_no_fault_leave_no_worker_running() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let _nodes: Vec<_> = ["n1", "n2"]
        .iter()
        .map(|name| NodeProcess::start_with(&nats, dir.path(), name, &["--slots", "32"]))
        .collect();
    let home = dir.path().join("colony");
    let colony = connect(&nats, &home, |c| {
        c.max_batch = 10_000;
        c.max_concurrent_workers = 256;
    })
    .await;
    let plugin = probe(&colony).await;
    let ids = colony
        .run_parallel(&plugin, tasks(10_000, json!({"action": "echo"})))
        .unwrap();
    let reports = colony
        .wait_for_reports(&ids, Duration::from_secs(180))
        .await
        .unwrap();
    assert!(
        reports
            .iter()
            .all(|r| r.status == colony::ReportStatus::Success),
        "{:?}",
        reports
            .iter()
            .find(|r| r.status != colony::ReportStatus::Success)
    );
    colony.stop_all().await;
    let journal = Journal::open(home.join("journal.db")).unwrap();
    let left: Vec<_> = journal
        .workers()
        .unwrap()
        .into_iter()
        .filter(|w| w.state != RecordState::Completed)
        .map(|w| format!("{} {}", w.id, w.state))
        .collect();
    assert!(
        left.is_empty(),
        "{} not completed: {:?}",
        left.len(),
        &left[..left.len().min(10)]
    );
    audit(&nats, &home, "c", &ids).await;
}

//! Scale-out on NATS JetStream, for real: a `nats-server -js` on loopback, `colony node`
//! processes, and a colony in this process using the same API as in-process.
//! (`make setup` and `.ci/run` install Debian's `nats-server`.)

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use colony::{
    Colony, ColonyConfig, ColonyError, EventFilter, EventType, Plugin, ReportStatus, Subscription,
    Task, WorkerReport, WorkerState,
};
use serde_json::json;

mod support;
use support::*;

/// The colony's overseer (the probe fixture), and a subscription to its turns.
fn overseer_with_turns(colony: &Colony, plugin: &Plugin) -> (colony::Worker, Subscription) {
    let turns = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::TurnCompleted]));
    let overseer = colony
        .start_overseer(plugin, "oversee", Vec::new())
        .unwrap();
    (overseer, turns)
}

/// Waits (at most 10 s) until every worker of `ids` runs on a node.
async fn wait_running(colony: &Colony, ids: &[String]) {
    let begun = Instant::now();
    while let Some(id) = ids
        .iter()
        .find(|id| colony.info(id).unwrap().state != WorkerState::Running)
    {
        assert!(begun.elapsed() < Duration::from_secs(10), "{id} never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (at most `within`) for the reports of `ids` and checks that all succeeded.
async fn all_succeed(colony: &Colony, ids: &[String], within: Duration) {
    let reports = colony.wait_for_reports(ids, within).await.unwrap();
    assert!(
        reports.iter().all(|r| r.status == ReportStatus::Success),
        "{reports:?}"
    );
}

/// Waits (at most `within`) for the report of the single worker `ids` and checks that it
/// failed with an error containing `expected`.
async fn fails_with(
    colony: &Colony,
    ids: &[String],
    within: Duration,
    expected: &str,
) -> WorkerReport {
    let report = colony
        .wait_for_reports(ids, within)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(report.status, ReportStatus::Failed, "{report:?}");
    let error = report.error.as_deref().unwrap_or_default();
    assert!(error.contains(expected), "{error}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tasks_over_three_nodes_report_exactly_once() {
    let s = setup(&["n1", "n2", "n3"], |_| {}).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    assert!(colony.is_distributed());
    let mut reports = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let mut started = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::ExecutionStarted]));

    let ids = colony
        .run_parallel(&plugin, tasks(200, json!({"action": "wait_ms", "ms": 20})))
        .unwrap();
    let mut counts = HashMap::new();
    count_reports(
        &mut reports,
        &mut counts,
        &ids,
        Duration::from_secs(60),
        Duration::from_millis(500),
    )
    .await;
    assert_exactly_once(&counts, &ids);

    // The same API as in-process: reports, states, results, journal.
    all_succeed(&colony, &ids, Duration::from_secs(1)).await;
    let info = colony.info(&ids[7]).unwrap();
    assert_eq!(info.state, WorkerState::Completed);
    assert_eq!(info.task, "task 7");
    assert!(info.started_at.is_some());
    assert_eq!(colony.journal().reports(None).unwrap().len(), 200);
    assert_eq!(
        colony.journal().worker(&ids[7]).unwrap().unwrap().state,
        "completed"
    );
    // Events other than reports travel too.
    let mut starts = HashSet::new();
    while let Ok(Some(event)) = started.try_recv() {
        starts.insert(event.worker_id);
    }
    assert!(
        starts.len() > 150,
        "only {} EXECUTION_STARTED events",
        starts.len()
    );

    // Every node took part, and no task ran twice.
    let ran: Vec<HashSet<String>> = s.nodes.iter().map(|n| n.workers("c")).collect();
    assert!(
        ran.iter().all(|r| !r.is_empty()),
        "a node got nothing: {:?}",
        ran.iter().map(HashSet::len).collect::<Vec<_>>()
    );
    assert_eq!(ran.iter().map(HashSet::len).sum::<usize>(), 200);
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_no_task_and_repeats_no_report() {
    let mut s = setup(&["victim", "survivor"], |_| {}).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let (victim, survivor) = s.nodes.split_at_mut(1);
    let (victim, survivor) = (&mut victim[0], &survivor[0]);
    let mut reports = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let ids = colony
        .run_parallel(&plugin, tasks(200, json!({"action": "wait_ms", "ms": 100})))
        .unwrap();

    // Kill the victim once a fifth of the reports are in, at a moment it has just
    // started tasks (a worker folder younger than 30 ms and no report yet).
    let mut counts: HashMap<String, usize> = HashMap::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), reports.recv())
            .await
            .expect("reports stopped coming")
            .unwrap();
        *counts.entry(event.worker_id).or_default() += 1;
        if counts.len() >= 40 && victim.has_young_worker(&counts, Duration::from_millis(30)) {
            break;
        }
    }
    let running_when_killed = victim.workers("c");
    victim.kill();
    let killed = Instant::now();

    // Settling longer than the 2 s ack wait: a redelivered task's late duplicate shows.
    let settle = Duration::from_secs(3);
    count_reports(
        &mut reports,
        &mut counts,
        &ids,
        Duration::from_secs(60),
        settle,
    )
    .await;
    assert_exactly_once(&counts, &ids);
    all_succeed(&colony, &ids, Duration::from_secs(1)).await;
    // The victim's unfinished tasks were redelivered (after the 2 s ack wait) and
    // completed by the survivor.
    let survived = survivor.workers("c");
    let moved: Vec<_> = victim
        .workers("c")
        .intersection(&survived)
        .cloned()
        .collect();
    assert!(
        !moved.is_empty(),
        "no task moved from the killed node: it had started {} ({} when killed), the survivor {}",
        victim.workers("c").len(),
        running_when_killed.len(),
        survived.len()
    );
    assert!(
        killed.elapsed() < Duration::from_secs(20),
        "{:?}",
        killed.elapsed()
    );
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_inject_and_timeouts_reach_the_node_that_runs_the_worker() {
    let s = setup(&["n1"], |c| {
        c.soft_timeout = Duration::from_secs(2);
        c.hard_timeout = Some(Duration::from_secs(4));
    })
    .await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let ids = colony
        .run_parallel(
            &plugin,
            vec![
                Task::new("inject me").with_input(json!({"action": "wait"})),
                Task::new("stop me").with_input(json!({"action": "spin"})),
                Task::new("wrap up").with_input(json!({"action": "wait"})),
                Task::new("overrun").with_input(json!({"action": "spin"})),
            ],
        )
        .unwrap();

    wait_running(&colony, &ids[..1]).await;
    colony
        .inject(&ids[0], "hello from the colony")
        .await
        .unwrap();
    wait_running(&colony, &ids[1..2]).await;
    let stop = colony.stop_worker(&ids[1]).await.unwrap();
    assert_eq!(stop.state, WorkerState::Stopped);
    assert!(
        stop.clean && stop.elapsed < Duration::from_secs(2),
        "{stop:?}"
    );

    let got = colony
        .wait_for_reports(&ids, Duration::from_secs(20))
        .await
        .unwrap();
    let output = |i: usize| colony.info(&ids[i]).unwrap().result.unwrap().output;
    assert_eq!(got[0].status, ReportStatus::Success);
    assert_eq!(output(0)["got"], "hello from the colony");
    assert_eq!(got[1].status, ReportStatus::Stopped);
    // The soft timeout is injected by the node, the hard one stops the worker there.
    assert_eq!(got[2].status, ReportStatus::Success);
    assert!(
        output(2)["got"]
            .as_str()
            .unwrap()
            .starts_with("[SOFT TIMEOUT]")
    );
    assert_eq!(got[3].status, ReportStatus::Stopped, "{:?}", got[3]);
    assert!(got[3].duration_seconds >= 3.9, "{:?}", got[3]);

    // A worker that has ended is not running anywhere.
    let err = colony.inject(&ids[0], "too late").await.unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_tasks_stop_without_running_and_wait_for_a_node_of_their_plugin() {
    let s = setup(&["n1"], |_| {}).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let node = &s.nodes[0];

    // Four slots busy; the fifth task waits on the queue and is withdrawn from it.
    let ids = colony
        .run_parallel(&plugin, tasks(5, json!({"action": "wait"})))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stop = colony.stop_worker(&ids[4]).await.unwrap();
    assert_eq!(stop.state, WorkerState::Stopped);
    assert!(
        !node.workers("c").contains(&ids[4]),
        "a withdrawn task ran: {stop:?} {ids:?} {:?}",
        node.workers("c")
    );

    // No node serves the echo agent yet: its task is not refused (nodes and colonies
    // start in any order) but waits on the queue, and runs once a node for it starts.
    let echo = colony
        .runtime()
        .load_plugin("echo_agent", guest("echo_agent"))
        .await
        .unwrap();
    let waiting = colony.run_parallel(&echo, vec![Task::new("x")]).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(colony.info(&waiting[0]).unwrap().state, WorkerState::Queued);
    let echo_path = guest("echo_agent");
    let _echo_node = NodeProcess::start_with(
        &s.nats,
        s.dir.path(),
        "echo-node",
        &["--plugin", echo_path.to_str().unwrap()],
    );
    all_succeed(&colony, &waiting, Duration::from_secs(20)).await;

    let outcomes = colony.stop_all().await;
    assert!(
        !node.workers("c").contains(&ids[4]),
        "a withdrawn task ran late"
    );
    assert!(
        outcomes.iter().all(|(_, o)| o.state.is_terminal()),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn a_colony_without_its_nats_server_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ColonyConfig::new("c", dir.path());
    config.nats = Some(format!("nats://127.0.0.1:{port}"));
    let err = match Colony::connect(runtime(), config.clone()).await {
        Err(e) => e,
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(err.to_string().contains("cannot connect to NATS"), "{err}");
    assert!(matches!(
        Colony::open(runtime(), config),
        Err(ColonyError::NeedsConnect { .. })
    ));
}

#[test]
fn the_cli_fans_out_through_nodes_and_explains_what_it_needs() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = NodeProcess::start(&nats, dir.path(), "n1");
    let tasks = dir.path().join("tasks.txt");
    std::fs::write(
        &tasks,
        (0..20)
            .map(|i| format!("{{\"task\": \"t{i}\", \"input\": {{\"action\": \"echo\"}}}}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let cli = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_colony"));
        command.arg("--home").arg(dir.path().join("cli"));
        command
    };
    let output = cli()
        .args(["--nats", &nats.url, "--json", "fanout"])
        .arg(guest("probe_fixture"))
        .arg("--tasks")
        .arg(&tasks)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let reports: Vec<WorkerReport> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(reports.len(), 20);
    assert!(reports.iter().all(|r| r.status == ReportStatus::Success));
    let ids: HashSet<_> = reports.iter().map(|r| &r.worker_id).collect();
    assert_eq!(ids.len(), 20);
    // Workers on a node report their place in the batch, as in-process ones do.
    let batches: HashSet<_> = reports.iter().map(|r| r.batch_id.clone()).collect();
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert!(batches.iter().all(Option::is_some));
    let mut indexes: Vec<_> = reports.iter().map(|r| r.batch_index.unwrap()).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..20).collect::<Vec<u64>>());
    assert!(reports.iter().all(|r| r.batch_size == Some(20)));
    // The next command on this home reads the report stream on from here, not from the
    // start of its history.
    let journal = colony::Journal::open(dir.path().join("cli/journal.db")).unwrap();
    let cursor = journal
        .report_cursor("cli")
        .unwrap()
        .expect("a report cursor");
    assert!(cursor >= 20, "{cursor}");

    // No node serves the echo agent: the fan-out waits, says why on stderr, and gives
    // up at its timeout, stopping what is left (exit code 124).
    let one = dir.path().join("one.txt");
    std::fs::write(&one, "hello\n").unwrap();
    let begun = Instant::now();
    let unserved = cli()
        .args(["--nats", &nats.url, "--json", "fanout"])
        .arg(guest("echo_agent"))
        .args(["--timeout", "5s", "--tasks"])
        .arg(&one)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unserved.stderr);
    assert_eq!(unserved.status.code(), Some(124), "{unserved:?}");
    assert!(
        begun.elapsed() < Duration::from_secs(30),
        "{:?}",
        begun.elapsed()
    );
    assert_eq!(
        stderr
            .matches("no node serves plugin 'echo_agent' (sha256 ")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("1 worker(s) did not report within 5s; stopped"),
        "{stderr}"
    );
    let stopped: Vec<WorkerReport> = String::from_utf8_lossy(&unserved.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(stopped.len(), 1, "{unserved:?}");
    assert_eq!(stopped[0].status, ReportStatus::Stopped);
    assert!(journal.report_cursor("cli").unwrap().unwrap() >= cursor);

    let no_server = cli()
        .args(["node", "--plugin"])
        .arg(guest("probe_fixture"))
        .env_remove("COLONY_NATS")
        .output()
        .unwrap();
    assert!(!no_server.status.success());
    assert!(
        String::from_utf8_lossy(&no_server.stderr).contains("a node needs a NATS server"),
        "{no_server:?}"
    );
    let pinned = dir.path().join("pinned.toml");
    std::fs::write(
        &pinned,
        format!(
            "component = {:?}\nsha256 = \"{}\"\n",
            guest("probe_fixture"),
            "0".repeat(64)
        ),
    )
    .unwrap();
    let mismatch = cli()
        .args(["--nats", &nats.url, "node", "--plugin"])
        .arg(&pinned)
        .output()
        .unwrap();
    assert!(!mismatch.status.success());
    assert!(
        String::from_utf8_lossy(&mismatch.stderr).contains("sha256"),
        "{mismatch:?}"
    );
    let demo = cli().args(["--nats", &nats.url, "demo"]).output().unwrap();
    assert!(!demo.status.success());
    assert!(String::from_utf8_lossy(&demo.stderr).contains("the demo runs in one process"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_shut_down_hands_its_tasks_to_another() {
    let mut s = setup(&["first"], |_| {}).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let first = &mut s.nodes[0];
    let ids = colony
        .run_parallel(
            &plugin,
            vec![Task::new("outlive").with_input(json!({"action": "wait"}))],
        )
        .unwrap();
    wait_running(&colony, &ids).await;
    assert!(first.terminate().success());
    assert!(first.workers("c").contains(&ids[0]));

    // Handed back at once (no ack wait): the next node takes it and runs it again.
    let second = NodeProcess::start(&s.nats, s.dir.path(), "second");
    let begun = Instant::now();
    while !second.workers("c").contains(&ids[0]) {
        // Well under the 2 s ack wait a dead node's tasks would wait for.
        assert!(
            begun.elapsed() < Duration::from_millis(1500),
            "the task did not move"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Sent to the second node, or held until it starts the worker.
    colony.inject(&ids[0], "finish here").await.unwrap();
    let report = colony
        .wait_for_reports(&ids, Duration::from_secs(10))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(report.status, ReportStatus::Success);
    assert_eq!(
        colony.info(&ids[0]).unwrap().result.unwrap().output["got"],
        "finish here"
    );
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_colony_reads_the_reports_it_missed() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("cli");
    let tasks = dir.path().join("tasks.txt");
    std::fs::write(&tasks, "a\nb\nc\n").unwrap();
    // A node must have served the plugin once, or the tasks are refused.
    drop(NodeProcess::start(&nats, dir.path(), "once"));
    let mut fanout = Command::new(env!("CARGO_BIN_EXE_colony"))
        .arg("--home")
        .arg(&home)
        .args(["--nats", &nats.url, "--json", "fanout"])
        .arg(guest("probe_fixture"))
        .arg("--tasks")
        .arg(&tasks)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // No node runs now: the tasks wait on the queue; the colony process dies.
    let journal = home.join("journal.db");
    let begun = Instant::now();
    while colony::Journal::open(&journal)
        .and_then(|j| j.workers())
        .map_or(0, |w| w.len())
        < 3
    {
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "fanout queued nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    fanout.kill().unwrap();
    fanout.wait().unwrap();

    let _node = NodeProcess::start(&nats, dir.path(), "later");
    tokio::time::sleep(colony::HEARTBEAT_STALE_AFTER).await;
    let mut config = ColonyConfig::new("cli", &home);
    config.nats = Some(nats.url.clone());
    let colony = Colony::connect(runtime(), config).await.unwrap();
    let begun = Instant::now();
    loop {
        let states: Vec<colony::RecordState> = colony
            .journal()
            .workers()
            .unwrap()
            .into_iter()
            .map(|w| w.state)
            .collect();
        if states.iter().all(|s| s == "completed") {
            break;
        }
        assert!(begun.elapsed() < Duration::from_secs(10), "{states:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(colony.journal().reports(None).unwrap().len(), 3);
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_nodes_message_each_other_and_the_overseer() {
    let s = setup(&["n1"], |_| {}).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let (overseer, mut turns) = overseer_with_turns(&colony, &plugin);

    let listener = colony
        .run_parallel(
            &plugin,
            vec![Task::new("listen").with_input(json!({"action": "wait"}))],
        )
        .unwrap()
        .remove(0);
    wait_running(&colony, std::slice::from_ref(&listener)).await;
    let senders = colony
        .run_parallel(
            &plugin,
            vec![
                Task::new("tell the listener").with_input(
                    json!({"action": "send", "to": listener, "message": "hi listener"}),
                ),
                Task::new("tell the overseer")
                    .with_input(json!({"action": "send", "to": "overseer", "message": "hi boss"})),
            ],
        )
        .unwrap();
    colony
        .wait_for_reports(std::slice::from_ref(&listener), Duration::from_secs(10))
        .await
        .unwrap();
    let heard = colony.info(&listener).unwrap().result.unwrap().output;
    assert_eq!(
        heard["got"],
        format!("[MESSAGE from {}] hi listener", senders[0])
    );

    let expected = format!("[MESSAGE from {}] hi boss", senders[1]);
    let begun = Instant::now();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), turns.recv())
            .await
            .expect("the overseer never heard the worker")
            .unwrap();
        if event.worker_id == overseer.id() && event.data["message"] == expected.as_str() {
            break;
        }
        assert!(begun.elapsed() < Duration::from_secs(10));
    }
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_injected_before_a_worker_runs_wait_for_it() {
    // Five in flight: four run on the node's four slots, the fifth waits on the NATS
    // queue, the sixth in the colony's own queue.
    let s = setup(&["n1"], |c| c.max_concurrent_workers = 5).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let ids = colony
        .run_parallel(&plugin, tasks(6, json!({"action": "wait"})))
        .unwrap();
    wait_running(&colony, &ids[..4]).await;
    colony.inject(&ids[4], "early on the queue").await.unwrap();
    colony.inject(&ids[5], "early in the colony").await.unwrap();
    let too_big = "x".repeat(plugin.limits().max_message_bytes + 1);
    assert!(colony.inject(&ids[5], too_big).await.is_err());
    for id in &ids[..4] {
        colony.inject(id, "go").await.unwrap();
    }
    all_succeed(&colony, &ids, Duration::from_secs(10)).await;
    let got = |i: usize| colony.info(&ids[i]).unwrap().result.unwrap().output["got"].clone();
    assert_eq!(got(0), "go");
    assert_eq!(got(4), "early on the queue");
    assert_eq!(got(5), "early in the colony");
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_delivered_too_often_fails_instead_of_running_again() {
    let mut s = setup(&["doomed"], |_| {}).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let ids = colony
        .run_parallel(
            &plugin,
            vec![Task::new("again").with_input(json!({"action": "wait"}))],
        )
        .unwrap();
    wait_running(&colony, &ids).await;
    s.nodes[0].kill();
    // Its second delivery (after the 2 s ack wait) is over this node's limit of one.
    let strict =
        NodeProcess::start_with(&s.nats, s.dir.path(), "strict", &["--max-deliveries", "1"]);
    let within = Duration::from_secs(15);
    let report = fails_with(
        &colony,
        &ids,
        within,
        "delivered 2 times (more than 1): given up",
    )
    .await;
    assert!(report.summary.starts_with("Not run:"), "{}", report.summary);
    assert!(!strict.workers("c").contains(&ids[0]), "it ran again");
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_task_on_the_queue_is_dropped_and_the_node_serves_on() {
    let s = setup(&["n1"], |_| {}).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let sha = plugin.sha256().unwrap().to_owned();
    // Anyone allowed on the subject can publish anything there.
    let client = async_nats::connect(&s.nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    // Not a task; a task of a worker id that cannot be a subject (so no report subject).
    let unreportable = colony::cluster::TaskMessage {
        worker_id: "w.1".into(),
        colony_id: "c".into(),
        plugin: "probe_fixture".into(),
        sha256: sha.clone(),
        task: "x".into(),
        input: json!({}),
        token_budget: None,
        tool_call_budget: None,
        soft_timeout: Duration::from_secs(60),
        hard_timeout: Duration::from_secs(120),
        inbox: Vec::new(),
        batch: None,
        trace_parent: None,
    };
    for garbage in [
        b"not json".to_vec(),
        serde_json::to_vec(&unreportable).unwrap(),
    ] {
        js.publish(format!("colony.c.tasks.{sha}"), garbage.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let ids = colony
        .run_parallel(&plugin, tasks(3, json!({"action": "echo"})))
        .unwrap();
    all_succeed(&colony, &ids, Duration::from_secs(10)).await;
    // Neither garbage message is left for a node to choke on again.
    let tasks_stream = js.get_stream("COLONY_TASKS").await.unwrap();
    let begun = Instant::now();
    while tasks_stream.get_info().await.unwrap().state.messages != 0 {
        assert!(
            begun.elapsed() < Duration::from_secs(5),
            "garbage left on the queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_a_worker_no_node_runs_is_an_error_the_sender_sees() {
    let s = setup(&["n1"], |_| {}).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let sender = colony
        .run_parallel(
            &plugin,
            vec![Task::new("tell nobody").with_input(
                json!({"action": "send", "to": "w-nobody", "message": "anyone there?"}),
            )],
        )
        .unwrap();
    let reports = colony
        .wait_for_reports(&sender, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(reports[0].status, ReportStatus::Success);
    let answer = colony.info(&sender[0]).unwrap().result.unwrap().output["answer"].clone();
    assert_eq!(
        answer, "Err(\"no worker 'w-nobody' in colony 'c'\")",
        "as the WIT promises for an unknown target, worded as in process"
    );
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_message_to_a_worker_still_queued_waits_for_it_as_in_process() {
    let s = setup(&["n1"], |c| c.max_concurrent_workers = 1).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let (overseer, mut turns) = overseer_with_turns(&colony, &plugin);
    let ids = colony
        .run_parallel(&plugin, tasks(2, json!({"action": "wait"})))
        .unwrap();
    wait_running(&colony, &ids[..1]).await;
    assert_eq!(colony.info(&ids[1]).unwrap().state, WorkerState::Queued);
    overseer
        .inject(format!("send {} hello from the overseer", ids[1]))
        .unwrap();
    let turn = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), turns.recv())
            .await
            .expect("the overseer's turn")
            .unwrap();
        if event.worker_id == overseer.id() {
            break event;
        }
    };
    assert_eq!(turn.data["output"]["answer"], "Ok(())", "{:?}", turn.data);
    colony.inject(&ids[0], "go").await.unwrap();
    all_succeed(&colony, &ids, Duration::from_secs(10)).await;
    let got = colony.info(&ids[1]).unwrap().result.unwrap().output["got"].clone();
    assert_eq!(
        got,
        format!("[MESSAGE from {}] hello from the overseer", overseer.id())
    );
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_message_from_a_node_to_a_worker_still_queued_waits_for_it() {
    let s = setup(&["n1"], |c| c.max_concurrent_workers = 1).await;
    let (colony, plugin) = (s.colony.clone(), s.plugin.clone());
    let sender =
        colony
            .run_parallel(
                &plugin,
                vec![Task::new("message a later worker").with_input(
                    json!({"action": "send_to_injected", "message": "hello from a node"}),
                )],
            )
            .unwrap();
    wait_running(&colony, &sender).await;
    let queued = colony
        .run_parallel(&plugin, tasks(1, json!({"action": "wait"})))
        .unwrap();
    assert_eq!(colony.info(&queued[0]).unwrap().state, WorkerState::Queued);
    colony.inject(&sender[0], queued[0].clone()).await.unwrap();
    all_succeed(&colony, &sender, Duration::from_secs(10)).await;
    let answer = colony.info(&sender[0]).unwrap().result.unwrap().output["answer"].clone();
    assert_eq!(answer, "Ok(())");
    all_succeed(&colony, &queued, Duration::from_secs(10)).await;
    let got = colony.info(&queued[0]).unwrap().result.unwrap().output["got"].clone();
    assert_eq!(
        got,
        format!("[MESSAGE from {}] hello from a node", sender[0])
    );
    colony.stop_all().await;
}

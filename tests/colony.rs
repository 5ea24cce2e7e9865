//! Colony orchestration: fan-out with a concurrency cap and FIFO queue, batch cap, soft and
//! hard timeouts, report collection, reports to the overseer, messages between workers,
//! bounded stop, and the journal.

use std::time::{Duration, Instant};

use colony::{
    Colony, ColonyConfig, ColonyError, EventFilter, EventType, ReportStatus, Task, WorkerState,
};
use colony_tests::{next_event, plugin, runtime};
use serde_json::json;

fn colony(home: &std::path::Path, configure: impl FnOnce(&mut ColonyConfig)) -> Colony {
    let mut config = ColonyConfig::new("test-colony", home);
    configure(&mut config);
    Colony::open(runtime(), config).unwrap()
}

fn probe_task(action: &str) -> Task {
    Task::new(format!("probe {action}")).with_input(json!({"action": action}))
}

fn states(colony: &Colony, ids: &[String]) -> Vec<WorkerState> {
    ids.iter()
        .map(|id| colony.worker(id).unwrap().state())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_concurrent_workers_run_and_the_rest_start_in_order() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |c| c.max_concurrent_workers = 2);
    let probe = plugin("probe-fixture").await;
    let begun = Instant::now();
    let ids = colony
        .run_parallel(&probe, (0..6).map(|_| probe_task("wait")).collect())
        .unwrap();
    assert!(
        begun.elapsed() < Duration::from_millis(200),
        "run_parallel returns at once"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    use WorkerState::*;
    assert_eq!(
        states(&colony, &ids),
        [Running, Running, Queued, Queued, Queued, Queued]
    );
    for (i, id) in ids.iter().enumerate() {
        // Each message releases one waiting worker, which frees a slot for the next in
        // line: the oldest queued worker starts, the others stay queued. (Checked by
        // state: two workers started a moment apart may publish EXECUTION_STARTED in
        // either order.)
        let worker = colony.worker(id).unwrap();
        worker.inject("go").unwrap();
        worker.wait().await;
        if let Some(next) = ids.get(i + 2) {
            let begun = Instant::now();
            while colony.worker(next).unwrap().state() != Running {
                assert!(
                    begun.elapsed() < Duration::from_secs(5),
                    "{next} did not start"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let later = &ids[(i + 3).min(ids.len())..];
            assert!(
                states(&colony, later).iter().all(|s| *s == Queued),
                "queued workers start in FIFO order"
            );
        }
    }
    let reports = colony
        .wait_for_reports(&ids, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(reports.iter().all(|r| r.status == ReportStatus::Success));
    colony.stop_all().await;
}

#[tokio::test]
async fn a_batch_over_the_cap_is_refused_whole() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |c| c.max_batch = 3);
    let probe = plugin("probe-fixture").await;
    let err = colony
        .run_parallel(&probe, (0..4).map(|_| probe_task("echo")).collect())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ColonyError::BatchTooLarge {
                size: 4,
                cap: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "colony 'test-colony': a batch of 4 tasks is over the limit of 3"
    );
    assert!(
        colony.workers().is_empty(),
        "nothing of a refused batch was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_workers_never_start_after_stop_all() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |c| c.max_concurrent_workers = 1);
    let mut started = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::ExecutionStarted]));
    let probe = plugin("probe-fixture").await;
    let ids = colony
        .run_parallel(
            &probe,
            vec![probe_task("spin"), probe_task("echo"), probe_task("echo")],
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let begun = Instant::now();
    let outcomes = colony.stop_all().await;
    assert!(
        begun.elapsed() < Duration::from_secs(1),
        "{:?}",
        begun.elapsed()
    );
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| o.clean && o.state == WorkerState::Stopped),
        "{outcomes:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut starts = Vec::new();
    while let Ok(Some(e)) = started.try_recv() {
        starts.push(e.worker_id);
    }
    assert_eq!(
        starts,
        [ids[0].clone()],
        "only the first worker ever started"
    );
    let err = colony
        .run_parallel(&probe, vec![probe_task("echo")])
        .unwrap_err();
    assert!(matches!(err, ColonyError::Stopped { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_timeout_warns_the_running_worker_and_hard_timeout_stops_it() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |c| {
        c.soft_timeout = Duration::from_millis(150);
        c.hard_timeout = Some(Duration::from_millis(400));
    });
    let probe = plugin("probe-fixture").await;
    let ids = colony
        .run_parallel(&probe, vec![probe_task("wait"), probe_task("spin")])
        .unwrap();
    let reports = colony
        .wait_for_reports(&ids, Duration::from_secs(5))
        .await
        .unwrap();
    // The waiting guest saw the soft-timeout message mid-run and finished.
    assert_eq!(reports[0].status, ReportStatus::Success);
    let got = colony.worker(&ids[0]).unwrap().result().unwrap().output["got"].clone();
    assert!(got.as_str().unwrap().starts_with("[SOFT TIMEOUT]"), "{got}");
    // The spinning guest ignored it and was stopped at the hard timeout.
    assert_eq!(reports[1].status, ReportStatus::Stopped);
    let duration = reports[1].duration_seconds;
    assert!((0.35..2.0).contains(&duration), "{duration}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_reports_gives_stored_live_and_timeout_reports() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |_| {});
    let probe = plugin("probe-fixture").await;
    let done = colony
        .run_parallel(&probe, vec![probe_task("echo")])
        .unwrap();
    colony.worker(&done[0]).unwrap().wait().await;
    let later = colony
        .run_parallel(&probe, vec![probe_task("wait"), probe_task("wait")])
        .unwrap();
    let ids = vec![done[0].clone(), later[0].clone(), later[1].clone()];
    let finisher = colony.worker(&later[0]).unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        finisher.inject("now").unwrap();
    });
    let reports = colony
        .wait_for_reports(&ids, Duration::from_millis(700))
        .await
        .unwrap();
    let statuses: Vec<_> = reports.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            ReportStatus::Success,
            ReportStatus::Success,
            ReportStatus::Timeout
        ]
    );
    assert_eq!(reports[2].worker_id, ids[2]);
    assert_eq!(reports[2].task, "probe wait");
    let err = colony
        .wait_for_reports(&["nobody".to_owned()], Duration::from_millis(10))
        .await
        .unwrap_err();
    assert!(matches!(err, ColonyError::UnknownWorker { .. }), "{err}");
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_report_reaches_the_overseer_as_one_turn_in_arrival_order() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |_| {});
    let mut reports = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let mut turns = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::TurnCompleted]));
    let overseer = colony
        .start_overseer(&plugin("chat-agent").await, "oversee", vec![])
        .unwrap();
    let ids = colony
        .run_parallel(
            &plugin("silent-agent").await,
            vec![Task::new("a"), Task::new("b c"), Task::new("d e f")],
        )
        .unwrap();
    colony
        .wait_for_reports(&ids, Duration::from_secs(5))
        .await
        .unwrap();
    let mut arrival = Vec::new();
    while arrival.len() < 3 {
        let e = next_event(&mut reports, Duration::from_secs(5)).await;
        if e.worker_id != overseer.id() {
            arrival.push(e.worker_id);
        }
    }
    let mut heard = Vec::new();
    while heard.len() < 3 {
        heard.push(
            next_event(&mut turns, Duration::from_secs(5)).await.data["message"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for (message, id) in heard.iter().zip(&arrival) {
        assert!(
            message.starts_with(&format!("[WORKER_REPORT] {id}: success — Completed task")),
            "{message}"
        );
    }
    colony.stop_all().await;
}

/// Waits (at most 5 s) until the colony's bus has `n` subscribers.
async fn subscribers_become(colony: &Colony, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while colony.bus().subscriber_count() != n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    colony.bus().subscriber_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_live_overseer_has_the_colonys_reports_forwarded() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |_| {});
    let silent = plugin("silent-agent").await;
    // A fan-out with nobody to forward to: no subscription copies its reports.
    let ids = colony
        .run_parallel(&silent, vec![Task::new("a"), Task::new("b")])
        .unwrap();
    colony
        .wait_for_reports(&ids, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(colony.bus().subscriber_count(), 0);
    let overseer = colony
        .start_overseer(&plugin("chat-agent").await, "oversee", vec![])
        .unwrap();
    assert_eq!(colony.bus().subscriber_count(), 1, "its forwarder");
    let mut turns = colony.bus().subscribe(
        EventFilter::all()
            .types([EventType::TurnCompleted])
            .workers([overseer.id().to_owned()]),
    );
    let ids = colony.run_parallel(&silent, vec![Task::new("c")]).unwrap();
    let heard = next_event(&mut turns, Duration::from_secs(5)).await;
    let message = heard.data["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("[WORKER_REPORT] {}", ids[0])),
        "{message}"
    );
    drop(turns);
    // Once the overseer has ended, its forwarder lets go of its subscription.
    colony.stop_worker(overseer.id()).await.unwrap();
    assert_eq!(subscribers_become(&colony, 0).await, 0);
    let ids = colony.run_parallel(&silent, vec![Task::new("d")]).unwrap();
    let reports = colony
        .wait_for_reports(&ids, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reports[0].status, ReportStatus::Success);
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_message_siblings_and_the_overseer_through_the_host() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |_| {});
    let mut turns = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::TurnCompleted]));
    colony
        .start_overseer(&plugin("chat-agent").await, "oversee", vec![])
        .unwrap();
    let probe = plugin("probe-fixture").await;
    let listener = colony
        .run_parallel(&probe, vec![probe_task("wait")])
        .unwrap();
    let send = |to: &str, message: &str| {
        Task::new("send").with_input(json!({"action": "send", "to": to, "message": message}))
    };
    let senders = colony
        .run_parallel(
            &probe,
            vec![
                send(&listener[0], "hello sibling"),
                send("overseer", "hello boss"),
                send("nobody", "?"),
            ],
        )
        .unwrap();
    let reports = colony
        .wait_for_reports(&senders, Duration::from_secs(5))
        .await
        .unwrap();
    let answers: Vec<String> = senders
        .iter()
        .map(|id| {
            colony.worker(id).unwrap().result().unwrap().output["answer"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(answers[0], "Ok(())");
    assert_eq!(answers[1], "Ok(())");
    assert_eq!(
        answers[2],
        "Err(\"no worker 'nobody' in colony 'test-colony'\")"
    );
    assert!(reports.iter().all(|r| r.status == ReportStatus::Success));
    let sibling = colony
        .wait_for_reports(&listener, Duration::from_secs(5))
        .await
        .unwrap();
    let got = colony
        .worker(&listener[0])
        .unwrap()
        .result()
        .unwrap()
        .output["got"]
        .clone();
    assert_eq!(got, format!("[MESSAGE from {}] hello sibling", senders[0]));
    assert_eq!(sibling[0].status, ReportStatus::Success);
    let mut overseer_heard = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_secs(2), turns.recv()).await {
            overseer_heard.push(e.data["message"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        overseer_heard.contains(&format!("[MESSAGE from {}] hello boss", senders[1])),
        "{overseer_heard:?}"
    );
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_holds_states_and_reports_before_they_are_published() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |_| {});
    let mut reports = colony
        .bus()
        .subscribe(EventFilter::all().types([EventType::SubagentReport]));
    let ids = colony
        .run_parallel(&plugin("echo-agent").await, vec![Task::new("journal me")])
        .unwrap();
    let event = next_event(&mut reports, Duration::from_secs(5)).await;
    // By the time the bus delivers the report, the journal has it.
    let journaled = colony.journal().reports(Some(&ids[0])).unwrap();
    assert_eq!(journaled.len(), 1);
    assert_eq!(journaled[0].report, event.data);
    colony.worker(&ids[0]).unwrap().wait().await;
    let record = colony.journal().worker(&ids[0]).unwrap().unwrap();
    assert_eq!(record.state, "completed");
    assert_eq!(record.colony_id, "test-colony");
    assert_eq!(record.task, "journal me");
    assert!(record.started_at.is_some() && record.ended_at.is_some());
    assert_eq!(record.result.unwrap().summary, "Summary: journal me");
    // Its events and its conversation too, in order; and no folder: the journal keeps
    // what it said, and a guest that cannot open files gets no `/data`.
    let events = colony.journal().events(Some(&ids[0]), 0, 100).unwrap();
    let types: Vec<_> = events.iter().map(|(_, e)| e.event_type.as_str()).collect();
    assert_eq!(types.first(), Some(&"EXECUTION_STARTED"), "{types:?}");
    assert_eq!(types.last(), Some(&"SUBAGENT_REPORT"), "{types:?}");
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0));
    let parts = colony.journal().parts(&ids[0]).unwrap();
    assert_eq!(parts.first().map(|p| p.seq), Some(Some(0)), "{parts:?}");
    assert!(
        parts.iter().any(|p| p.content.contains("journal me")),
        "{parts:?}"
    );
    assert!(!home.path().join("workers").join(&ids[0]).exists());
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_a_home_marks_workers_left_running_as_interrupted() {
    let home = tempfile::tempdir().unwrap();
    let journal = colony::Journal::open(home.path().join("journal.db")).unwrap();
    journal.add_worker(&colony::WorkerRecord {
        colony_id: "old".into(),
        ..record("w-lost", colony::RecordState::Running)
    });
    // The journal's owner (this test) never beats again: as if its process had died.
    drop(journal);
    let colony = colony(home.path(), |_| {});
    assert_eq!(colony.interrupted(), ["w-lost"]);
    let record = colony.journal().worker("w-lost").unwrap().unwrap();
    assert_eq!(record.state, "interrupted");
    assert!(record.interrupted_at.is_some());
    colony.stop_all().await;
}

/// A record of worker `id` in state `state`, as a colony journals one.
fn record(id: &str, state: colony::RecordState) -> colony::WorkerRecord {
    colony::WorkerRecord {
        id: id.into(),
        colony_id: "c".into(),
        plugin: "probe".into(),
        plugin_source: None,
        task: "t".into(),
        input: json!({}),
        mode: colony::WorkerMode::Ephemeral,
        state,
        storage: None,
        created_at: chrono_now(),
        started_at: None,
        ended_at: None,
        interrupted_at: None,
        result: None,
        batch: None,
        token_budget: None,
        tool_call_budget: None,
        plugin_sha256: None,
        lineage: None,
    }
}

fn info(id: &str, state: WorkerState, summary: Option<&str>) -> colony::WorkerInfo {
    colony::WorkerInfo {
        id: id.into(),
        task: "t".into(),
        plugin: "probe".into(),
        mode: colony::WorkerMode::Ephemeral,
        state,
        started_at: Some(chrono_now()),
        result: summary.map(|summary| colony::WorkerResult {
            output: Default::default(),
            error: None,
            tokens_used: 0,
            tool_calls_used: 0,
            duration_seconds: 0.1,
            status: colony::ReportStatus::Success,
            summary: summary.into(),
            data: Default::default(),
        }),
    }
}

#[tokio::test]
async fn journal_states_only_move_forward_whatever_order_they_arrive_in() {
    let home = tempfile::tempdir().unwrap();
    let journal = colony::Journal::open(home.path().join("journal.db")).unwrap();
    journal.add_worker(&record("w", colony::RecordState::Queued));
    let state = |id| journal.worker(id).unwrap().unwrap().state;

    journal.set_state(&info("w", WorkerState::Running, None));
    assert_eq!(state("w"), colony::RecordState::Running);
    journal.set_state(&info("w", WorkerState::Completed, Some("first")));
    assert_eq!(state("w"), colony::RecordState::Completed);
    // A late "running" (a node's start event overtaken by its report) changes nothing,
    // nor does a second end: the first one stands.
    journal.set_state(&info("w", WorkerState::Running, None));
    journal.set_state(&info("w", WorkerState::Queued, None));
    journal.set_state(&info("w", WorkerState::Failed, Some("second")));
    let kept = journal.worker("w").unwrap().unwrap();
    assert_eq!(kept.state, colony::RecordState::Completed);
    assert_eq!(kept.result.unwrap().summary, "first");
    assert!(kept.ended_at.is_some());

    // An interrupted worker's late report still ends it; a late start does not revive it.
    journal.add_worker(&record("lost", colony::RecordState::Interrupted));
    journal.set_state(&info("lost", WorkerState::Running, None));
    assert_eq!(state("lost"), colony::RecordState::Interrupted);
    let late = info("lost", WorkerState::Completed, Some("late"));
    let report = colony::AgentEvent {
        event_type: colony::EventType::SubagentReport,
        stream_id: "lost".into(),
        worker_id: "lost".into(),
        execution_id: "lost".into(),
        data: json!({"summary": "late"}),
        timestamp: chrono_now(),
    };
    journal
        .set_ended(
            "lost",
            WorkerState::Completed,
            late.result.as_ref().unwrap(),
            &report,
        )
        .await
        .unwrap();
    assert_eq!(state("lost"), colony::RecordState::Completed);
    assert_eq!(journal.reports(Some("lost")).unwrap().len(), 1);
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[test]
fn opening_a_colony_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let home = tempfile::tempdir().unwrap();
    let config = ColonyConfig::new("no-runtime", home.path());
    match Colony::open(runtime(), config) {
        Err(e @ ColonyError::NoRuntime { .. }) => assert_eq!(
            e.to_string(),
            "colony 'no-runtime' must be opened within a tokio runtime"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened without a runtime"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_is_one_journaled_batch_with_each_task_at_its_index() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |c| c.max_batch = 2);
    let tasks: Vec<Task> = (0..5).map(|_| probe_task("echo")).collect();
    // A batch is the whole fan-out: not capped by `max_batch`.
    let batch = colony
        .fan_out(&plugin("probe-fixture").await, tasks)
        .unwrap();
    assert_eq!(batch.size, 5);
    let reports = colony
        .wait_for_reports(&batch.ids(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(reports.iter().all(|r| r.status == ReportStatus::Success));
    // Every report says which batch it belongs to, where in it, and how big it is.
    for (index, report) in reports.iter().enumerate() {
        assert_eq!(report.batch_id.as_deref(), Some(batch.id.as_str()));
        assert_eq!(report.batch_index, Some(index as u64));
        assert_eq!(report.batch_size, Some(5));
    }
    let record = colony.journal().batch(&batch.id).unwrap().unwrap();
    let places: Vec<_> = record
        .workers
        .iter()
        .map(|w| (w.batch.as_ref().unwrap().index, w.id.clone()))
        .collect();
    assert_eq!(places, batch.started);
    // Nothing is left to run: resuming it runs nothing and gives back every report.
    let again = colony
        .resume_batch(&plugin("probe-fixture").await, &batch.id)
        .unwrap();
    assert!(again.started.is_empty());
    assert_eq!(again.reported.len(), 5);
    let err = colony
        .resume_batch(&plugin("probe-fixture").await, "b-nope")
        .unwrap_err();
    assert!(matches!(err, ColonyError::UnknownBatch { .. }), "{err}");
    // A batch whose workers still run here is not run twice.
    let slow = colony
        .fan_out(&plugin("probe-fixture").await, vec![probe_task("wait")])
        .unwrap();
    let err = colony
        .resume_batch(&plugin("probe-fixture").await, &slow.id)
        .unwrap_err();
    assert!(
        matches!(err, ColonyError::BatchRunning { running: 1, .. }),
        "{err}"
    );
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_batch_runs_exactly_the_tasks_without_a_report_once_each() {
    let home = tempfile::tempdir().unwrap();
    // A batch a dead process left: task 0 reported, task 1 interrupted, task 2 never
    // journaled.
    {
        let journal = colony::Journal::open(home.path().join("journal.db")).unwrap();
        journal.add_batch("b-old", "test-colony", 3);
        let place = |index| {
            Some(colony::BatchPlace {
                id: "b-old".into(),
                index,
                size: 3,
            })
        };
        for (id, state, index) in [
            ("w-done", colony::RecordState::Queued, 0),
            ("w-lost", colony::RecordState::Running, 1),
        ] {
            journal.add_worker(&colony::WorkerRecord {
                colony_id: "test-colony".into(),
                task: format!("task {index}"),
                input: json!({"action": "echo"}),
                batch: place(index),
                token_budget: Some(5_000),
                tool_call_budget: Some(7),
                ..record(id, state)
            });
        }
        let done = info("w-done", WorkerState::Completed, Some("done before"));
        let report = colony::AgentEvent {
            event_type: EventType::SubagentReport,
            stream_id: "w-done".into(),
            worker_id: "w-done".into(),
            execution_id: "w-done".into(),
            data: json!({}),
            timestamp: chrono_now(),
        };
        journal.end_with_report(&done, &report).await.unwrap();
    }
    // Its owner never beat: its running worker is interrupted when the home is opened.
    let colony = colony(home.path(), |_| {});
    assert_eq!(colony.interrupted(), ["w-lost"]);
    let batch = colony
        .resume_batch(&plugin("probe-fixture").await, "b-old")
        .unwrap();
    assert_eq!(batch.size, 3);
    assert_eq!(batch.started.len(), 1);
    assert_eq!(batch.started[0].0, 1);
    let reported: Vec<_> = batch
        .reported
        .iter()
        .map(|(i, r)| (*i, r.status, r.summary.clone()))
        .collect();
    assert_eq!(
        reported[0],
        (0, ReportStatus::Success, "done before".into())
    );
    assert_eq!(reported[1].0, 2);
    assert_eq!(reported[1].1, ReportStatus::Failed);
    let lost = &batch.reported[1].1;
    assert!(
        lost.error.as_deref().unwrap().contains("never journaled"),
        "{lost:?}"
    );
    let rerun = colony
        .wait_for_reports(&batch.ids(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(rerun[0].task, "task 1");
    assert_eq!(rerun[0].status, ReportStatus::Success);
    // The rerun report names its place in the batch, as the first run's would have.
    assert_eq!(
        (
            rerun[0].batch_id.as_deref(),
            rerun[0].batch_index,
            rerun[0].batch_size
        ),
        (Some("b-old"), Some(1), Some(3))
    );
    let record = colony.journal().batch("b-old").unwrap().unwrap();
    let at_one: Vec<_> = record
        .workers
        .iter()
        .filter(|w| w.batch.as_ref().unwrap().index == 1)
        .collect();
    // The task runs again under the budgets it was given the first time.
    let rerun_record = at_one.last().unwrap();
    assert_eq!(
        (rerun_record.token_budget, rerun_record.tool_call_budget),
        (Some(5_000), Some(7))
    );
    let at_one: Vec<_> = at_one.iter().map(|w| w.state).collect();
    assert_eq!(
        at_one,
        [
            colony::RecordState::Interrupted,
            colony::RecordState::Completed
        ]
    );
    colony.stop_all().await;
}

#[test]
fn a_journal_an_earlier_version_made_opens_with_its_workers_readable() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("journal.db");
    // The workers table as the first version made it: no batches, no budgets.
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE workers (
            id TEXT PRIMARY KEY, colony_id TEXT NOT NULL, plugin TEXT NOT NULL,
            plugin_source TEXT, task TEXT NOT NULL, input TEXT NOT NULL, mode TEXT NOT NULL,
            state TEXT NOT NULL, storage TEXT, created_at TEXT NOT NULL, started_at TEXT,
            ended_at TEXT, interrupted_at TEXT, result TEXT, owner TEXT);
         INSERT INTO workers (id, colony_id, plugin, task, input, mode, state, created_at)
         VALUES ('w-old', 'c', 'probe', 'an old task', '{}', 'ephemeral', 'completed',
                 '2026-01-01T00:00:00Z');",
    )
    .unwrap();
    drop(old);
    let journal = colony::Journal::open(&path).unwrap();
    let found = journal.worker("w-old").unwrap().unwrap();
    assert_eq!(found.task, "an old task");
    assert_eq!(found.state, colony::RecordState::Completed);
    assert_eq!(found.batch, None);
    assert_eq!((found.token_budget, found.tool_call_budget), (None, None));
    // New rows keep what the old table had no column for.
    journal.add_worker(&colony::WorkerRecord {
        token_budget: Some(9),
        ..record("w-new", colony::RecordState::Queued)
    });
    journal.flush().unwrap();
    let again = colony::Journal::open(&path).unwrap();
    assert_eq!(
        again.worker("w-new").unwrap().unwrap().token_budget,
        Some(9)
    );
}

#[tokio::test]
async fn an_ended_worker_can_be_forgotten_and_a_running_one_cannot() {
    let home = tempfile::tempdir().unwrap();
    let colony = colony(home.path(), |_| {});
    let plugin = plugin("probe-fixture").await;
    let ids = colony
        .run_parallel(&plugin, vec![probe_task("echo"), probe_task("wait")])
        .unwrap();
    let reports = colony
        .wait_for_reports(&ids[..1], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(reports[0].status, ReportStatus::Success);
    assert!(!colony.forget(&ids[1]), "a running worker is kept");
    assert!(colony.forget(&ids[0]));
    assert!(colony.info(&ids[0]).is_none() && colony.worker(&ids[0]).is_none());
    assert_eq!(colony.workers().len(), 1);
    // The journal still has it.
    let record = colony.journal().worker(&ids[0]).unwrap().unwrap();
    assert_eq!(record.state, colony::RecordState::Completed);
    colony.stop_all().await;
}

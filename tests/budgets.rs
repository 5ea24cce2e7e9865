//! The host-side budgets, against the hostile fixture: what a guest makes the host hold
//! (its inbox, conversation pages, tool results), write (its folder) and open (files),
//! each obeyed below its bound and enforced at it with an error the guest sees.
//!
//! The read-amplification test measuring the process's memory is in `amplification.rs`,
//! a binary of its own so no other test's allocations are counted.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use colony::{Plugin, ReportStatus, Worker, WorkerError, WorkerResult, WorkerSpec, WorkerState};
use colony_tests::guest_path;
use serde_json::{Value, json};

/// The hostile fixture as a plugin whose manifest has `extra` lines.
fn plugin(dir: &Path, name: &str, extra: &str) -> Plugin {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "name = {name:?}\ncomponent = {:?}\n{extra}\n",
        guest_path("hostile-fixture").display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    colony_tests::runtime()
        .plugin_from_manifest(colony::Manifest::load(&path).unwrap())
        .unwrap()
}

/// Runs one attack with a storage folder under `dir`; its result and its folder.
async fn attack(plugin: &Plugin, dir: &Path, id: &str, input: Value) -> (WorkerResult, PathBuf) {
    let folder = dir.join("workers").join(id);
    let spec = WorkerSpec::ephemeral(id, "attack")
        .with_input(input)
        .with_storage(&folder);
    let worker = Worker::new(plugin, spec, None).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), worker.run())
        .await
        .expect("the attack ends")
        .unwrap();
    (result, folder)
}

/// Bytes of every file under `dir`.
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                folder_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn output(result: &WorkerResult) -> Value {
    Value::Object(result.output.clone())
}

const MIB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_appends_stop_at_the_disk_quota() {
    let dir = tempfile::tempdir().unwrap();
    let quota = 4 * MIB;
    let plugin = plugin(
        dir.path(),
        "appender",
        &format!("[limits]\ndisk_bytes = {quota}"),
    );
    let part = 256 * 1024;
    let (result, folder) = attack(
        &plugin,
        dir.path(),
        "appender",
        json!({"attack": "append-until-refused", "part_bytes": part}),
    )
    .await;
    assert_eq!(result.status, ReportStatus::Success, "{result:?}");
    let out = output(&result);
    let denied = out["denied"].as_str().unwrap();
    assert!(
        denied.contains("disk quota (4 MiB)") && denied.contains("conversation part"),
        "{denied}"
    );
    // Obeyed below the quota: 15 parts of 256 KiB (and their JSON) fit in 4 MiB.
    assert_eq!(out["appended"], 15, "{out}");
    let stored = folder_bytes(&folder.join("conversations"));
    assert!(
        stored <= quota + part,
        "{stored} bytes stored, quota {quota}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_writes_stop_at_the_disk_quota() {
    let dir = tempfile::tempdir().unwrap();
    let quota = 8 * MIB;
    let plugin = plugin(
        dir.path(),
        "writer",
        &format!("[limits]\ndisk_bytes = {quota}"),
    );
    let (result, folder) = attack(
        &plugin,
        dir.path(),
        "writer",
        json!({"attack": "write-until-refused", "arg": "/data/big.bin"}),
    )
    .await;
    assert_eq!(result.status, ReportStatus::Success, "{result:?}");
    let out = output(&result);
    // The guest's libc decides the words: "No space left on device" where it reads the
    // stream's error code, a plain I/O error where it does not.
    let denied = out["denied"].as_str().unwrap();
    assert!(
        denied.contains("No space left on device") || denied.contains("I/O error"),
        "{out}"
    );
    // Obeyed: the writes below the quota happened (the file's entry costs 4 KiB, and
    // the last chunk is written in part); enforced: nothing past it.
    let written = out["written"].as_u64().unwrap();
    assert_eq!(written, 7 * MIB, "{out}");
    let stored = folder_bytes(&folder.join("data"));
    assert!(stored <= quota, "{stored} bytes in /data, quota {quota}");
    assert!(stored >= written, "{stored} bytes in /data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_files_are_bounded_and_closing_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path(), "opener", "[limits]\nopen_handles = 10");
    let (result, _) = attack(
        &plugin,
        dir.path(),
        "opener",
        json!({"attack": "open-until-refused", "arg": "/data/f.txt"}),
    )
    .await;
    let out = output(&result);
    assert_eq!(out["held"], 10, "{out}");
    assert!(!out["denied"].as_str().unwrap().is_empty(), "{out}");
    assert_eq!(out["reopened"], true, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_are_refused_unless_the_manifest_grants_them() {
    let dir = tempfile::tempdir().unwrap();
    let refused = plugin(dir.path(), "no-links", "");
    let (result, folder) = attack(
        &refused,
        dir.path(),
        "no-links",
        json!({"attack": "symlink", "arg": "/data/esc"}),
    )
    .await;
    let out = output(&result);
    assert!(out["denied"].is_string(), "{out}");
    assert!(std::fs::symlink_metadata(folder.join("data/esc")).is_err());

    let granted = plugin(dir.path(), "links", "[grants]\nsymlinks = true");
    // Granted: a link inside the folder is made (one out of it, never followed by
    // Colony, is still refused by wasmtime-wasi when absolute).
    let (result, folder) = attack(
        &granted,
        dir.path(),
        "links",
        json!({"attack": "symlink", "arg": "/data/link", "target": "notes.txt"}),
    )
    .await;
    let out = output(&result);
    assert!(out.get("leaked").is_some(), "{out}");
    let link = std::fs::symlink_metadata(folder.join("data/link")).unwrap();
    assert!(link.file_type().is_symlink());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_are_bounded_by_the_host_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(
        dir.path(),
        "sleeper",
        &format!("[limits]\nhost_memory_bytes = {}", 4 * MIB),
    );
    // A guest that never reads its inbox.
    let spec = WorkerSpec::ephemeral("sleeper", "sleep").with_input(json!({"attack": "sleep"}));
    let worker = Worker::new(&plugin, spec, None).unwrap();
    worker.start().unwrap();
    // Half the budget is the inbox's: others cannot starve the worker's own calls.
    let message = "m".repeat(MIB as usize);
    for _ in 0..2 {
        worker.inject(message.clone()).unwrap();
    }
    match worker.inject(message.clone()) {
        Err(WorkerError::InboxOverBudget { worker, source }) => {
            assert_eq!(worker, "sleeper");
            assert!(
                source
                    .to_string()
                    .contains("inbox's share of the host memory budget (2 MiB) has only 0 bytes"),
                "{source}"
            );
        }
        other => panic!("expected the inbox to be full: {other:?}"),
    }
    assert!(worker.inject("x").is_err(), "the share is spent exactly");
    worker.stop().await;
    assert_eq!(worker.state(), WorkerState::Stopped);
}

/// An HTTP server on loopback that answers every request with an endless body.
fn endless_http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
                let chunk = "é".repeat(4096);
                while stream.write_all(chunk.as_bytes()).is_ok() {}
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_results_stop_at_the_host_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let port = endless_http_server();
    std::fs::create_dir_all(dir.path().join("shared")).unwrap();
    std::fs::write(dir.path().join("shared/small.txt"), "small").unwrap();
    std::fs::write(
        dir.path().join("shared/big.txt"),
        "b".repeat(3 * MIB as usize),
    )
    .unwrap();
    let budget = 4 * MIB;
    let plugin = plugin(
        dir.path(),
        "fetcher",
        &format!(
            "[grants]\nnetwork = [\"127.0.0.1:{port}\"]\ntools = [\"http.fetch\", \"files.read\"]\n\
             [[grants.dirs]]\nhost = \"shared\"\nguest = \"/shared\"\n\
             [limits]\nhost_memory_bytes = {budget}"
        ),
    );
    let (result, _) = attack(
        &plugin,
        dir.path(),
        "fetcher",
        json!({"attack": "tool", "arg": "http.fetch",
            "args": {"url": format!("http://127.0.0.1:{port}/endless")}}),
    )
    .await;
    let out = output(&result);
    let fetched = &out["large"];
    assert_eq!(fetched["truncated"], true, "{result:?}");
    let body_bytes = fetched["body_bytes"].as_u64().unwrap();
    assert!(body_bytes <= budget / 2, "{body_bytes} bytes");
    assert!(body_bytes > budget / 4, "{body_bytes} bytes");
    assert_eq!(fetched["body_chars"], "é", "cut at a character boundary");

    // files.read: a file within the budget is read; one beyond it is refused.
    let (result, _) = attack(
        &plugin,
        dir.path(),
        "reader-small",
        json!({"attack": "tool", "arg": "files.read", "args": {"path": "/shared/small.txt"}}),
    )
    .await;
    assert_eq!(output(&result)["result"]["content"], "small");
    let (result, _) = attack(
        &plugin,
        dir.path(),
        "reader-big",
        json!({"attack": "tool", "arg": "files.read", "args": {"path": "/shared/big.txt"}}),
    )
    .await;
    let out = output(&result);
    assert!(
        out["denied"]
            .as_str()
            .unwrap()
            .contains("host memory budget"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_without_storage_is_held_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(
        dir.path(),
        "memory-appender",
        &format!("[limits]\nhost_memory_bytes = {}", 2 * MIB),
    );
    let spec = WorkerSpec::ephemeral("memory-appender", "attack")
        .with_input(json!({"attack": "append-until-refused", "part_bytes": 256 * 1024}));
    let result = Worker::new(&plugin, spec, None)
        .unwrap()
        .run()
        .await
        .unwrap();
    let out = output(&result);
    assert_eq!(out["appended"], 7, "{out}");
    assert!(
        out["denied"]
            .as_str()
            .unwrap()
            .contains("host memory budget (2 MiB)"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_the_event_log_quota_are_published_but_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let quota = 64 * 1024;
    let plugin = plugin(
        dir.path(),
        "flooder",
        &format!("[limits]\nevent_log_bytes = {quota}"),
    );
    let folder = dir.path().join("workers/flooder");
    let bus = colony::EventBus::new();
    let mut floods = bus.subscribe_with_capacity(
        colony::EventFilter::all().types([colony::EventType::Custom("flood".into())]),
        100_000,
    );
    let spec = WorkerSpec::ephemeral("flooder", "flood")
        .with_input(json!({"attack": "event-flood"}))
        .with_storage(&folder);
    let result = Worker::new(&plugin, spec, Some(bus))
        .unwrap()
        .run()
        .await
        .unwrap();
    // The flood itself is ended by the event rate limit.
    assert!(
        result
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("event rate limit"),
        "{result:?}"
    );
    let mut published = 0;
    while let Ok(Some(_)) = floods.try_recv() {
        published += 1;
    }
    let log = std::fs::read_to_string(folder.join("events.jsonl")).unwrap();
    let stored = log.lines().filter(|l| l.contains("\"flood\"")).count();
    assert!(published >= 1000, "{published} flood events published");
    assert!(stored < published / 2, "{stored} of {published} stored");
    assert!(log.contains("further events are not stored"), "{log}");
    // The quota, the notice and the lifecycle events (started, report) at most.
    assert!(log.len() as u64 <= quota + 4096, "{} bytes", log.len());
    assert!(log.lines().last().unwrap().contains("SUBAGENT_REPORT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colony_journals_a_flooding_workers_events_only_up_to_its_quota() {
    let dir = tempfile::tempdir().unwrap();
    let quota = 64 * 1024;
    let plugin = plugin(
        dir.path(),
        "flooder",
        &format!("[limits]\nevent_log_bytes = {quota}"),
    );
    let config = colony::ColonyConfig::new("flood", dir.path().join("home"));
    let colony = colony::Colony::open(colony_tests::runtime(), config).unwrap();
    let ids = colony
        .run_parallel(
            &plugin,
            vec![colony::Task::new("flood").with_input(json!({"attack": "event-flood"}))],
        )
        .unwrap();
    let reports = colony
        .wait_for_reports(&ids, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        reports[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("event rate limit"),
        "{:?}",
        reports[0]
    );
    let events = colony
        .journal()
        .events(Some(&ids[0]), 0, usize::MAX)
        .unwrap();
    let bytes: usize = events
        .iter()
        .map(|(_, e)| serde_json::to_string(e).unwrap().len() + 1)
        .sum();
    // The quota, the notice and the lifecycle events (started, outcome, report) at most.
    assert!(bytes as u64 <= quota + 4096, "{bytes} bytes journaled");
    assert!(
        events.iter().any(|(_, e)| e.data["message"]
            .as_str()
            .unwrap_or_default()
            .contains("further events are not stored")),
        "no notice"
    );
    assert_eq!(
        events.last().unwrap().1.event_type,
        colony::EventType::SubagentReport
    );
    colony.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_resources_a_guest_holds_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path(), "hoarder", "[limits]\nresource_entries = 1000");
    let spec = WorkerSpec::ephemeral("hoarder", "hoard").with_input(json!({"attack": "pollables"}));
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        Worker::new(&plugin, spec, None).unwrap().run(),
    )
    .await
    .expect("the hoarder is ended")
    .unwrap();
    assert_eq!(result.status, ReportStatus::Failed);
    let error = result.error.unwrap();
    assert!(
        error.contains("WASI resource limit exceeded: 1000"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_outlive_their_files_still_count_as_open() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path(), "streamer", "[limits]\nopen_handles = 10");
    let (result, _) = attack(
        &plugin,
        dir.path(),
        "streamer",
        json!({"attack": "streams-until-refused"}),
    )
    .await;
    let out = output(&result);
    // Each stream keeps a file open after its descriptor is gone: at most the bound.
    let held = out["held"].as_u64().unwrap();
    assert!((5..=10).contains(&held), "{out}");
    assert!(
        out["denied"]
            .as_str()
            .unwrap()
            .contains("insufficient-memory"),
        "{out}"
    );
}

/// A read-write grant `rw/` holding a symbolic link the operator put there, and a
/// folder of 2,000 entries.
fn read_write_grant(dir: &Path) -> String {
    let rw = dir.join("rw");
    std::fs::create_dir_all(rw.join("many")).unwrap();
    std::fs::write(rw.join("notes.txt"), "notes").unwrap();
    std::os::unix::fs::symlink("notes.txt", rw.join("existing-link")).unwrap();
    for i in 0..2000 {
        std::fs::write(rw.join("many").join(format!("{i:0>100}")), "").unwrap();
    }
    "[[grants.dirs]]\nhost = \"rw\"\nguest = \"/rw\"\naccess = \"read-write\"\n".to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_symlink_cannot_be_linked_or_moved_without_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    let grant = read_write_grant(dir.path());
    let plugin = plugin(dir.path(), "linker", &grant);
    let (result, _) = attack(
        &plugin,
        dir.path(),
        "linker",
        json!({"attack": "link-existing-symlink", "arg": "/rw/existing-link"}),
    )
    .await;
    let out = output(&result);
    assert!(out["hard_link"]["denied"].is_string(), "{out}");
    assert!(out["rename"]["denied"].is_string(), "{out}");
    assert!(std::fs::symlink_metadata(dir.path().join("rw/existing-link")).is_ok());
    assert!(std::fs::symlink_metadata(dir.path().join("rw/moved-link")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_listing_is_charged_to_the_host_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let grant = read_write_grant(dir.path());
    // 2,000 entries of 100-byte names: about 330 KB as a listing.
    let small = plugin(
        dir.path(),
        "small-lister",
        &format!("{grant}[limits]\nhost_memory_bytes = 131072"),
    );
    let (result, _) = attack(
        &small,
        dir.path(),
        "small-lister",
        json!({"attack": "list-dir", "arg": "/rw/many"}),
    )
    .await;
    let out = output(&result);
    assert!(out["denied"].is_string(), "{out}");
    let large = plugin(dir.path(), "lister", &grant);
    let (result, _) = attack(
        &large,
        dir.path(),
        "lister",
        json!({"attack": "list-dir", "arg": "/rw/many"}),
    )
    .await;
    assert_eq!(output(&result)["leaked"], "2000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_far_past_the_end_of_a_file_is_charged_for_its_hole() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(
        dir.path(),
        "sparse",
        &format!("[limits]\ndisk_bytes = {}", 8 * MIB),
    );
    let (result, folder) = attack(
        &plugin,
        dir.path(),
        "sparse",
        json!({"attack": "sparse-write", "arg": "/data/sparse.bin"}),
    )
    .await;
    let out = output(&result);
    assert!(out["denied"].is_string(), "{out}");
    let size = std::fs::metadata(folder.join("data/sparse.bin"))
        .unwrap()
        .len();
    assert!(size < MIB, "{size} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_error_is_cut_and_a_tree_of_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin(dir.path(), "loud", "");
    let (result, folder) =
        attack(&plugin, dir.path(), "loud", json!({"attack": "huge-error"})).await;
    let error = result.error.unwrap();
    assert!(error.len() <= 16 * 1024 + 200, "{} bytes", error.len());
    assert!(error.ends_with('…'), "{}", &error[error.len() - 10..]);
    assert!(folder_bytes(&folder) < MIB, "result and events stay small");

    // 400K zeros: 800 KB of text, tens of MB as a tree of values.
    let small = plugin_with_budget(dir.path(), "tree", 4 * MIB);
    let (result, _) = attack(&small, dir.path(), "tree", json!({"attack": "output-tree"})).await;
    assert_eq!(result.status, ReportStatus::Failed);
    let error = result.error.unwrap();
    assert!(error.contains("an output the host cannot hold"), "{error}");
}

fn plugin_with_budget(dir: &Path, name: &str, bytes: u64) -> Plugin {
    plugin(dir, name, &format!("[limits]\nhost_memory_bytes = {bytes}"))
}

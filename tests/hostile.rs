//! The hostile-guest suite: every attack on the sandbox runs at the same time as 100
//! honest workers. Each attack must be contained — the right state, a clear error, nothing
//! leaked — and every honest worker must still report success.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use colony::{
    EventBus, EventFilter, EventType, ReportStatus, Runtime, RuntimeConfig, Worker, WorkerResult,
    WorkerSpec, WorkerState,
};
use colony_tests::guest_path;
use serde_json::{Value, json};

/// One attack: which plugin manifest it runs under, what it does, and how it must end.
struct Attack {
    id: &'static str,
    /// Extra manifest lines (grants, limits) for this attack's plugin.
    manifest: String,
    /// `input.attack` and `input.arg` for the hostile fixture.
    attack: &'static str,
    arg: String,
    expect: Expect,
}

enum Expect {
    /// Completed, and the attempt was denied (the guest got an error, nothing leaked).
    Denied,
    /// Failed: the host ended the guest with an error containing this text.
    Failed(&'static str),
    /// Failed: the host refused a call with this error, and the guest gave up with it.
    Refused(&'static str),
}

/// Writes manifest `{id}.toml` for `component` with `extra` lines and a 2 s run limit.
fn manifest(dir: &Path, id: &str, component: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{id}.toml"));
    let limits = if extra.contains("[limits]") {
        ""
    } else {
        "[limits]"
    };
    let text = format!(
        "component = {:?}\n{extra}\n{limits}\nrun_timeout = \"2s\"\n",
        component.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A component implementing the `colony:agent` world whose core module declares a table of
/// 20 million elements (160 MB): Rust cannot write one, so it is assembled from text.
fn huge_table_component() -> Vec<u8> {
    let mut module = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (table 20000000 funcref)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
            (func (export "run") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
                i32.const 0)
            (func (export "on-message") (param i32 i32) (result i32) i32.const 0))"#,
    )
    .unwrap();
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit"))
        .unwrap();
    let world = resolve.select_world(&[package], Some("agent")).unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .encode()
        .unwrap()
}

/// A folder to grant (`shared/notes.txt`) in a fresh temporary root.
fn sandbox_root() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("shared")).unwrap();
    std::fs::write(home.path().join("shared/notes.txt"), "granted notes").unwrap();
    home
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_is_contained_while_100_honest_workers_succeed() {
    let home = sandbox_root();
    let root = home.path();
    // A secret beside the granted folder, and a symlink inside it pointing out.
    std::fs::create_dir_all(root.join("secret")).unwrap();
    std::fs::write(root.join("secret/secret.txt"), "TOP SECRET").unwrap();
    std::os::unix::fs::symlink(root.join("secret"), root.join("shared/escape")).unwrap();
    // A TCP service on loopback that no attack may reach.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                accepted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 5];
                let _ = stream.read_exact(&mut buf);
                let _ = stream.write_all(b"pong");
            }
        });
    }
    let not_wasm = root.join("notes.wasm");
    std::fs::write(&not_wasm, "this is not wasm").unwrap();
    let huge_table = root.join("huge-table.wasm");
    std::fs::write(&huge_table, huge_table_component()).unwrap();
    let core_module = root.join("core.wasm");
    std::fs::write(&core_module, b"\0asm\x01\0\0\0").unwrap();

    let shared_ro = "[[grants.dirs]]\nhost = \"shared\"\nguest = \"/shared\"\n".to_owned();
    let rw = "[[grants.dirs]]\nhost = \"rw\"\nguest = \"/rw\"\naccess = \"read-write\"\n";
    std::fs::create_dir_all(root.join("rw")).unwrap();
    let budget_attack = |id, attack, arg: &str, manifest: String| Attack {
        id,
        manifest,
        attack,
        arg: arg.into(),
        expect: Expect::Denied,
    };
    let none = String::new;
    let fs_attack = |id, arg: &str, grants: String| Attack {
        id,
        manifest: grants,
        attack: "read-file",
        arg: arg.into(),
        expect: Expect::Denied,
    };
    let attacks = vec![
        fs_attack("passwd", "/etc/passwd", none()),
        fs_attack("dotdot", "/shared/../secret/secret.txt", shared_ro.clone()),
        fs_attack("symlink", "/shared/escape/secret.txt", shared_ro.clone()),
        fs_attack(
            "host-absolute",
            &root.join("secret/secret.txt").display().to_string(),
            shared_ro.clone(),
        ),
        Attack {
            id: "write-read-only",
            manifest: shared_ro.clone(),
            attack: "write-file",
            arg: "/shared/planted.txt".into(),
            expect: Expect::Denied,
        },
        Attack {
            id: "env",
            manifest: "[grants]\nenv = [\"PATH\"]".into(),
            attack: "env",
            arg: "HOME".into(),
            expect: Expect::Denied,
        },
        Attack {
            id: "connect",
            manifest: none(),
            attack: "connect",
            arg: format!("127.0.0.1:{port}"),
            expect: Expect::Denied,
        },
        Attack {
            id: "connect-other-port",
            manifest: "[grants]\nnetwork = [\"127.0.0.1:1\"]".into(),
            attack: "connect",
            arg: format!("127.0.0.1:{port}"),
            expect: Expect::Denied,
        },
        Attack {
            id: "resolve",
            manifest: none(),
            attack: "resolve",
            arg: "example.com".into(),
            expect: Expect::Denied,
        },
        Attack {
            id: "resolve-not-granted",
            manifest: "[grants]\nnetwork = [\"localhost\"]".into(),
            attack: "resolve",
            arg: "exfiltrate.example.com".into(),
            expect: Expect::Denied,
        },
        Attack {
            id: "grow-memory",
            manifest: none(),
            attack: "grow-memory",
            arg: String::new(),
            expect: Expect::Failed("memory limit exceeded: 64 MiB"),
        },
        Attack {
            id: "spin",
            manifest: none(),
            attack: "spin",
            arg: String::new(),
            expect: Expect::Failed("time limit exceeded: run took longer than 2s"),
        },
        // What the host holds, writes and opens for a guest: each stops at its bound
        // with an error the guest sees.
        budget_attack("host-memory", "append-until-refused", "", none()),
        budget_attack("read-back", "read-amplification", "", none()),
        budget_attack("planted-symlink", "symlink", "/rw/esc", rw.to_owned()),
        budget_attack(
            "open-files",
            "open-until-refused",
            "/rw/open.txt",
            rw.to_owned(),
        ),
        budget_attack(
            "disk-flood",
            "write-until-refused",
            "/rw/flood.bin",
            format!("{rw}[limits]\ndisk_bytes = 4194304"),
        ),
        Attack {
            id: "recurse",
            manifest: none(),
            attack: "recurse",
            arg: String::new(),
            // Rust keeps its stack in linear memory: overflowing it is an out-of-bounds access.
            expect: Expect::Failed("stack overflowed"),
        },
        Attack {
            id: "huge-summary",
            manifest: "[limits]\nmemory_bytes = 536870912".into(),
            attack: "huge-summary",
            arg: String::new(),
            expect: Expect::Refused(
                "report summary is 104857600 bytes, over the limit of 16384 bytes",
            ),
        },
        Attack {
            id: "report-spam",
            manifest: none(),
            attack: "report-spam",
            arg: String::new(),
            expect: Expect::Failed("event rate limit exceeded: 1000 events per second"),
        },
        Attack {
            id: "event-flood",
            manifest: none(),
            attack: "event-flood",
            arg: String::new(),
            expect: Expect::Failed("event rate limit exceeded: 1000 events per second"),
        },
        Attack {
            id: "panic",
            manifest: none(),
            attack: "panic",
            arg: String::new(),
            expect: Expect::Failed("hostile guest panicked"),
        },
        Attack {
            id: "stdout-flood",
            manifest: none(),
            attack: "stdout-flood",
            arg: String::new(),
            expect: Expect::Failed("time limit exceeded"),
        },
        Attack {
            id: "sleep",
            manifest: none(),
            attack: "sleep",
            arg: String::new(),
            expect: Expect::Failed("time limit exceeded"),
        },
        Attack {
            id: "host-call-wait",
            manifest: none(),
            attack: "wait",
            arg: String::new(),
            expect: Expect::Failed("time limit exceeded"),
        },
    ];

    let runtime = Runtime::with_config(RuntimeConfig {
        cache_dir: Some(root.join("cache")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let bus = EventBus::new();
    let mut logs =
        bus.subscribe_with_capacity(EventFilter::all().types([EventType::WorkerLog]), 1_000_000);
    let hostile = guest_path("hostile-fixture");

    let mut workers = Vec::new();
    for a in &attacks {
        let path = manifest(root, a.id, &hostile, &a.manifest);
        let manifest = colony::Manifest::load(&path).unwrap();
        let plugin = runtime.plugin_from_manifest(manifest).unwrap();
        let spec = WorkerSpec::ephemeral(a.id, format!("attack: {}", a.attack))
            .with_input(json!({"attack": a.attack, "arg": a.arg}));
        workers.push((a, Worker::new(&plugin, spec, Some(bus.clone())).unwrap()));
    }
    // Bad components, each a worker of its own plugin.
    let sha_pinned = manifest(
        root,
        "sha-mismatch",
        &guest_path("echo-agent"),
        &format!("sha256 = \"{}\"", "0".repeat(64)),
    );
    let bad_plugins = [
        (
            "unknown-import",
            runtime.plugin("smuggler", guest_path("unknown-import-fixture")),
            "fixture:smuggler/socket",
        ),
        (
            "not-wasm",
            runtime.plugin("notes", &not_wasm),
            "is not a WebAssembly component",
        ),
        (
            "huge-table",
            runtime.plugin("huge-table", &huge_table),
            "table",
        ),
        (
            "core-module",
            runtime.plugin("core", &core_module),
            "it is a core WebAssembly module",
        ),
        (
            "sha-mismatch",
            runtime
                .plugin_from_manifest(colony::Manifest::load(&sha_pinned).unwrap())
                .unwrap(),
            "sha256 mismatch: the manifest pins 0000",
        ),
    ];
    let mut bad_workers = Vec::new();
    for (id, plugin, expected) in &bad_plugins {
        bad_workers.push((
            *expected,
            Worker::new(
                plugin,
                WorkerSpec::ephemeral(*id, "load me"),
                Some(bus.clone()),
            )
            .unwrap(),
        ));
    }
    let echo = runtime
        .load_plugin("echo", guest_path("echo-agent"))
        .await
        .unwrap();
    let honest: Vec<Worker> = (0..100)
        .map(|i| {
            Worker::new(
                &echo,
                WorkerSpec::ephemeral(format!("honest-{i}"), format!("honest task {i}")),
                Some(bus.clone()),
            )
            .unwrap()
        })
        .collect();

    let begun = Instant::now();
    for w in workers
        .iter()
        .map(|(_, w)| w)
        .chain(bad_workers.iter().map(|(_, w)| w))
        .chain(&honest)
    {
        w.start().unwrap();
    }
    for w in &honest {
        let result = w.wait().await;
        assert_eq!(
            result.status,
            ReportStatus::Success,
            "{}: {result:?}",
            w.id()
        );
        assert_eq!(w.state(), WorkerState::Completed);
    }
    let honest_done = begun.elapsed();

    let mut outcomes: HashMap<&str, (WorkerState, WorkerResult)> = HashMap::new();
    for (a, w) in &workers {
        let result = tokio::time::timeout(Duration::from_secs(20), w.wait())
            .await
            .expect(a.id);
        outcomes.insert(a.id, (w.state(), result));
    }
    for (a, _) in &workers {
        let (state, result) = &outcomes[a.id];
        match a.expect {
            Expect::Denied => {
                assert_eq!(*state, WorkerState::Completed, "{}: {result:?}", a.id);
                let out = Value::Object(result.output.clone());
                assert!(out.get("leaked").is_none(), "{} leaked: {out}", a.id);
                if a.attack == "env" {
                    assert_eq!(out["value"], Value::Null, "HOME is not granted");
                    let visible: Vec<&str> = out["visible"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect();
                    assert!(
                        visible.iter().all(|k| *k == "PATH"),
                        "only PATH is granted: {visible:?}"
                    );
                } else {
                    assert!(
                        out["denied"].as_str().is_some_and(|e| !e.is_empty()),
                        "{}: {out}",
                        a.id
                    );
                }
            }
            Expect::Failed(text) => {
                assert_eq!(*state, WorkerState::Failed, "{}: {result:?}", a.id);
                let error = result.error.clone().unwrap_or_default();
                assert!(error.contains(text), "{}: {error}", a.id);
                assert!(
                    error.contains(&format!("worker '{}' (plugin '{}')", a.id, a.id)),
                    "{error}"
                );
                assert_eq!(result.status, ReportStatus::Failed);
            }
            Expect::Refused(text) => {
                assert_eq!(*state, WorkerState::Failed, "{}: {result:?}", a.id);
                assert_eq!(result.error.as_deref(), Some(text), "{}", a.id);
            }
        }
    }
    for (expected, w) in &bad_workers {
        let result = w.wait().await;
        eprintln!(
            "{}: {}",
            w.id(),
            result.error.as_deref().unwrap_or_default()
        );
        assert_eq!(w.state(), WorkerState::Failed, "{}", w.id());
        assert!(
            result
                .error
                .as_deref()
                .unwrap_or_default()
                .contains(expected),
            "{}: {result:?}",
            w.id()
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "no attack reached the loopback service"
    );
    assert!(
        !root.join("shared/planted.txt").exists(),
        "nothing was written through a read-only grant"
    );
    assert!(
        std::fs::symlink_metadata(root.join("rw/esc")).is_err(),
        "no symbolic link was planted"
    );
    let flooded = std::fs::metadata(root.join("rw/flood.bin")).unwrap().len();
    assert!(flooded <= 4 << 20, "{flooded} bytes written past the quota");
    assert_eq!(outcomes["open-files"].1.output["held"], 64);
    let host_memory = outcomes["host-memory"].1.output["denied"].as_str().unwrap();
    assert!(
        host_memory.contains("host memory budget (16 MiB)"),
        "{host_memory}"
    );

    // The stdout flood became a bounded number of log events, the last saying so.
    let mut flood_lines = 0;
    let mut flood_bytes = 0;
    let mut last = String::new();
    while let Ok(Some(event)) = logs.try_recv() {
        if event.worker_id == "stdout-flood" {
            flood_lines += 1;
            last = event.data["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            flood_bytes += last.len() + 1;
        }
    }
    let budget = colony::Limits::default().max_output_log_bytes;
    assert!(
        flood_lines > 100 && flood_bytes <= budget + 200,
        "{flood_lines} lines, {flood_bytes} bytes"
    );
    assert!(last.contains("output limit reached"), "{last}");
    eprintln!(
        "100 honest workers done in {honest_done:?} alongside {} attacks",
        attacks.len() + bad_plugins.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_capabilities_do_work() {
    let home = sandbox_root();
    let root = home.path();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 5];
            let _ = stream.read_exact(&mut buf);
            let _ = stream.write_all(b"pong");
        }
    });
    let runtime = colony_tests::runtime();
    let hostile = guest_path("hostile-fixture");
    let cases = [
        (
            "read-granted",
            "[[grants.dirs]]\nhost = \"shared\"\nguest = \"/shared\"".to_owned(),
            "read-file",
            "/shared/notes.txt".to_owned(),
            "granted notes",
        ),
        (
            "write-own-data",
            String::new(),
            "write-file",
            "/data/out.txt".to_owned(),
            "()",
        ),
        (
            "env-granted",
            "[grants]\nenv = [\"PATH\"]".to_owned(),
            "env",
            "PATH".to_owned(),
            "/",
        ),
        (
            "connect-granted",
            format!("[grants]\nnetwork = [\"127.0.0.1:{port}\"]"),
            "connect",
            format!("127.0.0.1:{port}"),
            "pong",
        ),
        (
            // By name: connected to an address the guest's own lookup returned.
            "connect-by-name",
            format!("[grants]\nnetwork = [\"localhost:{port}\"]"),
            "connect",
            format!("localhost:{port}"),
            "pong",
        ),
        (
            "resolve-granted",
            "[grants]\nnetwork = [\"localhost\"]".to_owned(),
            "resolve",
            "localhost".to_owned(),
            "",
        ),
    ];
    for (id, grants, attack, arg, expected) in cases {
        let path = manifest(root, id, &hostile, &grants);
        let plugin = runtime
            .plugin_from_manifest(colony::Manifest::load(&path).unwrap())
            .unwrap();
        let spec = WorkerSpec::ephemeral(id, "use a grant")
            .with_input(json!({"attack": attack, "arg": arg}))
            .with_storage(root.join("workers").join(id));
        let w = Worker::new(&plugin, spec, None).unwrap();
        let result = w.run().await.unwrap();
        let out = Value::Object(result.output);
        assert_eq!(w.state(), WorkerState::Completed, "{id}: {out}");
        let got = out
            .get("leaked")
            .or(out.get("value"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert!(
            got.contains(expected) && out.get("denied").is_none(),
            "{id}: {out}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.join("workers/write-own-data/data/out.txt")).unwrap(),
        "owned"
    );
}

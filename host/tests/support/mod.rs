//! What the NATS test files share: a `nats-server` on loopback, `colony node` processes,
//! and a colony in this process on them.

#![allow(dead_code)] // each test file uses its own part

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use colony::cluster::LocalNats;
use colony::{Colony, ColonyConfig, Plugin, Runtime, RuntimeConfig, Subscription, Task};

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

pub fn guest(name: &str) -> PathBuf {
    target_dir().join(format!("wasm32-wasip2/guest/{name}.wasm"))
}

/// Writes `home/host.toml`: the tests' shared compile cache, and the scripted model
/// provider playing the agent-loop demo's script (offline, deterministic).
pub fn write_scripted_host_config(home: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/agents/agent-loop/demo-script.json");
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(
        home.join("host.toml"),
        format!(
            "cache_dir = {:?}\n[llm]\nprovider = \"scripted\"\nscript = {:?}\n",
            target_dir().join("colony-cache"),
            script
        ),
    )
    .unwrap();
}

/// A NATS server with JetStream on loopback (or a cluster of them), with its store;
/// both gone on drop.
pub struct Nats {
    /// The address for `--nats` (comma-joined for a cluster).
    pub url: String,
    pub servers: Vec<LocalNats>,
    _stores: Vec<tempfile::TempDir>,
}

impl Nats {
    pub fn start() -> Self {
        let store = tempfile::tempdir().unwrap();
        let server = LocalNats::start(store.path()).unwrap();
        Self {
            url: server.url().to_owned(),
            servers: vec![server],
            _stores: vec![store],
        }
    }

    /// A JetStream cluster of `size` servers, once it can hold streams of `size`
    /// replicas.
    pub async fn start_cluster(size: usize) -> Self {
        let stores: Vec<_> = (0..size).map(|_| tempfile::tempdir().unwrap()).collect();
        let paths: Vec<&Path> = stores.iter().map(|s| s.path()).collect();
        let servers = LocalNats::start_cluster(&paths).unwrap();
        let url = servers
            .iter()
            .map(LocalNats::url)
            .collect::<Vec<_>>()
            .join(",");
        let settings = colony::cluster::StreamSettings {
            replicas: Some(size),
        };
        let begun = std::time::Instant::now();
        // Until the servers have elected a JetStream leader.
        while let Err(e) = colony::cluster::Cluster::connect_with(&url, "probe", settings).await {
            assert!(begun.elapsed() < Duration::from_secs(30), "{e}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self {
            url,
            servers,
            _stores: stores,
        }
    }
}

/// Sends `signal` (e.g. `-STOP`) to process `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}: {status}");
}

/// A `colony node` process, killed on drop.
pub struct NodeProcess {
    pub child: Child,
    pub home: PathBuf,
}

impl NodeProcess {
    /// Starts a node serving the probe fixture (and the plugins in `args`) and waits until
    /// it serves.
    pub fn start(nats: &Nats, home: &Path, name: &str) -> Self {
        Self::start_with(nats, home, name, &[])
    }

    /// The same, with more `colony node` arguments.
    pub fn start_with(nats: &Nats, home: &Path, name: &str, args: &[&str]) -> Self {
        let node = Self::spawn(nats, home, name, args);
        node.wait_serving()
    }

    /// Starts a node without waiting for it to serve.
    pub fn spawn(nats: &Nats, home: &Path, name: &str, args: &[&str]) -> Self {
        Self::spawn_with_env(nats, home, name, args, &[])
    }

    /// The same, with these environment variables.
    pub fn spawn_with_env(
        nats: &Nats,
        home: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let config = home.join("host.toml");
        std::fs::create_dir_all(home).unwrap();
        std::fs::write(
            &config,
            format!("cache_dir = {:?}\n", target_dir().join("colony-cache")),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_colony"))
            .envs(env.iter().copied())
            .arg("--nats")
            .arg(&nats.url)
            .arg("--home")
            .arg(home)
            .arg("--config")
            .arg(&config)
            .args(["node", "--name", name, "--ack-wait", "2s"])
            .args(if args.contains(&"--slots") {
                &[][..]
            } else {
                &["--slots", "4"][..]
            })
            .args(args)
            .arg("--plugin")
            .arg(guest("probe_fixture"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        Self {
            child,
            home: home.join("nodes").join(name),
        }
    }

    /// Waits until the node says it serves (its first line), or fails with what it said.
    pub fn wait_serving(mut self) -> Self {
        let mut line = String::new();
        BufReader::new(self.child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if !line.contains(" serving ") {
            let _ = self.child.kill();
            let mut stderr = String::new();
            let _ =
                std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut stderr);
            panic!("node said: {line:?}; stderr: {stderr}");
        }
        self
    }

    /// The worker folders it created (one per task it started).
    pub fn workers(&self, colony: &str) -> HashSet<String> {
        std::fs::read_dir(self.home.join("workers").join(colony))
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a worker (of colony `c`) without a report has just started here: its
    /// folder has no `result.json` yet (written before its report is stored) and was last
    /// changed (its first files created) less than `age` ago.
    pub fn has_young_worker(&self, reported: &HashMap<String, usize>, age: Duration) -> bool {
        self.workers("c")
            .iter()
            .filter(|id| !reported.contains_key(*id))
            .map(|id| self.home.join("workers/c").join(id))
            .filter(|folder| !folder.join("result.json").exists())
            .filter_map(|folder| std::fs::metadata(folder).ok())
            .filter_map(|m| m.modified().ok())
            .any(|t| t.elapsed().is_ok_and(|e| e < age))
    }

    pub fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    /// SIGSTOP: the process freezes (no acks, no heartbeats) until [`NodeProcess::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`NodeProcess::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }

    /// SIGTERM, then waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        self.child.wait().unwrap()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn connect(
    nats: &Nats,
    home: &Path,
    configure: impl FnOnce(&mut ColonyConfig),
) -> Colony {
    let mut config = ColonyConfig::new("c", home);
    config.nats = Some(nats.url.clone());
    config.max_batch = 500;
    config.max_concurrent_workers = 64;
    configure(&mut config);
    Colony::connect(runtime(), config).await.unwrap()
}

pub fn runtime() -> Runtime {
    Runtime::with_config(RuntimeConfig {
        cache_dir: Some(target_dir().join("colony-cache")),
        ..Default::default()
    })
    .unwrap()
}

pub async fn probe(colony: &Colony) -> Plugin {
    colony
        .runtime()
        .load_plugin("probe_fixture", guest("probe_fixture"))
        .await
        .unwrap()
}

/// Reads reports off the bus, counting them per worker into `counts`, until every id has
/// one, then `settle` longer for duplicates.
pub async fn count_reports(
    reports: &mut Subscription,
    counts: &mut HashMap<String, usize>,
    ids: &[String],
    within: Duration,
    settle: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    let mut settle_at = None;
    loop {
        let until = settle_at.unwrap_or(deadline);
        match tokio::time::timeout_at(until, reports.recv()).await {
            Ok(Ok(event)) => *counts.entry(event.worker_id).or_default() += 1,
            Ok(Err(e)) => panic!("bus: {e}"),
            Err(_) => break,
        }
        if settle_at.is_none() && ids.iter().all(|id| counts.contains_key(id)) {
            settle_at = Some(tokio::time::Instant::now() + settle);
        }
    }
}

pub fn assert_exactly_once(counts: &HashMap<String, usize>, ids: &[String]) {
    let missing: Vec<_> = ids.iter().filter(|id| !counts.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "no report for {} tasks: {missing:?}",
        missing.len()
    );
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(repeated.is_empty(), "reports repeated: {repeated:?}");
    assert_eq!(counts.len(), ids.len(), "reports for unknown workers");
}

pub fn tasks(n: usize, input: serde_json::Value) -> Vec<Task> {
    (0..n)
        .map(|i| Task::new(format!("task {i}")).with_input(input.clone()))
        .collect()
}

/// A NATS server, `colony node`s serving the probe fixture, and a colony `c` on them.
pub struct Setup {
    pub colony: Colony,
    pub plugin: Plugin,
    pub nodes: Vec<NodeProcess>,
    pub nats: Nats,
    pub dir: tempfile::TempDir,
}

pub async fn setup(nodes: &[&str], configure: impl FnOnce(&mut ColonyConfig)) -> Setup {
    setup_on(Nats::start(), nodes, &[], configure).await
}

/// [`setup`] on `nats`, each node started with `node_args` too.
pub async fn setup_on(
    nats: Nats,
    nodes: &[&str],
    node_args: &[&str],
    configure: impl FnOnce(&mut ColonyConfig),
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes
        .iter()
        .map(|name| NodeProcess::start_with(&nats, dir.path(), name, node_args))
        .collect();
    let colony = connect(&nats, &dir.path().join("colony"), configure).await;
    let plugin = probe(&colony).await;
    Setup {
        colony,
        plugin,
        nodes,
        nats,
        dir,
    }
}

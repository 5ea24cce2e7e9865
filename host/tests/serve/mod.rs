//! What the `colony serve` tests share: the server and the colony processes it watches,
//! run as a user runs them (the `colony` binary, one process each, on one home).

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::support::{guest, target_dir};

/// A fixed token, so a restarted server accepts the page's stored one.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// `colony` with the home, and a compile cache shared by the tests.
pub fn colony(home: &Path) -> Command {
    let config = home.join("host.toml");
    if !config.exists() {
        std::fs::create_dir_all(home).unwrap();
        std::fs::write(
            &config,
            format!("cache_dir = {:?}\n", target_dir().join("colony-cache")),
        )
        .unwrap();
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_colony"));
    command.arg("--home").arg(home).arg("--config").arg(config);
    command
}

/// A `colony serve` process; killed on drop.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub token: String,
    home: PathBuf,
    /// Arguments of `colony serve` besides the address and the token.
    options: Vec<String>,
}

impl Served {
    /// Serves `home` on a free loopback port with [`TOKEN`].
    pub fn start(home: &Path) -> Self {
        Self::on(home, "127.0.0.1:0")
    }

    /// Serves `home` on `listen`.
    pub fn on(home: &Path, listen: &str) -> Self {
        Self::try_on(home, listen, &[]).expect("colony serve did not start")
    }

    /// Serves `home` on a free loopback port with [`TOKEN`] and `options`.
    pub fn with(home: &Path, options: &[&str]) -> Self {
        Self::try_on(home, "127.0.0.1:0", options).expect("colony serve did not start")
    }

    /// Serves `home` on `listen`, if the server starts (the port may be taken).
    fn try_on(home: &Path, listen: &str, options: &[&str]) -> Option<Self> {
        let mut child = colony(home)
            .args(["serve", "--listen", listen, "--token", TOKEN])
            .args(options)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "colony serve: http://127.0.0.1:PORT/?token=TOKEN"
        let Some((base, token)) = line
            .trim()
            .strip_prefix("colony serve: ")
            .and_then(|url| url.split_once("/?token="))
        else {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        };
        Some(Self {
            child,
            base: base.to_owned(),
            token: token.to_owned(),
            home: home.to_owned(),
            options: options.iter().map(|o| o.to_string()).collect(),
        })
    }

    /// `host:port`
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Kills the server and starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let address = self.address().to_owned();
        let begun = Instant::now();
        loop {
            let options: Vec<&str> = self.options.iter().map(String::as_str).collect();
            if let Some(next) = Self::try_on(&self.home, &address, &options) {
                *self = next;
                return;
            }
            assert!(
                begun.elapsed() < Duration::from_secs(10),
                "cannot serve on {address} again"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path` as JSON.
    pub async fn get(&self, path: &str) -> Value {
        let response = reqwest::get(self.url(path)).await.unwrap();
        assert!(response.status().is_success(), "GET {path}: {response:?}");
        response.json().await.unwrap()
    }

    /// The workers of the home (first page of 500), by the API.
    pub async fn workers(&self) -> Vec<Value> {
        self.get("/api/workers?limit=500").await["workers"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until `pick` finds a worker (polling the API), and returns it.
    pub async fn wait_for_worker(&self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let begun = Instant::now();
        loop {
            if let Some(w) = self.workers().await.into_iter().find(|w| pick(w)) {
                return w;
            }
            assert!(
                begun.elapsed() < Duration::from_secs(60),
                "no worker {what}: {:#?}",
                self.workers().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The journal positions of worker `id`'s events, by the API.
    pub async fn event_seqs(&self, id: &str) -> Vec<i64> {
        self.get(&format!("/api/workers/{id}/events"))
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A colony command running beside the server (`fanout`, `chat`); killed on drop.
pub struct Running {
    pub child: Child,
    stdin: Option<ChildStdin>,
}

impl Running {
    /// `colony fanout PLUGIN --tasks FILE` of these task lines, `concurrency` at once.
    pub fn fanout(home: &Path, plugin: &str, tasks: &[Value], concurrency: usize) -> Self {
        Self::fanout_with(home, &[], plugin, tasks, concurrency)
    }

    /// The same, with global arguments before the command (`--config`, …).
    pub fn fanout_with(
        home: &Path,
        global: &[&str],
        plugin: &str,
        tasks: &[Value],
        concurrency: usize,
    ) -> Self {
        let file = home.join(format!(
            "tasks-{}.jsonl",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let lines: Vec<String> = tasks.iter().map(Value::to_string).collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        let child = colony(home)
            .args(global)
            .arg("fanout")
            .arg(guest(plugin))
            .arg("--tasks")
            .arg(&file)
            .args(["--max-concurrency", &concurrency.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, stdin: None }
    }

    /// `colony chat PLUGIN`, its stdin kept open for [`Running::say`].
    pub fn chat(home: &Path, plugin: &str) -> Self {
        let mut child = colony(home)
            .arg("chat")
            .arg(guest(plugin))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    /// One line on the command's stdin (one turn of a chat).
    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("a chat");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the command's stdin (a chat then ends, once every line had its turn).
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Waits (up to a minute) for the command to exit by itself.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let begun = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(begun.elapsed() < Duration::from_secs(60), "still running");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

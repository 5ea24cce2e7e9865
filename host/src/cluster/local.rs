//! [`LocalNats`]: a `nats-server -js` on a free loopback port, for trying a distributed
//! colony on one machine, for tests and for benchmarks. Production runs its own server
//! (see `docs/scale-out.md`).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ClusterError;

/// How long a local server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A NATS server with JetStream on loopback, stopped when dropped.
pub struct LocalNats {
    child: Child,
    url: String,
    port: u16,
    store: PathBuf,
    /// Cluster flags (name, routes), for a member of [`LocalNats::start_cluster`].
    cluster: Vec<String>,
}

impl LocalNats {
    /// Starts Debian's `nats-server` (or the one on `PATH`) with JetStream storing under
    /// `store`, and waits until it accepts connections.
    pub fn start(store: &Path) -> Result<Self, ClusterError> {
        Self::start_member(free_port()?, store, Vec::new())
    }

    /// A JetStream cluster of one server per store, routed to each other on loopback
    /// (for streams with replicas). Its members' URLs, comma-joined, are one address
    /// for `--nats`. JetStream takes a few seconds to elect its leader after this
    /// returns.
    pub fn start_cluster(stores: &[&Path]) -> Result<Vec<Self>, ClusterError> {
        let routes: Vec<u16> = stores
            .iter()
            .map(|_| free_port())
            .collect::<Result<_, _>>()?;
        let joined = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (n, (store, route)) in stores.iter().zip(&routes).enumerate() {
            let flags = vec![
                "--server_name".to_owned(),
                format!("s{n}"),
                "--cluster_name".to_owned(),
                "colony-test".to_owned(),
                "--cluster".to_owned(),
                format!("nats://127.0.0.1:{route}"),
                "--routes".to_owned(),
                joined.clone(),
            ];
            members.push(Self::start_member(free_port()?, store, flags)?);
        }
        Ok(members)
    }

    fn start_member(port: u16, store: &Path, cluster: Vec<String>) -> Result<Self, ClusterError> {
        let child = spawn(port, store, &cluster)?;
        Ok(Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store: store.to_owned(),
            cluster,
        })
    }

    /// Kills the server (SIGKILL, as a crash) and starts it again on the same port and
    /// store, waiting until it accepts connections.
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        self.kill();
        self.child = spawn(self.port, &self.store, &self.cluster)?;
        Ok(())
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its process id (to freeze it with SIGSTOP in a fault test).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its address, for `--nats` and [`ColonyConfig::nats`](crate::ColonyConfig::nats).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        self.kill();
    }
}

fn failed(reason: String) -> ClusterError {
    ClusterError::Connect {
        url: "a local nats-server".to_owned(),
        reason,
    }
}

fn free_port() -> Result<u16, ClusterError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| failed(format!("no free port: {e}")))
}

/// Starts `nats-server -js` on `port` storing under `store` (with `cluster` flags), and
/// waits until it listens.
fn spawn(port: u16, store: &Path, cluster: &[String]) -> Result<Child, ClusterError> {
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nats-server"));
    let mut child = Command::new(&binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .args(cluster)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            failed(format!(
                "cannot run {} (install Debian's nats-server: `make setup`): {e}",
                binary.display()
            ))
        })?;
    let begun = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if begun.elapsed() > START_TIMEOUT || matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(format!("it did not listen on port {port}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}

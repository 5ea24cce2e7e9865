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
}

impl LocalNats {
    /// Starts Debian's `nats-server` (or the one on `PATH`) with JetStream storing under
    /// `store`, and waits until it accepts connections.
    pub fn start(store: &Path) -> Result<Self, ClusterError> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| failed(format!("no free port: {e}")))?
            .port();
        let child = spawn(port, store)?;
        Ok(Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store: store.to_owned(),
        })
    }

    /// Kills the server (SIGKILL, as a crash) and starts it again on the same port and
    /// store, waiting until it accepts connections.
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        self.kill();
        self.child = spawn(self.port, &self.store)?;
        Ok(())
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Starts `nats-server -js` on `port` storing under `store`, and waits until it listens.
fn spawn(port: u16, store: &Path) -> Result<Child, ClusterError> {
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nats-server"));
    let mut child = Command::new(&binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
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

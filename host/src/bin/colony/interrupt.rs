//! Ctrl-C and SIGTERM. The first one asks the command to stop gracefully — its workers
//! stopped (journaled `stopped`, with their reports), its summary printed — and to exit
//! with 130 (SIGINT) or 143 (SIGTERM); a second one exits at once with that code.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

/// The exit code after SIGINT (128 + 2), as shells report it.
const SIGINT_EXIT: u8 = 130;
/// The exit code after SIGTERM (128 + 15).
const SIGTERM_EXIT: u8 = 143;

/// Whether, and by which signal, the command was asked to stop.
#[derive(Clone)]
pub(crate) struct Interrupt {
    stop: CancellationToken,
    code: Arc<AtomicU8>,
}

impl Interrupt {
    /// Listens for SIGINT and SIGTERM from now on (instead of dying on the first).
    pub(crate) fn listen() -> Self {
        let interrupt = Self {
            stop: CancellationToken::new(),
            code: Arc::new(AtomicU8::new(0)),
        };
        tokio::spawn(interrupt.clone().watch());
        interrupt
    }

    async fn watch(self) {
        let code = next_signal().await;
        self.code.store(code, Ordering::Release);
        self.stop.cancel();
        eprintln!("colony: stopping (again to exit at once)");
        next_signal().await;
        std::process::exit(code.into());
    }

    /// Resolves once the first signal came.
    pub(crate) async fn fired(&self) {
        self.stop.cancelled().await;
    }

    /// Whether a signal came.
    pub(crate) fn is_fired(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// The token cancelled by the first signal.
    pub(crate) fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// 130 after SIGINT, 143 after SIGTERM.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code.load(Ordering::Acquire))
    }
}

/// Waits for the next SIGINT or SIGTERM; its exit code.
async fn next_signal() -> u8 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => SIGINT_EXIT,
                _ = term.recv() => SIGTERM_EXIT,
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    SIGINT_EXIT
}

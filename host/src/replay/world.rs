//! [`World`]: what a recorded or replayed guest reads outside its host calls — the WASI
//! clocks and random.
//!
//! Why not record every clock reading: a guest may read the clock in a loop, and each
//! reading would be a step. Instead a recorded worker's insecure random is seeded from its
//! id (so it repeats), and a replay (or fork) runs with clocks that start at the recorded
//! run's start and advance one millisecond per reading, and with all its random — secure
//! too — seeded from the recorded worker's id: the same from one replay to the next. A
//! recorded run's secure random stays the operating system's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// How far a replay's clocks move per reading.
const TICK: Duration = Duration::from_millis(1);

/// The clocks and random of a recorded or replayed worker.
pub(crate) struct World {
    seed: u64,
    /// For a replay: the recorded run's start, as time since the Unix epoch.
    replay_from: Option<Duration>,
    /// A full replay: the guest reaches no network, and its granted folders read-only.
    isolated: bool,
}

impl World {
    /// A worker being recorded: its insecure random seeded from its id `worker`.
    pub fn recorded(worker: &str) -> Self {
        Self {
            seed: seed_of(worker),
            replay_from: None,
            isolated: false,
        }
    }

    /// A replay of worker `source`, whose run started at `started` (since the epoch);
    /// `isolated`: all of it is answered from the recording, so the guest gets no network
    /// and its granted folders read-only (a fork goes live: it keeps its grants).
    pub fn replayed(source: &str, started: Duration, isolated: bool) -> Self {
        Self {
            seed: seed_of(source),
            replay_from: Some(started),
            isolated,
        }
    }

    /// Whether the guest is cut off from the world: no network, granted folders
    /// read-only.
    pub fn isolated(&self) -> bool {
        self.isolated
    }

    /// Sets the clocks and random of a worker's WASI context.
    pub fn apply(&self, builder: &mut WasiCtxBuilder) {
        builder
            .insecure_random(StdRng::seed_from_u64(self.seed))
            .insecure_random_seed(u128::from(self.seed));
        if let Some(start) = self.replay_from {
            let ticks = Arc::new(AtomicU64::new(0));
            builder
                .secure_random(StdRng::seed_from_u64(self.seed.rotate_left(32)))
                .wall_clock(ReplayWall {
                    start,
                    ticks: ticks.clone(),
                })
                .monotonic_clock(ReplayMonotonic { ticks });
        }
    }
}

fn seed_of(worker: &str) -> u64 {
    let digest = Sha256::digest(worker.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

/// Readings so far, then one more.
fn tick(ticks: &AtomicU64) -> u64 {
    ticks.fetch_add(1, Ordering::Relaxed) + 1
}

struct ReplayWall {
    start: Duration,
    ticks: Arc<AtomicU64>,
}

impl HostWallClock for ReplayWall {
    fn resolution(&self) -> Duration {
        TICK
    }

    fn now(&self) -> Duration {
        self.start + TICK * u32::try_from(tick(&self.ticks)).unwrap_or(u32::MAX)
    }
}

struct ReplayMonotonic {
    ticks: Arc<AtomicU64>,
}

impl HostMonotonicClock for ReplayMonotonic {
    fn resolution(&self) -> u64 {
        TICK.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        tick(&self.ticks).saturating_mul(TICK.as_nanos() as u64)
    }
}

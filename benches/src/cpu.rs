//! CPU time spent, by thread: what a row costs, beside how fast it ran.
//!
//! Why: on two cores wall-clock rates drift by up to 2× between runs, while the CPU a
//! worker costs moves much less; and the journal's writer is one thread, so its share
//! says whether it is the bound. Read from `/proc/self/task/*/schedstat` (nanoseconds of
//! each live thread; a thread that has exited is not counted).

use std::time::Duration;

/// CPU time of this process's live threads at one moment.
#[derive(Clone, Copy, Default)]
pub struct CpuTime {
    /// Every thread.
    pub total: Duration,
    /// The journal's writer thread (`colony-journal`).
    pub journal: Duration,
}

impl CpuTime {
    pub fn now() -> Self {
        let mut time = Self::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return time;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let Some(ns) = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            else {
                continue;
            };
            let spent = Duration::from_nanos(ns);
            time.total += spent;
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim_end() == "colony-journal" {
                time.journal += spent;
            }
        }
        time
    }

    /// CPU spent since `earlier`, per item of `count`, in microseconds: (total, journal).
    pub fn per_item_since(self, earlier: Self, count: usize) -> (f64, f64) {
        let per = |later: Duration, before: Duration| {
            later.saturating_sub(before).as_secs_f64() * 1e6 / count.max(1) as f64
        };
        (
            per(self.total, earlier.total),
            per(self.journal, earlier.journal),
        )
    }
}

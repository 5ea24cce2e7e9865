//! The host-side budgets of one worker: what the host may *hold* in its own memory and
//! *write* to disk on the guest's behalf.
//!
//! Why: the sandbox bounds the guest's linear memory, but a guest can make the host do
//! the allocating — read back a conversation it wrote to disk, queue messages for a
//! sibling, ask a tool for a large file or a model for a long answer. Without a bound of
//! its own, one worker with a 64 MiB memory limit can make the host hold hundreds of
//! MiB, or fill a disk through its folder. So every host function that produces bytes
//! for a guest charges [`HostMemory`] *before* it allocates them (or, for streams, as
//! they arrive, stopping at the bound), and every write into the worker's folder
//! charges [`DiskQuota`] before it is made. An overrun is an error the guest sees,
//! never a trap and never a host allocation first and a check after.
//!
//! The two budgets are per worker; their sizes are [`Limits::host_memory_bytes`] and
//! [`Limits::disk_bytes`](crate::Limits).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::limits::human_bytes;

/// A charge was refused: the budget would be exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} needs {needed} bytes, but the worker's {kind} ({budget}) has only {available} bytes left"
)]
pub struct OverBudget {
    /// What asked for the bytes ("a conversation page", "the model's answer", …).
    pub what: String,
    /// Bytes asked for.
    pub needed: u64,
    /// Bytes that were left.
    pub available: u64,
    /// The budget, in words ("16 MiB").
    pub budget: String,
    /// Which budget ("host memory budget", "disk quota").
    pub kind: &'static str,
}

/// Bytes the host holds for one worker at once. Charges are released when their
/// [`Held`] guard is dropped.
#[derive(Debug)]
pub struct HostMemory {
    limit: usize,
    used: AtomicUsize,
    kind: &'static str,
}

impl HostMemory {
    /// A budget of `limit` bytes, none used.
    pub fn new(limit: usize) -> Arc<Self> {
        Self::named(limit, "host memory budget")
    }

    /// A budget of `limit` bytes called `kind` in errors (a share of another).
    pub fn named(limit: usize, kind: &'static str) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            kind,
        })
    }

    /// The budget's size.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes that may still be charged.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.used.load(Ordering::Acquire))
    }

    /// Charges `bytes` for `what`, held until the guard is dropped.
    pub fn hold(self: &Arc<Self>, bytes: usize, what: &str) -> Result<Held, OverBudget> {
        self.take(bytes, what)?;
        Ok(Held {
            budget: self.clone(),
            bytes,
        })
    }

    /// An empty charge that can [`grow`](Held::grow) as a stream arrives.
    pub fn stream(self: &Arc<Self>) -> Held {
        Held {
            budget: self.clone(),
            bytes: 0,
        }
    }

    fn take(&self, bytes: usize, what: &str) -> Result<(), OverBudget> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .map(|_| ())
            .map_err(|used| OverBudget {
                what: what.to_owned(),
                needed: bytes as u64,
                available: self.limit.saturating_sub(used) as u64,
                budget: human_bytes(self.limit),
                kind: self.kind,
            })
    }
}

/// Bytes charged to a [`HostMemory`], released on drop.
#[derive(Debug)]
pub struct Held {
    budget: Arc<HostMemory>,
    bytes: usize,
}

impl Held {
    /// Charges `more` bytes to this guard (a stream that grew).
    pub fn grow(&mut self, more: usize, what: &str) -> Result<(), OverBudget> {
        self.budget.take(more, what)?;
        self.bytes += more;
        Ok(())
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Bytes the host may still write into one worker's folder, over the worker's life.
///
/// Writes are counted, not the folder's size: rewriting a file costs again, so the folder
/// can never hold more than the quota, whatever the guest does.
#[derive(Debug)]
pub struct DiskQuota {
    limit: u64,
    written: AtomicU64,
    kind: &'static str,
}

impl DiskQuota {
    /// A quota of `limit` bytes, none written.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self::named(limit, "disk quota"))
    }

    /// A quota of `limit` bytes called `kind` in errors.
    pub fn named(limit: u64, kind: &'static str) -> Self {
        Self {
            limit,
            written: AtomicU64::new(0),
            kind,
        }
    }

    /// The quota's size.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Bytes that may still be written.
    pub fn available(&self) -> u64 {
        self.limit.saturating_sub(self.written())
    }

    /// Gives back `bytes` charged for a write that then failed.
    pub fn refund(&self, bytes: u64) {
        let _ = self
            .written
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |written| {
                Some(written.saturating_sub(bytes))
            });
    }

    /// Charges `bytes` about to be written for `what`.
    pub fn charge(&self, bytes: u64, what: &str) -> Result<(), OverBudget> {
        self.written
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |written| {
                written
                    .checked_add(bytes)
                    .filter(|&total| total <= self.limit)
            })
            .map(|_| ())
            .map_err(|written| OverBudget {
                what: what.to_owned(),
                needed: bytes,
                available: self.limit.saturating_sub(written),
                budget: human_bytes(usize::try_from(self.limit).unwrap_or(usize::MAX)),
                kind: self.kind,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_bytes_are_released_on_drop() {
        let budget = HostMemory::new(100);
        let a = budget.hold(60, "a").unwrap();
        let err = budget.hold(50, "a conversation page").unwrap_err();
        assert_eq!(err.available, 40);
        assert!(
            err.to_string()
                .contains("a conversation page needs 50 bytes, but the worker's host memory budget (100 bytes) has only 40 bytes left"),
            "{err}"
        );
        drop(a);
        let mut stream = budget.stream();
        stream.grow(100, "s").unwrap();
        assert!(stream.grow(1, "s").is_err());
        assert_eq!(budget.available(), 0);
        drop(stream);
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn disk_quota_counts_every_write() {
        let quota = DiskQuota::new(10);
        quota.charge(6, "a part").unwrap();
        assert!(quota.charge(5, "a part").is_err());
        quota.charge(4, "a part").unwrap();
        assert_eq!(quota.available(), 0);
        quota.refund(3);
        assert_eq!(quota.available(), 3);
        assert!(quota.charge(u64::MAX, "x").is_err());
    }
}

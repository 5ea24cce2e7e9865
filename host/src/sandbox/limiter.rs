//! [`InstanceLimiter`]: the resource limiter of one worker's store.
//!
//! Why not wasmtime's `StoreLimits`: it limits each linear memory separately, so a
//! component with several memories (JavaScript and Python guests have a few) could hold
//! a multiple of the limit. This limiter charges every memory and table of the instance
//! against one budget, and ends the guest with a [`LimitExceeded`] trap that names the
//! limit rather than letting allocation fail in language-specific ways.

use wasmtime::ResourceLimiter;

use crate::error::LimitExceeded;
use crate::limits::{Limits, human_bytes};

/// Bytes charged per table element (a function reference is one pointer-sized slot).
const TABLE_ELEMENT_BYTES: usize = 8;

pub(crate) struct InstanceLimiter {
    memory_budget: usize,
    /// Bytes held by every memory and table of the store.
    used: usize,
    table_elements: usize,
    instances: usize,
    tables: usize,
    memories: usize,
}

impl InstanceLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            memory_budget: limits.memory_bytes,
            used: 0,
            table_elements: limits.table_elements,
            instances: limits.instances,
            tables: limits.tables,
            memories: limits.memories,
        }
    }

    fn charge(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.memory_budget {
            return Err(LimitExceeded::Memory(human_bytes(self.memory_budget)).into());
        }
        self.used = total;
        Ok(true)
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.charge(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            return Err(LimitExceeded::TableElements(self.table_elements).into());
        }
        self.charge(current * TABLE_ELEMENT_BYTES, desired * TABLE_ELEMENT_BYTES)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let limits = Limits {
            memory_bytes: 1000,
            table_elements: 50,
            ..Limits::default()
        };
        let mut limiter = InstanceLimiter::new(&limits);
        assert!(limiter.memory_growing(0, 600, None).unwrap());
        assert!(limiter.memory_growing(0, 300, None).unwrap());
        // 900 used: a table of 20 elements (160 bytes) no longer fits.
        let err = limiter.table_growing(0, 20, None).unwrap_err();
        assert_eq!(err.to_string(), "memory limit exceeded: 1000 bytes");
        assert!(limiter.table_growing(0, 10, None).unwrap());
        let err = limiter.table_growing(10, 51, None).unwrap_err();
        assert_eq!(err.to_string(), "table limit exceeded: 50 elements");
        // Growing the first memory from 600 to 620 fits exactly.
        assert!(limiter.memory_growing(600, 620, None).unwrap());
    }
}

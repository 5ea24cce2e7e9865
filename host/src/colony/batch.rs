//! Batches: a fan-out journaled as one job, so that it survives its process.
//!
//! Why: a fan-out of thousands of tasks killed half-way (a crash, a `kill -9`, a lost
//! machine) used to leave only workers — some ended, some `interrupted` — and no way to
//! finish the job but to work out by hand which tasks were left. A batch has an id; each
//! of its workers is journaled with the batch and the index of its task, so
//! [`Colony::resume_batch`] can run exactly the tasks that have no report yet, once each.

use super::{Colony, ColonyError, Task};
use crate::journal::{BatchRecord, RecordState};
use crate::plugin::Plugin;
use crate::worker::{BatchPlace, Usage, WorkerReport, crashed};

/// A batch as fanned out (or resumed) by this colony.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Its id (`b-…`): what [`Colony::resume_batch`] and `colony fanout --resume` take.
    pub id: String,
    /// How many tasks it has in all.
    pub size: u64,
    /// The workers started now: the task's index and the worker's id.
    pub started: Vec<(u64, String)>,
    /// The reports of tasks that had ended before (when resumed), by index.
    pub reported: Vec<(u64, WorkerReport)>,
}

impl Batch {
    /// The ids of the workers started now, in index order.
    pub fn ids(&self) -> Vec<String> {
        self.started.iter().map(|(_, id)| id.clone()).collect()
    }
}

impl Colony {
    /// Fans `tasks` out as one batch: journaled with an id, each worker with its task's
    /// index. Not capped by `max_batch` (the cap of one [`Colony::run_parallel`] call):
    /// a batch is the whole fan-out, its workers queued for concurrency slots in order.
    pub fn fan_out(&self, plugin: &Plugin, tasks: Vec<Task>) -> Result<Batch, ColonyError> {
        self.ensure_running()?;
        let id = self.new_id("b");
        let size = tasks.len() as u64;
        self.inner.journal.add_batch(&id, self.id(), size);
        let places = (0..size).map(|index| BatchPlace {
            id: id.clone(),
            index,
            size,
        });
        let ids = self.spawn_tasks(plugin, tasks.into_iter().zip(places.map(Some)).collect())?;
        Ok(Batch {
            started: (0..size).zip(ids).collect(),
            id,
            size,
            reported: Vec::new(),
        })
    }

    /// Runs again exactly the tasks of batch `id` that have no report yet (their workers
    /// were interrupted), once each, with the same index, input and token and tool-call
    /// budgets; the others' reports come back in [`Batch::reported`] (a task whose worker
    /// was never journaled cannot be run again: it comes back as a failed report saying
    /// so).
    pub fn resume_batch(&self, plugin: &Plugin, id: &str) -> Result<Batch, ColonyError> {
        self.ensure_running()?;
        let record = self
            .inner
            .journal
            .batch(id)?
            .ok_or_else(|| ColonyError::UnknownBatch {
                colony: self.id().to_owned(),
                batch: id.to_owned(),
            })?;
        let running = record
            .workers
            .iter()
            .filter(|w| !w.state.has_ended() && w.state != RecordState::Interrupted)
            .count();
        if running > 0 {
            return Err(ColonyError::BatchRunning {
                colony: self.id().to_owned(),
                batch: id.to_owned(),
                running,
            });
        }
        let (reported, left) = split(&record);
        let places = left.iter().map(|(index, _)| place(&record, *index));
        let tasks = left.iter().map(|(_, task)| task.clone());
        let ids = self.spawn_tasks(plugin, tasks.zip(places.map(Some)).collect())?;
        Ok(Batch {
            id: id.to_owned(),
            size: record.size,
            started: left.iter().map(|(index, _)| *index).zip(ids).collect(),
            reported,
        })
    }
}

/// Something of a batch's task, with the task's index.
type Indexed<T> = (u64, T);

/// The batch's ended tasks (index and report) and its tasks left to run (index and task,
/// from the latest worker journaled for it). A task with no worker journaled at all (its
/// process ended while it was being created) cannot be run again — its text is lost —
/// and gets a failed report saying so, never silence.
fn split(record: &BatchRecord) -> (Vec<Indexed<WorkerReport>>, Vec<Indexed<Task>>) {
    let mut reported = Vec::new();
    let mut left = Vec::new();
    for index in 0..record.size {
        let workers: Vec<_> = record
            .workers
            .iter()
            .filter(|w| w.batch.as_ref().is_some_and(|b| b.index == index))
            .collect();
        if let Some(ended) = workers.iter().find(|w| w.state.has_ended()) {
            let result = ended.result.clone().unwrap_or_else(|| {
                crashed(
                    "its result was not journaled".to_owned(),
                    0.0,
                    Usage::default(),
                )
            });
            let report = WorkerReport::from_result(
                &ended.id,
                &ended.colony_id,
                &ended.task,
                &result,
                Some(&place(record, index)),
            );
            reported.push((index, report));
        } else if let Some(latest) = workers.last() {
            left.push((
                index,
                Task::new(latest.task.clone())
                    .with_input(latest.input.clone())
                    .with_budgets(latest.token_budget, latest.tool_call_budget),
            ));
        } else {
            let lost = crashed(
                format!(
                    "task {index} of batch '{}' was never journaled (its process ended while \
                     creating it): it cannot be run again",
                    record.id
                ),
                0.0,
                Usage::default(),
            );
            let worker = format!("{}#{index}", record.id);
            reported.push((
                index,
                WorkerReport::from_result(
                    &worker,
                    &record.colony_id,
                    "",
                    &lost,
                    Some(&place(record, index)),
                ),
            ));
        }
    }
    (reported, left)
}

/// Task `index`'s place in the batch of `record`.
fn place(record: &BatchRecord, index: u64) -> BatchPlace {
    BatchPlace {
        id: record.id.clone(),
        index,
        size: record.size,
    }
}

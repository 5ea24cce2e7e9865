//! The exception tree: `ColonyError` and its subclasses, each carrying the host's message
//! (which names the worker, plugin or colony that failed).
//!
//! ```text
//! ColonyError                 anything the host refused or could not do
//! ├── PluginLoadError         a component or manifest that cannot be loaded
//! └── WorkerError             a worker refused an operation (wrong state, bad spec)
//!     ├── LimitError          a declared limit was hit (message size, inbox, batch)
//!     └── BudgetError         a worker's host memory budget has no room left
//! ```
//! Wrong Python values (a task that is not a string, a non-object input) are the usual
//! `TypeError` / `ValueError`.

use colony::{
    ColonyError as HostColonyError, PluginError, RuntimeError, WorkerError as HostWorkerError,
};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(
    colony,
    ColonyError,
    PyException,
    "Anything the Colony host refused or could not do."
);
pyo3::create_exception!(
    colony,
    PluginLoadError,
    ColonyError,
    "A component or manifest that cannot be loaded."
);
pyo3::create_exception!(
    colony,
    WorkerError,
    ColonyError,
    "A worker refused an operation."
);
pyo3::create_exception!(colony, LimitError, WorkerError, "A declared limit was hit.");
pyo3::create_exception!(
    colony,
    BudgetError,
    WorkerError,
    "A worker's host memory budget has no room left."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ColonyError", py.get_type::<ColonyError>())?;
    m.add("PluginLoadError", py.get_type::<PluginLoadError>())?;
    m.add("WorkerError", py.get_type::<WorkerError>())?;
    m.add("LimitError", py.get_type::<LimitError>())?;
    m.add("BudgetError", py.get_type::<BudgetError>())?;
    Ok(())
}

/// A plugin that could not be loaded.
pub fn plugin(error: PluginError) -> PyErr {
    PluginLoadError::new_err(error.to_string())
}

/// A runtime that could not be built.
pub fn runtime(error: RuntimeError) -> PyErr {
    ColonyError::new_err(error.to_string())
}

/// A worker's refusal, by kind.
pub fn worker(error: HostWorkerError) -> PyErr {
    let message = error.to_string();
    match error {
        HostWorkerError::MessageTooLarge { .. } | HostWorkerError::InboxFull { .. } => {
            LimitError::new_err(message)
        }
        HostWorkerError::InboxOverBudget { .. } => BudgetError::new_err(message),
        _ => WorkerError::new_err(message),
    }
}

/// A colony's refusal, by kind.
pub fn colony(error: HostColonyError) -> PyErr {
    match error {
        HostColonyError::Worker(error) => worker(error),
        HostColonyError::BatchTooLarge { .. } => LimitError::new_err(error.to_string()),
        HostColonyError::UnknownWorker { .. } => WorkerError::new_err(error.to_string()),
        other => ColonyError::new_err(other.to_string()),
    }
}

//! `Runtime` and `Plugin`: the engine, its model provider and tools, and the components
//! loaded into it.

use std::path::PathBuf;
use std::sync::Arc;

use colony::llm::LlmProvider;
use colony::tools::ToolRegistry;
use colony::{Limits, Plugin, Runtime, RuntimeConfig};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;

use crate::event_loop::LoopSlot;
use crate::host::{Host, tokio};
use crate::json;
use crate::provider::PythonProvider;
use crate::tool::PythonTool;

/// Compiles plugins and runs their workers: one wasmtime engine, the host's limits, its
/// model provider and its tools.
///
/// `config`: a host config file (TOML, as `colony --config`) or a dict of the same
/// fields. `limits`: fields of the default worker limits to override. `tools`: Python
/// tools (made by `colony.tool`), granted by name in manifests like the built-ins.
/// `provider`: an object with an async `complete(request)`, the model provider of every
/// guest (instead of the config's `llm`).
#[pyclass(name = "Runtime", module = "colony", frozen)]
pub struct PyRuntime {
    pub host: Host,
}

#[pymethods]
impl PyRuntime {
    #[new]
    #[pyo3(signature = (config=None, *, limits=None, tools=Vec::new(), provider=None))]
    fn new(
        py: Python<'_>,
        config: Option<&Bound<'_, PyAny>>,
        limits: Option<&Bound<'_, PyAny>>,
        tools: Vec<Bound<'_, PyAny>>,
        provider: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut config = read_config(config)?;
        if let Some(limits) = limits {
            config.limits = overlay(&config.limits, limits)?;
        }
        let event_loop = Arc::new(LoopSlot::default());
        event_loop.note(py);
        let mut registry = ToolRegistry::with_builtins();
        let tool_class = py.import("colony")?.getattr("Tool")?;
        for spec in &tools {
            if !spec.is_instance(&tool_class)? {
                return Err(PyTypeError::new_err(format!(
                    "tools must be colony.Tool objects (made with @colony.tool), not {}",
                    spec.get_type().name()?
                )));
            }
            let tool = PythonTool::from_spec(spec, event_loop.clone())?;
            if registry.get(colony::tools::Tool::name(&tool)).is_some() {
                return Err(PyValueError::new_err(format!(
                    "tool '{}' is already registered (a built-in or an earlier tool)",
                    colony::tools::Tool::name(&tool)
                )));
            }
            registry.register(Arc::new(tool));
        }
        let llm: Option<Arc<dyn LlmProvider>> = match provider {
            Some(p) if !p.is_none() => Some(Arc::new(PythonProvider::new(p, event_loop.clone())?)),
            _ => match &config.llm {
                Some(llm) => Some(llm.build().map_err(crate::errors::ColonyError::new_err)?),
                None => None,
            },
        };
        let runtime = py
            .detach(|| {
                let _tokio = tokio().enter();
                Runtime::with_parts(config, llm, registry)
            })
            .map_err(crate::errors::runtime)?;
        crate::shutdown::traced(runtime.telemetry());
        Ok(Self {
            host: Host {
                runtime,
                event_loop,
            },
        })
    }

    /// Loads, validates and compiles the component at `path` (no grants, the runtime's
    /// limits). `name` defaults to the file's stem.
    #[pyo3(signature = (path, name=None))]
    fn load_plugin<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        name: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let name = name.unwrap_or_else(|| stem(&path));
        let host = self.host.clone();
        self.host.awaitable(py, async move {
            let plugin = host
                .runtime
                .load_plugin(name, path)
                .await
                .map_err(crate::errors::plugin)?;
            Ok(PyPlugin { plugin, host })
        })
    }

    /// Loads the component `data` (bytes) as plugin `name`.
    fn load_plugin_bytes<'py>(
        &self,
        py: Python<'py>,
        name: String,
        data: Vec<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let host = self.host.clone();
        self.host.awaitable(py, async move {
            let plugin = host
                .runtime
                .load_plugin_bytes(name, data)
                .await
                .map_err(crate::errors::plugin)?;
            Ok(PyPlugin { plugin, host })
        })
    }

    /// Loads the plugin a manifest (TOML) describes: its component, sha256 pin, grants
    /// and limits.
    fn load_manifest<'py>(&self, py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let host = self.host.clone();
        self.host.awaitable(py, async move {
            let plugin = host
                .runtime
                .load_manifest(path)
                .await
                .map_err(crate::errors::plugin)?;
            Ok(PyPlugin { plugin, host })
        })
    }

    /// The default limits of this runtime's workers.
    #[getter]
    fn limits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json::to_py(py, self.host.runtime.limits())
    }

    /// Whether guests have a model provider.
    #[getter]
    fn has_llm(&self) -> bool {
        self.host.runtime.has_llm()
    }
}

/// A component loaded into a runtime, with its grants and limits.
#[pyclass(name = "Plugin", module = "colony", frozen)]
pub struct PyPlugin {
    pub plugin: Plugin,
    pub host: Host,
}

#[pymethods]
impl PyPlugin {
    /// Its name (from the manifest, or as loaded).
    #[getter]
    fn name(&self) -> &str {
        self.plugin.name()
    }

    /// The component's sha256 (hex).
    #[getter]
    fn sha256(&self) -> Option<&str> {
        self.plugin.sha256()
    }

    /// The component's size in bytes.
    #[getter]
    fn size(&self) -> Option<usize> {
        self.plugin.size()
    }

    /// The limits its workers obey.
    #[getter]
    fn limits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json::to_py(py, self.plugin.limits())
    }

    fn __repr__(&self) -> String {
        format!("<colony.Plugin {:?}>", self.plugin.name())
    }
}

fn stem(path: &std::path::Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into())
}

fn read_config(config: Option<&Bound<'_, PyAny>>) -> PyResult<RuntimeConfig> {
    let Some(config) = config.filter(|c| !c.is_none()) else {
        return Ok(RuntimeConfig::default());
    };
    if let Ok(path) = config.extract::<PathBuf>() {
        return RuntimeConfig::load(path)
            .map_err(|e| crate::errors::ColonyError::new_err(e.to_string()));
    }
    let value = json::object(Some(config), "config")?;
    serde_json::from_value(value).map_err(|e| PyValueError::new_err(format!("config: {e}")))
}

fn overlay(base: &Limits, overrides: &Bound<'_, PyAny>) -> PyResult<Limits> {
    let Value::Object(overrides) = json::object(Some(overrides), "limits")? else {
        return Err(PyTypeError::new_err("limits must be a dict"));
    };
    let mut limits =
        serde_json::to_value(base).map_err(|e| PyValueError::new_err(e.to_string()))?;
    if let Value::Object(fields) = &mut limits {
        for (key, value) in overrides {
            // Durations are humantime strings ("60s", "250ms"); a number is seconds, as
            // everywhere else in the Python API.
            let value = match (fields.get(&key), &value) {
                (Some(Value::String(_)), Value::Number(n)) => match n.as_f64() {
                    Some(seconds) if seconds >= 0.0 => {
                        Value::String(format!("{}ms", (seconds * 1000.0).round() as u64))
                    }
                    _ => value,
                },
                _ => value,
            };
            fields.insert(key, value);
        }
    }
    serde_json::from_value(limits).map_err(|e| PyValueError::new_err(format!("limits: {e}")))
}

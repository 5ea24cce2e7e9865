//! Host tools written in Python: an async function a guest calls through `tools.call`,
//! granted by name in its plugin's manifest like the built-ins.
//!
//! The host's rules hold as for any tool: the call is made only if granted, under the
//! worker's tool timeout (the coroutine is cancelled on its loop when it passes) and its
//! tool-call budget, and a result larger than the worker's host memory budget has room
//! for is refused. The function is called with the guest's arguments as keyword
//! arguments; what it returns must be JSON; what it raises reaches the guest as a tool
//! error (`Type: message`), and a `TypeError` from arguments that do not fit its
//! signature as invalid arguments.

use std::sync::Arc;

use colony::tools::{Tool, ToolContext, ToolError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use crate::event_loop::{self, CallError, LoopSlot};

/// One Python tool.
pub struct PythonTool {
    name: String,
    description: String,
    parameters: Value,
    function: Arc<Py<PyAny>>,
    event_loop: Arc<LoopSlot>,
}

impl PythonTool {
    /// The tool `spec` describes: an object with `name`, `description`, `parameters`
    /// (a JSON schema) and `function` (an async function), as `colony.tool` makes.
    pub fn from_spec(spec: &Bound<'_, PyAny>, event_loop: Arc<LoopSlot>) -> PyResult<Self> {
        let name: String = spec.getattr("name")?.extract()?;
        let description: String = spec.getattr("description")?.extract()?;
        let parameters =
            crate::json::object(Some(&spec.getattr("parameters")?), "tool parameters")?;
        let function = spec.getattr("function")?;
        if !function.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "tool '{name}': function is not callable"
            )));
        }
        Ok(Self {
            name,
            description,
            parameters,
            function: Arc::new(function.unbind()),
            event_loop,
        })
    }
}

#[async_trait::async_trait]
impl Tool for PythonTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.parameters.clone()
    }

    async fn call(&self, ctx: &ToolContext, arguments: Value) -> Result<Value, ToolError> {
        let Value::Object(_) = &arguments else {
            return Err(ToolError::InvalidArguments(
                "arguments must be an object".into(),
            ));
        };
        let text = arguments.to_string();
        let function = self.function.clone();
        let outcome = event_loop::call(self.event_loop.clone(), move |py| {
            let kwargs = crate::json::loads(py, &text)?.cast_into::<PyDict>()?;
            function.bind(py).call((), Some(&kwargs))
        })
        .await;
        let json = match outcome {
            Ok(json) => json,
            Err(CallError::Raised(message)) if message.starts_with("TypeError:") => {
                return Err(ToolError::InvalidArguments(message));
            }
            Err(e) => return Err(ToolError::Failed(e.to_string())),
        };
        if json.len() > ctx.max_result_bytes {
            return Err(ToolError::Failed(format!(
                "the tool's result of {} bytes is larger than the {} bytes the worker's host \
                 memory budget has room for",
                json.len(),
                ctx.max_result_bytes
            )));
        }
        serde_json::from_str(&json).map_err(|e| ToolError::Failed(e.to_string()))
    }
}

//! Host tools written in Python: an async function a guest calls through `tools.call`,
//! granted by name in its plugin's manifest like the built-ins.
//!
//! The host's rules hold as for any tool: the call is made only if granted, under the
//! worker's tool timeout (the coroutine is cancelled on its loop when it passes) and its
//! tool-call budget, and a result larger than the worker's host memory budget has room
//! for is refused before it is copied. The function is called on the loop (by
//! `colony._invoke`) with the guest's arguments as keyword arguments, after they are
//! checked against its signature (a mismatch is invalid arguments); what it returns must
//! be JSON; what it raises reaches the guest as a tool error (`Type: message`: a tool's
//! author writes its messages for the model) and the host's log with its traceback.

use std::sync::Arc;

use colony::tools::{Tool, ToolContext, ToolError};
use pyo3::prelude::*;
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
        let what = format!(
            "tool '{}' (called by worker '{}')",
            self.name, ctx.worker_id
        );
        let outcome = event_loop::call(
            self.event_loop.clone(),
            what,
            ctx.max_result_bytes,
            move |py| {
                let arguments = crate::json::loads(py, &text)?;
                py.import("colony")?
                    .getattr("_invoke")?
                    .call1((function.bind(py), arguments))
            },
        )
        .await;
        let json = match outcome {
            Ok(json) => json,
            Err(CallError::InvalidArguments(why)) => return Err(ToolError::InvalidArguments(why)),
            Err(CallError::TooLarge(size)) => {
                return Err(ToolError::Failed(format!(
                    "the tool's result of {size} bytes is larger than the {} bytes the \
                     worker's host memory budget has room for",
                    ctx.max_result_bytes
                )));
            }
            Err(e) => return Err(ToolError::Failed(e.to_string())),
        };
        serde_json::from_str(&json).map_err(|e| ToolError::Failed(e.to_string()))
    }
}

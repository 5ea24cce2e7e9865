//! [`Task`]: one task of a fan-out.

use serde_json::Value;

/// One task of a fan-out.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The task in natural language.
    pub task: String,
    /// A JSON object.
    pub input: Value,
    /// This task's token budget, instead of the plugin's.
    pub token_budget: Option<u64>,
    /// This task's tool-call budget, instead of the plugin's.
    pub tool_call_budget: Option<u32>,
}

impl Task {
    /// A task with no structured input.
    pub fn new(task: impl Into<String>) -> Self {
        Self {
            task: task.into(),
            input: Value::Object(Default::default()),
            token_budget: None,
            tool_call_budget: None,
        }
    }

    /// Sets the structured input (a JSON object).
    pub fn with_input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    /// Sets this task's token and tool-call budgets.
    pub fn with_budgets(mut self, tokens: Option<u64>, tool_calls: Option<u32>) -> Self {
        self.token_budget = tokens;
        self.tool_call_budget = tool_calls;
        self
    }
}

//! A real agent loop, as the reference framework's at its core: build the conversation
//! (the seeded one, the task, and messages injected mid-run), call the model, run the tool
//! calls it asks for, feed the results back, and repeat — up to a maximum number of
//! iterations — then report to the parent.
//!
//! The model and the tools are the host's (`llm`, `tools`): the loop never holds a key or
//! a socket, and the host enforces its token and tool-call budgets.
//!
//! Input (optional): `{"max_iterations": 10, "system": "…"}`.

use colony_guest_sdk::llm::{self, LlmError, Message, Request, Role, ToolSpec};
use colony_guest_sdk::{
    Agent, Context, Status, Value, conversation, events, inbox, json, report, tools,
};

const DEFAULT_SYSTEM: &str = "You are a worker agent in a colony. Use the tools you are given, \
then answer with a short summary of what you found.";

#[derive(Default)]
struct AgentLoop;

fn role_of(name: &str) -> Role {
    match name {
        "system" => Role::System,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => Role::User,
    }
}

/// Records a message in the worker's conversation as well as in the loop's memory.
fn remember(messages: &mut Vec<Message>, message: Message) {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let _ = conversation::append_part(&colony_guest_sdk::NewPart {
        role: role.to_owned(),
        content: message.content.clone(),
        tool_calls: (!message.tool_calls.is_empty()).then(|| {
            Value::Array(
                message
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments}))
                    .collect(),
            )
            .to_string()
        }),
        tool_use_id: message.tool_call_id.clone(),
        phase: None,
    });
    messages.push(message);
}

impl Agent for AgentLoop {
    fn run(&mut self, ctx: Context) -> Result<Value, String> {
        let max_iterations = ctx.input["max_iterations"].as_u64().unwrap_or(10);
        let system = ctx.input["system"]
            .as_str()
            .unwrap_or(DEFAULT_SYSTEM)
            .to_owned();
        let specs: Vec<ToolSpec> = tools::granted()
            .into_iter()
            .map(|t| ToolSpec {
                name: t.name,
                description: t.description,
                parameters: t.parameters,
            })
            .collect();

        // The seeded conversation first, then the task.
        let mut messages: Vec<Message> = conversation::read()?
            .into_iter()
            .map(|p| Message {
                role: role_of(&p.role),
                content: p.content,
                tool_calls: Vec::new(),
                tool_call_id: p.tool_use_id,
            })
            .filter(|m| m.role != Role::Tool)
            .collect();
        if !ctx.task.is_empty() {
            remember(&mut messages, llm::message(Role::User, ctx.task.clone()));
        }

        let mut tool_calls = 0u64;
        for iteration in 1..=max_iterations {
            // Messages injected while running (e.g. a soft-timeout warning) become user turns.
            for injected in inbox::drain() {
                remember(&mut messages, llm::message(Role::User, injected));
            }
            events::emit(
                "iteration",
                json!({"iteration": iteration, "messages": messages.len()}),
            )?;
            let request = Request {
                system: Some(system.clone()),
                messages: messages.clone(),
                tools: specs.clone(),
                max_tokens: None,
                temperature: None,
            };
            let response = match llm::complete(&request) {
                Ok(response) => response,
                Err(LlmError::BudgetExhausted(why)) => {
                    report::to_parent(
                        Status::Partial,
                        &format!("Stopped early: token budget exhausted ({why})."),
                        json!({"iterations": iteration - 1, "tool_calls": tool_calls}),
                    )?;
                    return Ok(json!({"iterations": iteration - 1, "stopped": "budget"}));
                }
                Err(e) => return Err(e.describe()),
            };
            let mut assistant = llm::message(Role::Assistant, response.text.clone());
            assistant.tool_calls = response.tool_calls.clone();
            remember(&mut messages, assistant);
            if response.tool_calls.is_empty() {
                report::to_parent(
                    Status::Success,
                    &response.text,
                    json!({"iterations": iteration, "tool_calls": tool_calls}),
                )?;
                return Ok(json!({"answer": response.text, "iterations": iteration}));
            }
            for call in response.tool_calls {
                tool_calls += 1;
                let arguments: Value = serde_json_from(&call.arguments);
                let result = match tools::call(&call.name, &arguments) {
                    Ok(value) => value.to_string(),
                    Err(e) => json!({"error": e.describe()}).to_string(),
                };
                let mut message = llm::message(Role::Tool, result);
                message.tool_call_id = Some(call.id);
                remember(&mut messages, message);
            }
        }
        report::to_parent(
            Status::Partial,
            &format!("Stopped after {max_iterations} iterations without a final answer."),
            json!({"iterations": max_iterations, "tool_calls": tool_calls}),
        )?;
        Ok(json!({"iterations": max_iterations, "stopped": "max_iterations"}))
    }
}

fn serde_json_from(text: &str) -> Value {
    colony_guest_sdk::serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

colony_guest_sdk::export_agent!(AgentLoop);

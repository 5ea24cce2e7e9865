//! The conformance worker in Rust (the same agent as examples/js, examples/python and
//! examples/c): reads its task, emits a progress event, reads its seeded conversation,
//! takes injected messages and reports to its parent.
//! Input: `{"wait": true}` to wait for one injected message, `{"fail": true}` to fail.

use std::time::Duration;

use colony_guest_sdk::{Agent, Context, Status, Value, conversation, events, inbox, json, report};

#[derive(Default)]
struct Worker;

impl Agent for Worker {
    fn run(&mut self, ctx: Context) -> Result<Value, String> {
        events::emit("progress", json!({"step": "start", "language": "rust"}))?;
        let seeded: Vec<String> = conversation::read()?
            .into_iter()
            .map(|p| p.content)
            .collect();
        let mut injected = Vec::new();
        if ctx.input["wait"] == true {
            injected.extend(inbox::wait(Duration::from_secs(30)));
        }
        injected.extend(inbox::drain());
        events::info(&format!(
            "rust worker {} heard {} messages",
            ctx.worker_id,
            injected.len()
        ));
        if ctx.input["fail"] == true {
            return Err(format!("failing on purpose: {}", ctx.task));
        }
        report::to_parent(
            Status::Success,
            &format!("rust did: {}", ctx.task),
            json!({"language": "rust", "seeded": seeded, "injected": injected}),
        )?;
        Ok(json!({"language": "rust", "task": ctx.task}))
    }
}

colony_guest_sdk::export_agent!(Worker);

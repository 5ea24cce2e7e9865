//! The conformance overseer in Rust: a persistent worker that keeps state across turns.

use colony_guest_sdk::{Agent, Context, Value, json};

#[derive(Default)]
struct Overseer {
    turns: u64,
    history: Vec<String>,
}

impl Agent for Overseer {
    fn run(&mut self, _ctx: Context) -> Result<Value, String> {
        Ok(json!({"ready": true, "language": "rust"}))
    }

    fn on_message(&mut self, message: String) -> Result<Value, String> {
        self.turns += 1;
        let previous = self.history.last().cloned();
        self.history.push(message.clone());
        Ok(json!({"turn": self.turns, "heard": message, "previous": previous, "language": "rust"}))
    }
}

colony_guest_sdk::export_agent!(Overseer);

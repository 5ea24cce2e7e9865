//! Chat overseer: a persistent worker that keeps state across turns. It counts turns,
//! remembers every message, tallies `[WORKER_REPORT]` messages from its workers, and on
//! the message `report` files a report to its parent summarising the conversation.

use colony_guest_sdk::{Agent, Context, Status, Value, conversation, events, json, report};

#[derive(Default)]
struct Overseer {
    turns: u64,
    history: Vec<String>,
    worker_reports: u64,
    seeded: usize,
}

impl Agent for Overseer {
    fn run(&mut self, ctx: Context) -> Result<Value, String> {
        self.seeded = conversation::read()?.len();
        events::info(&format!(
            "overseer {} ready (persistent: {}, {} seeded parts)",
            ctx.worker_id, ctx.persistent, self.seeded
        ));
        Ok(json!({"ready": true, "seeded_parts": self.seeded}))
    }

    fn on_message(&mut self, message: String) -> Result<Value, String> {
        self.turns += 1;
        if message.starts_with("[WORKER_REPORT]") {
            self.worker_reports += 1;
        }
        conversation::append("user", &message)?;
        let reply = if message.trim() == "report" {
            report::to_parent(
                Status::Success,
                &format!(
                    "{} turns, {} worker reports heard",
                    self.turns, self.worker_reports
                ),
                json!({"turns": self.turns, "history": self.history}),
            )?;
            "reported to parent".to_owned()
        } else {
            let previous = self
                .history
                .last()
                .map_or("nothing".to_owned(), |m| format!("'{m}'"));
            format!(
                "turn {}: heard '{message}' (before that: {previous})",
                self.turns
            )
        };
        self.history.push(message);
        conversation::append("assistant", &reply)?;
        Ok(json!({
            "turn": self.turns,
            "reply": reply,
            "remembered": self.history.len(),
            "worker_reports": self.worker_reports,
        }))
    }
}

colony_guest_sdk::export_agent!(Overseer);

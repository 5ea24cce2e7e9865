//! Echo / summariser: an ephemeral worker that reads its task, its input and its seeded
//! conversation, picks up messages injected while it runs, and reports explicitly.
//!
//! Input (all optional): `{"text": "…", "max_words": 12}` — the text to summarise (the
//! task itself when absent) and how many words the summary keeps.

use colony_guest_sdk::{Agent, Context, Status, Value, conversation, events, inbox, json, report};

#[derive(Default)]
struct Echo;

impl Agent for Echo {
    fn run(&mut self, ctx: Context) -> Result<Value, String> {
        let text = ctx.input["text"].as_str().unwrap_or(&ctx.task).to_owned();
        let max_words = ctx.input["max_words"].as_u64().unwrap_or(12) as usize;
        events::emit(
            "progress",
            json!({"step": "read", "words": text.split_whitespace().count()}),
        )?;

        let seeded = conversation::read()?;
        let injected = inbox::drain();
        for message in &injected {
            events::info(&format!("heard while running: {message}"));
        }

        let words: Vec<&str> = text.split_whitespace().collect();
        let mut summary = words
            .iter()
            .take(max_words)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        if words.len() > max_words {
            summary.push_str(" …");
        }
        conversation::append("assistant", &summary)?;
        events::emit("progress", json!({"step": "summarised"}))?;

        report::to_parent(
            Status::Success,
            &format!("Summary: {summary}"),
            json!({
                "words": words.len(),
                "seeded_parts": seeded.len(),
                "injected": injected,
            }),
        )?;
        Ok(json!({"summary": summary, "words": words.len()}))
    }
}

colony_guest_sdk::export_agent!(Echo);

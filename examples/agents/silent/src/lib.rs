//! Silent: does its task and returns outputs without calling `report-to-parent`, so the
//! host synthesises the report ("Completed task '…' with N outputs.").

use colony_guest_sdk::{Agent, Context, Value, json};

#[derive(Default)]
struct Silent;

impl Agent for Silent {
    fn run(&mut self, ctx: Context) -> Result<Value, String> {
        let words = ctx.task.split_whitespace().count();
        Ok(json!({"words": words, "shout": ctx.task.to_uppercase()}))
    }
}

colony_guest_sdk::export_agent!(Silent);

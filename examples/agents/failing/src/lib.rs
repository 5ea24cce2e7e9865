//! Failing: logs why and returns an error, so the worker ends FAILED with the guest's
//! message and a synthesised "Task '…' failed: …" report.

use colony_guest_sdk::{Agent, Context, Value, events};

#[derive(Default)]
struct Failing;

impl Agent for Failing {
    fn run(&mut self, ctx: Context) -> Result<Value, String> {
        let reason = ctx.input["reason"]
            .as_str()
            .unwrap_or("the data source is unreachable");
        events::warn(&format!("giving up: {reason}"));
        Err(format!("cannot complete '{}': {reason}", ctx.task))
    }
}

colony_guest_sdk::export_agent!(Failing);

//! Host-side bindings generated from `wit/agent.wit` (the `colony:agent/agent` world).
//!
//! Every import is `trappable` so a host function can end a hostile guest; only
//! `inbox.wait` is async, since it is the only one that waits.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "agent",
    imports: {
        "colony:agent/inbox.wait": async | trappable,
        "colony:agent/llm.complete": async | trappable,
        "colony:agent/tools.call": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub(crate) use self::colony::agent::types::{
    LogLevel, MessagePart as WitPart, NewPart, ReportStatus,
};

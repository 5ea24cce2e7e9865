//! Host-side bindings generated from `wit/agent.wit` (the `colony:agent/agent` world).
//!
//! Every import is `trappable` so a host function can end a hostile guest; the ones
//! that wait — `inbox.wait`, `llm.complete`, `tools.call`, `tools.granted` (an MCP
//! server lists its tools), `peers.send` (a message to a worker on another node waits for
//! its node's answer) — are async.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "agent",
    imports: {
        "colony:agent/inbox.wait": async | trappable,
        "colony:agent/llm.complete": async | trappable,
        "colony:agent/tools.call": async | trappable,
        "colony:agent/tools.granted": async | trappable,
        "colony:agent/peers.send": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub(crate) use self::colony::agent::types::{
    LogLevel, MessagePart as WitPart, NewPart, ReportStatus,
};

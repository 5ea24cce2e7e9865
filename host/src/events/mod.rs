//! Events: what workers publish ([`AgentEvent`], [`EventType`]) and the bus that carries
//! them to subscribers ([`EventBus`]).
//!
//! The bus is in-process and never blocks a publisher. It is lossless for the event an
//! overseer cannot do without, `SUBAGENT_REPORT`; any other event a slow subscriber has
//! no room for is counted and surfaces as an explicit [`RecvError::Lagged`], never as a
//! silent gap.

mod bus;
mod event;
mod filter;
mod log;

pub use bus::{EventBus, RecvError, Subscription};
pub use event::{AgentEvent, EventType};
pub use filter::EventFilter;
pub use log::EventLog;

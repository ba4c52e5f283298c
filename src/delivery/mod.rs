//! Delivery: getting things to people. The connection registry of this node's sessions with
//! their bounded outbound queues, the gateway that turns domain events into pushes for them,
//! the bus that carries pushes, kicks and membership changes to the other nodes, and the
//! notifier for what must reach a person out of band.
//!
//! It serves the domain's outward ports ([`crate::domain::ports`]) and carries the frames the
//! API layer encodes; nothing in it knows a route.

pub mod bus;
pub mod events;
pub mod gateway;
pub mod notify;
pub mod registry;

pub use gateway::Gateway;
pub use notify::Notifier;
pub use registry::{Ending, Registry, Session};

//! The bus between gateway nodes: pushes, kicks and membership changes for sessions held by
//! other nodes, and who is online where.
//!
//! Two implementations:
//! - [`LocalHub`]: in-process. A single node attaches alone and nothing crosses (there is no
//!   one to reach); several nodes in one process (tests) reach each other through it.
//! - [`RedisBus`]: Redis pub/sub (RESP3 pushes), reconnecting and resubscribing by itself.
//!
//! Routing (see README, "Multi-node"): a node subscribes to `u:<user>` while it holds a session
//! of that user, and to `g:<group>` while it holds a session of any of the group's members.
//! Publishing costs one PUBLISH per channel: one for a group event, one per participant for a
//! one-to-one event, whatever the number of nodes or members; Redis forwards it only to the
//! nodes subscribed.
//!
//! Invariants:
//! - The bus is a wake-up path, never the truth: a lost envelope costs latency (clients fill
//!   gaps by seq from the database), never data.
//! - Nothing waits on the bus: publishes and subscription changes go through bounded queues to
//!   background tasks; when a queue is full the envelope is dropped and counted.

mod local;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use self::local::{LocalBus, LocalHub};
pub use self::redis::RedisBus;
use crate::model::{GroupId, UserId};

/// Envelopes received and not yet delivered, per node.
const INBOUND_QUEUE: usize = 65_536;
/// A node's presence entries expire this long after its last refresh.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);

/// The channel of a user's sessions.
pub fn user_channel(user_id: UserId) -> String {
    format!("u:{user_id}")
}

/// The channel of a group's members' sessions.
pub fn group_channel(group_id: GroupId) -> String {
    format!("g:{group_id}")
}

/// What one node tells the others.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Queues `envelope` for every other node subscribed to `channel`.
    fn publish(&self, channel: String, envelope: Bytes);
    /// Starts receiving `channel` (the caller counts references: one call per channel).
    fn subscribe(&self, channel: String);
    /// Stops receiving `channel`.
    fn unsubscribe(&self, channel: String);
    /// Marks users online (`true`) or offline on this node.
    fn set_presence(&self, users: Vec<UserId>, online: bool);
    /// Which of `users` are online on any node.
    async fn online(&self, users: &[UserId]) -> anyhow::Result<Vec<bool>>;
    /// Whether other nodes may be listening. A lone node skips building envelopes altogether.
    fn has_peers(&self) -> bool;
    /// Whether the bus can currently reach its peers (for `/readyz`).
    async fn ready(&self) -> bool;
}

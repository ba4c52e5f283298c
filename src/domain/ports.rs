//! What the domain needs from the layers above it, as traits it is handed at start-up: where
//! events go, who is online, and how out-of-band notices reach people. The delivery layer
//! implements them.

use async_trait::async_trait;

use crate::model::{Event, ResetNotice, UserId};

/// Where the domain publishes events.
pub trait Events: Send + Sync {
    /// Hands an event over for delivery. Never blocks and never fails: events are wake-ups,
    /// the database holds the truth.
    fn publish(&self, event: Event);
}

/// Who is online, on any node.
#[async_trait]
pub trait Presence: Send + Sync {
    /// For each of `users`, whether they have a live session anywhere.
    async fn online(&self, users: &[UserId]) -> anyhow::Result<Vec<bool>>;
}

/// Where notices that must reach a person out of band go (a reset secret never goes to the
/// caller).
pub trait Notices: Send + Sync {
    /// Delivers a password-reset notice in the background.
    fn send_reset(&self, notice: ResetNotice);
}

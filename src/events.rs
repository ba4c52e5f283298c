//! Domain events: what the domain tells the gateway to do to live sessions.
//!
//! The domain publishes; the gateway (the connection registry, and in a cluster the bus) turns
//! each event into pushes and closes. The domain never sees a socket.

use std::sync::Arc;

/// Why sessions are being ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    /// The token logged out.
    Logout,
    /// The password was reset; every token of the user is void.
    PasswordReset,
}

impl KickReason {
    /// The wire name, sent in `session.kicked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KickReason::Logout => "logout",
            KickReason::PasswordReset => "password_reset",
        }
    }
}

/// Something live sessions must learn about.
#[derive(Debug, Clone)]
pub enum Event {
    /// End the user's sessions: only those opened with token `jti`, or all of them.
    Kick {
        /// The user.
        user_id: i64,
        /// The one token whose sessions end; `None` ends every session.
        jti: Option<Arc<str>>,
        /// Why.
        reason: KickReason,
    },
}

/// Where the domain publishes events.
pub trait Events: Send + Sync {
    /// Hands an event to the gateway. Never blocks and never fails: events are wake-ups, the
    /// database holds the truth.
    fn publish(&self, event: Event);
}

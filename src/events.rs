//! Domain events: what the domain tells the gateway to do to live sessions.
//!
//! The domain publishes; the [`gateway`](crate::gateway) turns each event into pushes and closes
//! for the sessions concerned. The domain never sees a socket or a wire type.

use std::sync::Arc;

use crate::group::{Group, MemberAction};

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

/// A change to a group's membership, as members are told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    /// What happened.
    pub action: MemberAction,
    /// To whom.
    pub user_ids: Vec<i64>,
    /// Who did it.
    pub by: i64,
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
    /// A group's info or membership changed.
    GroupChanged {
        /// The group as it is now.
        group: Group,
        /// The membership change, if any.
        change: Option<MemberChange>,
        /// Who is told: every member, and those the change removed.
        recipients: Vec<i64>,
    },
    /// A group was dismissed.
    GroupDismissed {
        /// The group.
        group_id: i64,
        /// The owner who dismissed it.
        by: i64,
        /// Its members at the time.
        recipients: Vec<i64>,
    },
}

/// Where the domain publishes events.
pub trait Events: Send + Sync {
    /// Hands an event to the gateway. Never blocks and never fails: events are wake-ups, the
    /// database holds the truth.
    fn publish(&self, event: Event);
}

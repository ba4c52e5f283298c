//! Events: what the domain tells live sessions about, as plain data. The domain publishes
//! them; the delivery layer turns each into pushes and closes for the sessions concerned.

use std::sync::Arc;

use super::change::Change;
use super::conversation::ConversationView;
use super::group::{Group, MemberAction};
use super::ids::{ConversationId, GroupId, MessageId, SessionId, UserId};
use super::message::Message;

/// Why sessions are being ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    /// The token logged out.
    Logout,
    /// The password was reset; every token of the user is void.
    PasswordReset,
    /// The token expired during the session.
    TokenExpired,
    /// The user opened more sessions than allowed; this was the oldest.
    SessionLimit,
}

impl KickReason {
    /// The wire name, sent in `session.kicked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KickReason::Logout => "logout",
            KickReason::PasswordReset => "password_reset",
            KickReason::TokenExpired => "token_expired",
            KickReason::SessionLimit => "session_limit",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [KickReason::Logout, KickReason::PasswordReset, KickReason::TokenExpired, KickReason::SessionLimit]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A change to a group's membership, as members are told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    /// What happened.
    pub action: MemberAction,
    /// To whom.
    pub user_ids: Vec<UserId>,
    /// Who did it.
    pub by: UserId,
}

/// Who a conversation's push goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// These users' sessions.
    Users(Vec<UserId>),
    /// The sessions of every member of a group, but those of `except`. The gateway knows
    /// which members are online where, so a group push costs no member list.
    Group {
        /// The group.
        group_id: GroupId,
        /// A member left out (the typist of a typing push).
        except: Option<UserId>,
    },
}

/// Something live sessions must learn about.
#[derive(Debug, Clone)]
pub enum Event {
    /// End the user's sessions: only those opened with token `jti`, or all of them.
    Kick {
        /// The user.
        user_id: UserId,
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
        recipients: Vec<UserId>,
        /// Users who became members (the creator and first members, at creation).
        joined: Vec<UserId>,
        /// Users who stopped being members.
        left: Vec<UserId>,
    },
    /// A group was dismissed.
    GroupDismissed {
        /// The group.
        group_id: GroupId,
        /// The owner who dismissed it.
        by: UserId,
        /// Its members at the time.
        recipients: Vec<UserId>,
    },
    /// A message was stored.
    MessageNew {
        /// The message.
        message: Message,
        /// Every participant, the sender included (for their other devices).
        audience: Audience,
        /// The session that sent it, which has its reply already.
        skip_session: Option<SessionId>,
    },
    /// A message was changed: recalled, deleted, edited, or reacted to.
    MessageChanged {
        /// The change, with its log position.
        change: Change,
        /// Every participant.
        audience: Audience,
        /// The session that made it, which has its reply already.
        skip_session: Option<SessionId>,
    },
    /// A user deleted a message for themselves: their other sessions hear of it.
    MessageHidden {
        /// Who.
        user_id: UserId,
        /// The conversation.
        conversation_id: ConversationId,
        /// The message.
        message_id: MessageId,
        /// Its seq.
        seq: i64,
        /// The session that did it, which has its reply already.
        skip_session: Option<SessionId>,
    },
    /// Someone is typing. Ephemeral: never stored.
    Typing {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who types.
        user_id: UserId,
        /// The other participants.
        audience: Audience,
    },
    /// A one-to-one read receipt.
    MessageRead {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who read.
        user_id: UserId,
        /// Up to which seq.
        seq: i64,
        /// The peer.
        recipients: Vec<UserId>,
    },
    /// A one-to-one delivered receipt: the peer's devices have received up to `seq`.
    MessageDelivered {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who received.
        user_id: UserId,
        /// Up to which seq.
        seq: i64,
        /// The peer.
        recipients: Vec<UserId>,
    },
    /// How many have read each of a sender's group messages, as it is now (debounced).
    ReadCounts {
        /// The conversation.
        conversation_id: ConversationId,
        /// The sender's messages that were read, ascending by seq.
        counts: Vec<ReadCount>,
        /// The sender.
        recipient: UserId,
    },
    /// A participant's own view of a conversation changed (read, pin, mute, draft, hide).
    ConversationUpdated {
        /// Whose view.
        user_id: UserId,
        /// The view (boxed: it is by far the largest event).
        view: Box<ConversationView>,
        /// The session that made the change, which has its reply already.
        skip_session: Option<SessionId>,
    },
}

/// How many members (the sender aside) have read a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCount {
    /// The message.
    pub message_id: MessageId,
    /// Its seq.
    pub seq: i64,
    /// Readers.
    pub read: i64,
}

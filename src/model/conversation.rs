//! Conversations as each participant sees them.

use super::group::Group;
use super::ids::{ConversationId, GroupId, MessageId};
use super::message::{ChatType, Message};
use super::user::User;

/// One participant's state of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationState {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// One-to-one or group.
    pub chat_type: ChatType,
    /// The group, for group conversations.
    pub group_id: Option<GroupId>,
    /// Newest seq.
    pub last_seq: i64,
    /// Newest position of its log.
    pub last_pos: i64,
    /// Newest message.
    pub last_message_id: Option<MessageId>,
    /// Time of the latest activity.
    pub updated_at: i64,
    /// This participant's read position.
    pub read_seq: i64,
    /// Listed first.
    pub pinned: bool,
    /// Left out of the unread total.
    pub muted: bool,
    /// Hidden from the list until the next message.
    pub hidden: bool,
    /// Unsent text.
    pub draft: String,
    /// Unread messages (see the module invariants).
    pub unread: i64,
    /// Of those, the ones that mention this participant (listed, or `@all`); counted even when
    /// the conversation is muted.
    pub mention_unread: i64,
    /// One-to-one: how far the peer has read.
    pub peer_read_seq: Option<i64>,
    /// One-to-one: how far the peer's devices have received.
    pub peer_delivered_seq: Option<i64>,
}

/// Who or what a conversation is with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// The other user of a one-to-one conversation (public view).
    User(User),
    /// The group.
    Group(Group),
}

/// A conversation as its participant sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationView {
    /// State.
    pub state: ConversationState,
    /// The peer; `None` if it no longer exists.
    pub peer: Option<Peer>,
    /// The newest message.
    pub last_message: Option<Message>,
}

/// A change to a participant's state; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ConversationPatch {
    /// Pin.
    pub pinned: Option<bool>,
    /// Mute.
    pub muted: Option<bool>,
    /// Draft.
    pub draft: Option<String>,
    /// Hide.
    pub hidden: Option<bool>,
}

//! Messages: what is stored, and what a sender asks to store.

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::change::Change;
use super::ids::{ConversationId, FileId, GroupId, MessageId, SessionId, UserId};

/// One-to-one or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatType {
    /// Two users.
    Single,
    /// A group.
    Group,
}

impl ChatType {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatType::Single => "single",
            ChatType::Group => "group",
        }
    }

    /// Parses the stored and wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "single" => Some(ChatType::Single),
            "group" => Some(ChatType::Group),
            _ => None,
        }
    }
}

/// Whom a message is addressed to: the peer user of a one-to-one message, or the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// The other user.
    User(UserId),
    /// The group.
    Group(GroupId),
}

impl Recipient {
    /// The chat type the recipient implies.
    pub fn chat_type(self) -> ChatType {
        match self {
            Recipient::User(_) => ChatType::Single,
            Recipient::Group(_) => ChatType::Group,
        }
    }

    /// The recipient of `chat_type` with the raw id `id`, as stored.
    pub fn of(chat_type: ChatType, id: i64) -> Recipient {
        match chat_type {
            ChatType::Single => Recipient::User(UserId(id)),
            ChatType::Group => Recipient::Group(GroupId(id)),
        }
    }

    /// The raw id, as stored.
    pub fn raw(self) -> i64 {
        match self {
            Recipient::User(UserId(id)) | Recipient::Group(GroupId(id)) => id,
        }
    }
}

/// On the wire a recipient is its id, a string; `chatType` says which kind.
impl Serialize for Recipient {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.raw())
    }
}

/// A message's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// As sent.
    Normal,
    /// Recalled: it keeps its place, its content is gone.
    Recalled,
    /// Deleted for everyone: a tombstone in its place, with no content.
    Deleted,
    /// Deleted for the user reading only: a tombstone in its place for them, with no content.
    /// Never stored as a status: others see the message as it is.
    Hidden,
}

impl Status {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Normal => "normal",
            Status::Recalled => "recalled",
            Status::Deleted => "deleted",
            Status::Hidden => "hidden",
        }
    }

    /// Parses a stored name (`hidden` is never stored).
    pub fn parse(s: &str) -> Option<Status> {
        [Status::Normal, Status::Recalled, Status::Deleted].into_iter().find(|status| status.as_str() == s)
    }
}

/// Whom a group message mentions, as its counters count it: everyone (`@all`, which only the
/// owner and admins may send) or listed users, never its sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mentions {
    /// Nobody.
    #[default]
    None,
    /// Every member but the sender.
    All,
    /// These users, without repeats.
    Users(Vec<UserId>),
}

/// What a reply shows of the message it quotes, as that message is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The quoted message.
    pub message_id: MessageId,
    /// Its sender.
    pub from: UserId,
    /// Its kind.
    pub kind: String,
    /// Its status: a recalled or deleted message shows no text.
    pub status: Status,
    /// The start of its text (at most [`QUOTE_CHARS`] characters), empty for other kinds and
    /// for a message no longer normal.
    pub snippet: String,
}

/// Characters of a quoted text a reply carries.
pub const QUOTE_CHARS: usize = 100;

impl Quote {
    /// What a reply shows of `message`.
    pub fn of(message: &Message) -> Quote {
        let snippet = match (message.status, message.content.get("text").and_then(Value::as_str)) {
            (Status::Normal, Some(text)) => text.chars().take(QUOTE_CHARS).collect(),
            _ => String::new(),
        };
        Quote {
            message_id: message.id,
            from: message.from,
            kind: message.kind.clone(),
            status: message.status,
            snippet,
        }
    }
}

/// One reaction key's count on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// The key: an emoji or a short name.
    pub key: String,
    /// How many users reacted with it.
    pub count: i64,
    /// Whether the user reading reacted with it.
    pub mine: bool,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Unique id.
    pub id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Position in the conversation, from 1, gapless.
    pub seq: i64,
    /// The sender (for system messages, who caused the event).
    pub from: UserId,
    /// The peer user, or the group.
    pub to: Recipient,
    /// `text`, `image`, ..., or `system`.
    pub kind: String,
    /// The kind's content; `{}` once recalled or deleted.
    pub content: Value,
    /// The sender's idempotency key.
    pub client_msg_id: String,
    /// When it was stored.
    pub sent_at: i64,
    /// Normal, recalled or deleted.
    pub status: Status,
    /// Its entry's position in the conversation's log.
    pub pos: i64,
    /// When its sender last edited it.
    pub edited_at: Option<i64>,
    /// Its reactions, by key, for the user reading (empty where not looked up: pushes of new
    /// messages, which have none).
    pub reactions: Vec<Reaction>,
    /// For a reply (`replyTo` in its content), the quoted message as it is now.
    pub quote: Option<Quote>,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Sender.
    pub from: UserId,
    /// Peer or group.
    pub to: Recipient,
    /// Kind.
    pub kind: String,
    /// Validated content.
    pub content: Value,
    /// Idempotency key.
    pub client_msg_id: String,
    /// Send time.
    pub sent_at: i64,
    /// For a one-to-one message, both users: their conversation state is created on the first
    /// message. Empty for groups, whose members' state exists from the group's creation.
    pub participants: Vec<UserId>,
    /// The session that sent it, if any: its reply carries the message, so no push goes to it.
    pub session: Option<SessionId>,
    /// The uploaded files its content references: stored with it, they become readable by
    /// every participant of the conversation.
    pub files: Vec<FileId>,
    /// For a reply, the quoted message as it was checked.
    pub quote: Option<Quote>,
    /// Whom it mentions (group messages only).
    pub mentions: Mentions,
}

/// What a client asks to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The peer user or the group.
    pub to: Recipient,
    /// Kind.
    pub kind: String,
    /// Content, to be validated.
    pub content: Value,
    /// Idempotency key.
    pub client_msg_id: String,
    /// Forward this message instead: its kind and content, marked as forwarded.
    pub forward_from: Option<MessageId>,
}

/// A conversation's news, as sync returns them.
#[derive(Debug, Clone)]
pub struct SyncedConversation {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Messages after the known seq (or made after the known position), ascending.
    pub messages: Vec<Message>,
    /// Changes to messages after the known position, ascending by position; none when the
    /// client synced by seq.
    pub changes: Vec<Change>,
    /// The position the client holds once it has applied this answer; none when it synced
    /// by seq.
    pub pos: Option<i64>,
    /// The position the answer starts after: a client holding less than it lacks what came
    /// before (a conversation it joined, or one it never held) and fetches it by position.
    pub from: Option<i64>,
    /// The log was compacted past the known position: the client must drop what it holds of
    /// this conversation and fetch its window again.
    pub reset: bool,
    /// More follows: the next sync, or history, brings it.
    pub has_more: bool,
}

/// Where a device stands in all of its conversation logs at once: a stamp of the log clock
/// (every entry stamped at or below it is held) and, inside a sync round that is paged, how far
/// the round got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncCursor {
    /// Every entry stamped at or below this is held.
    Done(i64),
    /// Within a round: every entry stamped at or below `since` is held, and of the
    /// conversations that moved past it, those before `conversation` are held up to `upto` or
    /// later, and `conversation` itself up to position `pos`.
    Within {
        /// Where the round started.
        since: i64,
        /// The clock when the round started: where it ends.
        upto: i64,
        /// The conversation the round goes on with.
        conversation: ConversationId,
        /// The position held of it.
        pos: i64,
    },
}

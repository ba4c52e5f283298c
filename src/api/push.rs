//! Pushes: server-initiated frames, each encoded at most once per format however many
//! sessions receive it, and the push of every event the domain publishes.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conversations::{ConversationInfo, ConversationReply};
use super::frame::{Format, Payload, encode};
use super::groups::GroupReply;
use super::messages::MessageReply;
use super::views::ChangeInfo;
use crate::model::{
    Change, Changed, ConversationId, ConversationView, Group, GroupId, KickReason, MemberChange, Message, MessageId,
    ReadCount, UserId,
};

/// A server push, encoded lazily and at most once per format.
#[derive(Debug)]
pub struct Push {
    event: Cow<'static, str>,
    data: Value,
    json: OnceLock<Payload>,
    msgpack: OnceLock<Payload>,
}

#[derive(Serialize)]
struct PushFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'a str,
    data: &'a Value,
}

impl Push {
    /// A push of `event` with `data`, to be shared among recipients.
    pub fn new(event: &'static str, data: impl Serialize) -> Push {
        Push {
            event: Cow::Borrowed(event),
            data: serde_json::to_value(data).unwrap_or(Value::Null),
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
        }
    }

    /// A push read back from its JSON frame (as another node sent it); the JSON encoding is
    /// the frame itself, so only MessagePack sessions cost an encode.
    pub fn from_json_frame(frame: String) -> Option<Push> {
        #[derive(Deserialize)]
        struct Frame {
            event: String,
            data: Value,
        }
        let parsed: Frame = serde_json::from_str(&frame).ok()?;
        let json = OnceLock::new();
        let _ = json.set(Payload::Text(frame.into()));
        Some(Push { event: Cow::Owned(parsed.event), data: parsed.data, json, msgpack: OnceLock::new() })
    }

    /// The JSON frame's text.
    pub fn json_text(&self) -> String {
        match self.payload(Format::Json) {
            Payload::Text(text) => text.as_str().to_owned(),
            Payload::Binary(_) => String::new(),
        }
    }

    /// The push in `format`, encoded on first use.
    pub fn payload(&self, format: Format) -> Payload {
        let cell = match format {
            Format::Json => &self.json,
            Format::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| encode(&PushFrame { kind: "push", event: &self.event, data: &self.data }, format)).clone()
    }
}

/// Event names of pushes.
pub mod event {
    /// The session was ended by logout or password reset; `{reason}`.
    pub const SESSION_KICKED: &str = "session.kicked";
    /// The session is authenticated; `{userId, node, pingInterval, pongTimeout}`.
    pub const SESSION_READY: &str = "session.ready";
    /// A group's info or counts changed; `{group}`.
    pub const GROUP_UPDATED: &str = "group.updated";
    /// A group's membership changed; `{groupId, action, userIds, by}`.
    pub const GROUP_MEMBER: &str = "group.member";
    /// A group was dismissed; `{groupId, by}`.
    pub const GROUP_DISMISSED: &str = "group.dismissed";
    /// A new message; `{message}`.
    pub const MESSAGE_NEW: &str = "message.new";
    /// A message was recalled; a change (`{type, conversationId, messageId, seq, pos, by, at}`).
    pub const MESSAGE_RECALLED: &str = "message.recalled";
    /// A message was deleted for everyone; a change.
    pub const MESSAGE_DELETED: &str = "message.deleted";
    /// A message was edited; a change with `content`.
    pub const MESSAGE_EDITED: &str = "message.edited";
    /// A reaction was added or removed; a change with `key` and `count`.
    pub const MESSAGE_REACTION: &str = "message.reaction";
    /// The user deleted a message for themselves on another device; `{conversationId, messageId, seq}`.
    pub const MESSAGE_HIDDEN: &str = "message.hidden";
    /// The peer read up to a seq; `{conversationId, userId, seq}`.
    pub const MESSAGE_READ: &str = "message.read";
    /// The peer's devices received up to a seq; `{conversationId, userId, seq}`.
    pub const MESSAGE_DELIVERED: &str = "message.delivered";
    /// How many have read a sender's group messages; `{conversationId, counts: [{messageId, seq, read}]}`.
    pub const MESSAGE_READ_COUNT: &str = "message.readCount";
    /// Someone is typing; `{conversationId, userId}`.
    pub const TYPING: &str = "typing";
    /// The caller's own view of a conversation changed; `{conversation}`.
    pub const CONVERSATION_UPDATED: &str = "conversation.updated";
}

/// `session.ready`: sent when a session authenticates.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionReady {
    /// The user the session is bound to.
    pub user_id: UserId,
    /// The node holding the session.
    pub node: String,
    /// The server pings this often, in ms.
    pub ping_interval: u64,
    /// A socket silent this long after a ping is closed, in ms.
    pub pong_timeout: u64,
}

#[derive(Debug, Serialize)]
struct Kicked {
    reason: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupMember<'a> {
    group_id: GroupId,
    action: &'static str,
    user_ids: &'a [UserId],
    by: UserId,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupDismissed {
    group_id: GroupId,
    by: UserId,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Hidden {
    conversation_id: ConversationId,
    message_id: MessageId,
    seq: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadReceipt {
    conversation_id: ConversationId,
    user_id: UserId,
    seq: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadCounts {
    conversation_id: ConversationId,
    counts: Vec<ReadCountInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadCountInfo {
    message_id: MessageId,
    seq: i64,
    read: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TypingInfo {
    conversation_id: ConversationId,
    user_id: UserId,
}

/// `session.ready`.
pub fn session_ready(ready: SessionReady) -> Push {
    Push::new(event::SESSION_READY, ready)
}

/// `session.kicked {reason}`.
pub fn kicked(reason: KickReason) -> Push {
    Push::new(event::SESSION_KICKED, Kicked { reason: reason.as_str() })
}

/// `group.updated {group}`.
pub fn group_updated(group: Group) -> Push {
    Push::new(event::GROUP_UPDATED, GroupReply { group: group.into() })
}

/// `group.member {groupId, action, userIds, by}`.
pub fn group_member(group_id: GroupId, change: &MemberChange) -> Push {
    let member = GroupMember { group_id, action: change.action.as_str(), user_ids: &change.user_ids, by: change.by };
    Push::new(event::GROUP_MEMBER, member)
}

/// `group.dismissed {groupId, by}`.
pub fn group_dismissed(group_id: GroupId, by: UserId) -> Push {
    Push::new(event::GROUP_DISMISSED, GroupDismissed { group_id, by })
}

/// `message.new {message}`.
pub fn message_new(message: Message) -> Push {
    Push::new(event::MESSAGE_NEW, MessageReply { message: message.into() })
}

/// A change to a message, by the event its kind is pushed as.
pub fn message_changed(change: Change) -> Push {
    let name = match change.what {
        Changed::Recalled => event::MESSAGE_RECALLED,
        Changed::Deleted => event::MESSAGE_DELETED,
        Changed::Edited { .. } => event::MESSAGE_EDITED,
        Changed::Reaction { .. } => event::MESSAGE_REACTION,
    };
    Push::new(name, ChangeInfo::from(change))
}

/// `message.hidden {conversationId, messageId, seq}`.
pub fn message_hidden(conversation_id: ConversationId, message_id: MessageId, seq: i64) -> Push {
    Push::new(event::MESSAGE_HIDDEN, Hidden { conversation_id, message_id, seq })
}

/// `message.read {conversationId, userId, seq}`.
pub fn message_read(conversation_id: ConversationId, user_id: UserId, seq: i64) -> Push {
    Push::new(event::MESSAGE_READ, ReadReceipt { conversation_id, user_id, seq })
}

/// `message.delivered {conversationId, userId, seq}`.
pub fn message_delivered(conversation_id: ConversationId, user_id: UserId, seq: i64) -> Push {
    Push::new(event::MESSAGE_DELIVERED, ReadReceipt { conversation_id, user_id, seq })
}

/// `message.readCount {conversationId, counts: [{messageId, seq, read}]}`.
pub fn message_read_count(conversation_id: ConversationId, counts: Vec<ReadCount>) -> Push {
    let counts =
        counts.into_iter().map(|c| ReadCountInfo { message_id: c.message_id, seq: c.seq, read: c.read }).collect();
    Push::new(event::MESSAGE_READ_COUNT, ReadCounts { conversation_id, counts })
}

/// `typing {conversationId, userId}`.
pub fn typing(conversation_id: ConversationId, user_id: UserId) -> Push {
    Push::new(event::TYPING, TypingInfo { conversation_id, user_id })
}

/// `conversation.updated {conversation}`.
pub fn conversation_updated(view: ConversationView) -> Push {
    Push::new(event::CONVERSATION_UPDATED, ConversationReply { conversation: ConversationInfo::from(view) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_is_encoded_once_per_format() {
        let push = kicked(KickReason::Logout);
        let a = push.payload(Format::Json);
        let b = push.payload(Format::Json);
        assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
    }
}

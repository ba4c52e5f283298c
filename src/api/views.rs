//! Wire views of model values that several route families reply with.

use serde::Serialize;
use serde_json::Value;

use crate::model::{ConversationId, Message, MessageId, Recipient, UserId};

/// `message` on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageInfo {
    /// Message id.
    pub id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Position in the conversation.
    pub seq: i64,
    /// `single` or `group`.
    pub chat_type: &'static str,
    /// Sender.
    pub from: UserId,
    /// Peer user or group.
    pub to: Recipient,
    /// Kind.
    pub kind: String,
    /// Content.
    pub content: Value,
    /// The sender's idempotency key.
    pub client_msg_id: String,
    /// Stored at.
    pub sent_at: i64,
    /// `normal` or `recalled`.
    pub status: &'static str,
}

impl From<Message> for MessageInfo {
    fn from(m: Message) -> Self {
        MessageInfo {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            chat_type: m.to.chat_type().as_str(),
            from: m.from,
            to: m.to,
            kind: m.kind,
            content: m.content,
            client_msg_id: m.client_msg_id,
            sent_at: m.sent_at,
            status: m.status.as_str(),
        }
    }
}

//! Wire views of model values that several route families reply with.

use serde::Serialize;
use serde_json::Value;

use crate::model::{Change, Changed, ConversationId, Message, MessageId, Recipient, UserId};

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
    /// `normal`, `recalled` or `deleted`.
    pub status: &'static str,
    /// Its entry's position in the conversation's log.
    pub pos: i64,
    /// When its sender last edited it, or null.
    pub edited_at: Option<i64>,
    /// Its reactions by key, with whether the reader reacted.
    pub reactions: Vec<ReactionInfo>,
    /// A reply's quoted message as it is now, or null.
    pub quote: Option<QuoteInfo>,
}

/// `{messageId, from, kind, status, snippet}`: what a reply shows of the message it quotes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteInfo {
    /// The quoted message.
    pub message_id: MessageId,
    /// Its sender.
    pub from: UserId,
    /// Its kind.
    pub kind: String,
    /// `normal`, `recalled`, `deleted`.
    pub status: &'static str,
    /// The start of its text; empty for other kinds and once recalled or deleted.
    pub snippet: String,
}

/// A change to a message, as pushed and as sync lists it: `{type, conversationId, messageId,
/// seq, pos, by, at}`, with `content` for an edit and `key` and `count` for a reaction.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeInfo {
    /// `recall`, `delete`, `edit`, `react` or `unreact`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The message changed.
    pub message_id: MessageId,
    /// Its seq.
    pub seq: i64,
    /// The change's position in the conversation's log.
    pub pos: i64,
    /// Who made it.
    pub by: UserId,
    /// When.
    pub at: i64,
    /// An edit's new content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// A reaction's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// How many have reacted with that key since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

impl From<Change> for ChangeInfo {
    fn from(c: Change) -> Self {
        let kind = c.what.as_str();
        let (content, key, count) = match c.what {
            Changed::Recalled | Changed::Deleted => (None, None, None),
            Changed::Edited { content } => (Some(content), None, None),
            Changed::Reaction { key, count, .. } => (None, Some(key), Some(count)),
        };
        ChangeInfo {
            kind,
            conversation_id: c.conversation_id,
            message_id: c.message_id,
            seq: c.seq,
            pos: c.pos,
            by: c.by,
            at: c.at,
            content,
            key,
            count,
        }
    }
}

/// One `{key, count, mine}` of a message's reactions.
#[derive(Debug, Serialize)]
pub struct ReactionInfo {
    /// The key.
    pub key: String,
    /// How many reacted with it.
    pub count: i64,
    /// Whether the reader did.
    pub mine: bool,
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
            pos: m.pos,
            edited_at: m.edited_at,
            reactions: m
                .reactions
                .into_iter()
                .map(|r| ReactionInfo { key: r.key, count: r.count, mine: r.mine })
                .collect(),
            quote: m.quote.map(|q| QuoteInfo {
                message_id: q.message_id,
                from: q.from,
                kind: q.kind,
                status: q.status.as_str(),
                snippet: q.snippet,
            }),
        }
    }
}

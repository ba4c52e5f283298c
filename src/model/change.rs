//! Changes to messages, as the conversation log records them.
//!
//! Every change to a conversation's messages (a new message included) takes the next position
//! of the conversation's log. A logged change carries the state it left, not a delta: an edit
//! its new content, a reaction its key's new count. So applying a change twice, or applying it
//! to a message fetched after it, leaves the same state.

use serde_json::Value;

use super::ids::{ConversationId, MessageId, SessionId, UserId};
use super::message::Message;

/// What a participant asks to change in a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Alteration {
    /// Recall it: it keeps its place, with no content.
    Recall,
    /// Delete it for everyone: it keeps its place as a tombstone.
    Delete,
    /// Replace its content.
    Edit {
        /// The new content, validated.
        content: Value,
    },
    /// Add the caller's reaction with this key.
    React {
        /// The reaction's key.
        key: String,
    },
    /// Remove the caller's reaction with this key.
    Unreact {
        /// The reaction's key.
        key: String,
    },
}

impl Alteration {
    /// The stored name of the change.
    pub fn as_str(&self) -> &'static str {
        match self {
            Alteration::Recall => "recall",
            Alteration::Delete => "delete",
            Alteration::Edit { .. } => "edit",
            Alteration::React { .. } => "react",
            Alteration::Unreact { .. } => "unreact",
        }
    }
}

/// A change to store.
#[derive(Debug, Clone)]
pub struct NewChange {
    /// The message's conversation.
    pub conversation_id: ConversationId,
    /// The message.
    pub message_id: MessageId,
    /// Who changes it.
    pub by: UserId,
    /// What changes.
    pub what: Alteration,
    /// When.
    pub at: i64,
    /// The session that asked, which has its reply: no push goes to it.
    pub session: Option<SessionId>,
}

/// The state a logged change left.
#[derive(Debug, Clone, PartialEq)]
pub enum Changed {
    /// Recalled.
    Recalled,
    /// Deleted for everyone.
    Deleted,
    /// Edited: its content since.
    Edited {
        /// The content.
        content: Value,
    },
    /// A reaction added or removed.
    Reaction {
        /// Its key.
        key: String,
        /// How many have reacted with it now.
        count: i64,
        /// Added (or removed).
        added: bool,
    },
}

impl Changed {
    /// The stored and wire name of the change.
    pub fn as_str(&self) -> &'static str {
        match self {
            Changed::Recalled => "recall",
            Changed::Deleted => "delete",
            Changed::Edited { .. } => "edit",
            Changed::Reaction { added: true, .. } => "react",
            Changed::Reaction { added: false, .. } => "unreact",
        }
    }
}

/// A change as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its position in the conversation's log.
    pub pos: i64,
    /// The message changed.
    pub message_id: MessageId,
    /// That message's seq.
    pub seq: i64,
    /// Who changed it.
    pub by: UserId,
    /// When.
    pub at: i64,
    /// The state it left.
    pub what: Changed,
}

/// One entry of a conversation's log: a message made (as it is now), or a change to one.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEntry {
    /// A new message; its position is its own.
    Message(Message),
    /// A change to a message.
    Change(Change),
}

impl LogEntry {
    /// Its position in the conversation's log.
    pub fn pos(&self) -> i64 {
        match self {
            LogEntry::Message(message) => message.pos,
            LogEntry::Change(change) => change.pos,
        }
    }
}

/// The most distinct reaction keys one message may have.
pub const MAX_REACTION_KEYS: i64 = 20;

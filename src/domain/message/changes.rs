//! Changes to messages: recall, delete for everyone, edit and reactions. Each is checked here
//! (who may, within which window), then logged by the message writer at the next position of
//! the conversation's log, in the caller's turn, and pushed with that position.

use serde_json::Value;

use super::super::content::validate_content;
use super::{Messages, page_limit, split_page};
use crate::error::{Error, Result};
use crate::model::{
    Alteration, Change, ConversationRef, Identity, Message, MessageId, NewChange, Status, Turn, UserId, now_ms,
};

/// Longest reaction key, in bytes: an emoji sequence (flags and families are long) or a name.
const MAX_REACTION_KEY: usize = 32;

/// Largest page of who reacted with one key: user ids are short, so a full page is a few KiB.
const MAX_REACTORS: i64 = 500;

/// A change made: the message as it is now, and the change as logged (none when the message
/// was in that state already and nothing was logged).
pub struct Made {
    /// The message now, with its reactions as the caller sees them.
    pub message: Message,
    /// The change, with its position in the conversation's log.
    pub change: Option<Change>,
}

/// An earlier version of an edited message.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// 1 for the content as sent, then one more per edit.
    pub version: i64,
    /// Its content.
    pub content: Value,
    /// When an edit replaced it.
    pub replaced_at: i64,
}

impl Messages {
    /// Recalls a message: its sender within the recall window, or a group's owner or admin.
    pub async fn recall(&self, who: &Identity, message_id: MessageId, turn: &Turn) -> Result<Made> {
        let (message, conversation) = self.changeable(who, message_id).await?;
        let own = message.from == who.user_id;
        // The sender's retry whose answer was lost may come after the window: what it asked is
        // done. (A moderator's is answered so by the log: nothing changes.)
        if own && message.status == Status::Recalled {
            return self.unchanged(who, message).await;
        }
        let own_in_time = own && now_ms() - message.sent_at <= self.limits.recall_window_ms;
        if !own_in_time && !self.moderates(who, conversation, &message).await? {
            return Err(Error::Forbidden);
        }
        self.change(who, message, Alteration::Recall, turn).await
    }

    /// Deletes a message for everyone: its sender at any time, or a group's owner or admin. It
    /// keeps its place as a `deleted` tombstone.
    pub async fn delete(&self, who: &Identity, message_id: MessageId, turn: &Turn) -> Result<Made> {
        let (message, conversation) = self.changeable(who, message_id).await?;
        if message.from != who.user_id && !self.moderates(who, conversation, &message).await? {
            return Err(Error::Forbidden);
        }
        self.change(who, message, Alteration::Delete, turn).await
    }

    /// Edits a text message: its sender only, within the edit window, while it is neither
    /// recalled nor deleted. The content is validated as a new one would be.
    pub async fn edit(&self, who: &Identity, message_id: MessageId, content: Value, turn: &Turn) -> Result<Made> {
        let (message, _) = self.changeable(who, message_id).await?;
        if message.from != who.user_id {
            return Err(Error::Forbidden);
        }
        if message.kind != "text" {
            return Err(Error::validation("messageId", "only text messages can be edited"));
        }
        if message.status != Status::Normal || now_ms() - message.sent_at > self.limits.edit_window_ms {
            return Err(Error::NotEditable);
        }
        let mut content = validate_content("text", content, self.limits.max_text)?;
        // A reply keeps quoting what it quoted, and a forward says where it came from. Mentions
        // were counted when it was sent, so an edit keeps them as they were: no one is pinged
        // by an edit, and no count moves.
        if let Some(object) = content.as_object_mut() {
            object.remove("mentions");
            for kept in ["replyTo", "forwardedFrom", "mentions"] {
                if let Some(value) = message.content.get(kept) {
                    object.insert(kept.into(), value.clone());
                }
            }
        }
        self.change(who, message, Alteration::Edit { content }, turn).await
    }

    /// Adds (or with `add` false removes) the caller's reaction `key` to a message. Both are
    /// idempotent: a second add changes nothing and logs nothing.
    pub async fn react(
        &self,
        who: &Identity,
        message_id: MessageId,
        key: String,
        add: bool,
        turn: &Turn,
    ) -> Result<Made> {
        if key.is_empty() || key.len() > MAX_REACTION_KEY || key.chars().any(char::is_control) {
            let rule = format!("a reaction is 1 to {MAX_REACTION_KEY} bytes, with no control characters");
            return Err(Error::validation("key", rule));
        }
        let (message, _) = self.changeable(who, message_id).await?;
        let what = if add { Alteration::React { key } } else { Alteration::Unreact { key } };
        self.change(who, message, what, turn).await
    }

    /// Who reacted to a message with `key`, for its participants: a page ascending by id after
    /// `after`, and whether more follow.
    pub async fn reactors(
        &self,
        who: &Identity,
        message_id: MessageId,
        key: &str,
        after: Option<UserId>,
        limit: Option<i64>,
    ) -> Result<(Vec<UserId>, bool)> {
        let limit = page_limit(limit, MAX_REACTORS, MAX_REACTORS)?;
        self.participants_message(who, message_id).await?;
        Ok(split_page(self.store.reactors(message_id, key, after.unwrap_or(UserId(0)), limit + 1).await?, limit))
    }

    /// A message's earlier versions, oldest first, for its participants.
    pub async fn versions(&self, who: &Identity, message_id: MessageId) -> Result<Vec<Version>> {
        self.participants_message(who, message_id).await?;
        let versions = self.store.versions(message_id).await?;
        Ok(versions
            .into_iter()
            .map(|(version, content, replaced_at)| Version { version, content, replaced_at })
            .collect())
    }

    /// A message the caller takes part in, which is not a system message.
    async fn changeable(&self, who: &Identity, message_id: MessageId) -> Result<(Message, ConversationRef)> {
        let (message, conversation) = self.participants_message(who, message_id).await?;
        if message.kind == "system" {
            return Err(Error::Forbidden);
        }
        Ok((message, conversation))
    }

    /// Whether the caller moderates `message`: a group's owner, or an admin over a member's.
    async fn moderates(&self, who: &Identity, conversation: ConversationRef, message: &Message) -> Result<bool> {
        match conversation {
            ConversationRef::Group(group_id) => self.outranks(group_id, who.user_id, message.from).await,
            ConversationRef::Single(..) => Ok(false),
        }
    }

    /// Logs the change in `turn` and returns the message as it is after it.
    async fn change(&self, who: &Identity, message: Message, what: Alteration, turn: &Turn) -> Result<Made> {
        let change = NewChange {
            conversation_id: message.conversation_id.clone(),
            message_id: message.id,
            by: who.user_id,
            what,
            at: now_ms(),
            session: who.session,
        };
        let change = self.store.change_message(change, turn).await?;
        let mut message = self.store.message(message.id).await?.ok_or(Error::NotFound)?;
        self.as_seen_by(who, std::iter::once(&mut message)).await?;
        Ok(Made { message, change })
    }

    /// The answer to a change the message already shows.
    async fn unchanged(&self, who: &Identity, mut message: Message) -> Result<Made> {
        self.as_seen_by(who, std::iter::once(&mut message)).await?;
        Ok(Made { message, change: None })
    }
}

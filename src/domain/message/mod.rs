//! The message domain: sending every kind of message, history, sync, recall, typing, readers.
//!
//! Invariants:
//! - **Durable before acknowledged.** `send` returns only after the message is committed.
//! - **Idempotent.** One sender's `clientMsgId` names one message forever: a retry gets the
//!   first message back, unchanged, and stores nothing.
//! - **Ordered.** `seq` is allocated in the transaction that inserts the message, by an
//!   update of the conversation row that serializes concurrent senders: 1, 2, 3... with no
//!   gaps, since a failed insert rolls its seq back.
//! - **Only participants** may send to, read, sync, recall in or type in a conversation. A
//!   conversation the caller is not in is `not_found`, exactly like one that does not exist.
//! - Content is a JSON object validated per kind ([`super::content`]) before anything is
//!   stored.

use std::collections::HashMap;
use std::sync::Arc;

use rand::RngCore;
use serde_json::Value;

mod changes;
mod cursor;
mod sync;

pub use changes::{Made, Version};
pub use cursor::CursorSync;
pub use sync::Known;

use super::budget::{Budget, REPLY_BUDGET};
use super::content::{referenced_files, validate_content};
use super::ports::Events;
use crate::error::{Error, Result};
use crate::model::turn::FREE;
use crate::model::{
    Audience, ConversationId, ConversationRef, Event, GroupId, Identity, Mentions, Message, MessageId, NewMessage,
    Outgoing, Quote, Recipient, Role, Standing, Status, Turn, UserId, now_ms,
};
use crate::store::{Committed, Store};

/// Largest page of history.
const MAX_PAGE: i64 = 100;

/// Limits of message content.
#[derive(Debug, Clone, Copy)]
pub struct ContentLimits {
    /// Longest text, in characters.
    pub max_text: usize,
    /// How long after sending its sender may recall a message, in ms.
    pub recall_window_ms: i64,
    /// How long after sending its sender may edit a text message, in ms.
    pub edit_window_ms: i64,
}

/// The message domain's operations.
pub struct Messages {
    store: Arc<dyn Store>,
    events: Arc<dyn Events>,
    limits: ContentLimits,
}

impl Messages {
    /// Wires the message domain. New messages are announced by the store's commit hook, in
    /// commit order.
    pub fn new(store: Arc<dyn Store>, events: Arc<dyn Events>, limits: ContentLimits) -> Self {
        let announce = events.clone();
        store.set_commit_hook(Box::new(move |committed| match committed {
            Committed::Message(new, message) => {
                let audience = match message.to {
                    Recipient::Group(group_id) => Audience::Group { group_id, except: None },
                    Recipient::User(_) => Audience::Users(new.participants.clone()),
                };
                announce.publish(Event::MessageNew { message: message.clone(), audience, skip_session: new.session });
            }
            Committed::Change(new, change) => {
                if let Some(conversation) = change.conversation_id.parse() {
                    let audience = audience(conversation, None);
                    announce.publish(Event::MessageChanged {
                        change: change.clone(),
                        audience,
                        skip_session: new.session,
                    });
                }
            }
        }));
        Messages { store, events, limits }
    }

    /// Sends a message; returns it once it is durable. It takes its seq in `turn`.
    pub async fn send(&self, who: &Identity, mut out: Outgoing, turn: &Turn) -> Result<Message> {
        let client_msg_id = checked_client_id(std::mem::take(&mut out.client_msg_id))?;
        let new = match self.prepare(who, out, client_msg_id.clone()).await {
            Ok(new) => new,
            // A retry of a message that was stored gets it back, even if it could not be sent
            // now (its sender muted or gone from the group since): the first send counted.
            Err(err) => {
                return match self.store.message_by_client_id(who.user_id, &client_msg_id).await? {
                    Some(first) => Ok(first),
                    None => Err(err),
                };
            }
        };
        Ok(self.store.append_message(new, turn).await?.0)
    }

    /// Checks that `who` may send `out` and returns the message to store.
    async fn prepare(&self, who: &Identity, mut out: Outgoing, client_msg_id: String) -> Result<NewMessage> {
        let mut marker = None;
        if let Some(source) = out.forward_from {
            (out.kind, out.content, marker) = self.forwarded(who, source).await?;
        }
        let mut content = validate_content(&out.kind, out.content, self.limits.max_text)?;
        if let (Some(object), Some(marker)) = (content.as_object_mut(), marker) {
            object.insert("forwardedFrom".into(), marker);
        }
        // Sharing a file grants its reading to the conversation: only a file the sender may
        // read can be shared, or knowing an id would be enough to read it.
        let files = referenced_files(&content)?;
        if !files.is_empty() && self.store.readable_files(who.user_id, &files).await?.len() < files.len() {
            return Err(Error::validation("url", "a /file/ URL must name a file you can read"));
        }
        let (conversation_id, participants, mentions) = match out.to {
            Recipient::User(peer) => {
                if peer == who.user_id {
                    return Err(Error::validation("to", "a one-to-one message needs another user"));
                }
                (ConversationId::single(who.user_id, peer), vec![who.user_id, peer], Mentions::None)
            }
            Recipient::Group(group_id) => {
                let (group, standing) =
                    self.store.group_with_standing(group_id, who.user_id).await?.ok_or(Error::NotFound)?;
                let standing = standing.ok_or(Error::Forbidden)?;
                if is_muted(standing, group.muted_until, now_ms()) {
                    return Err(Error::Muted);
                }
                let mentions = mentioned(&content, who.user_id, standing.role)?;
                (ConversationId::group(group.id), Vec::new(), mentions)
            }
        };
        let quote = self.quoted(&content, &conversation_id).await?;
        Ok(NewMessage {
            conversation_id,
            from: who.user_id,
            to: out.to,
            kind: out.kind,
            content,
            client_msg_id,
            sent_at: now_ms(),
            participants,
            session: who.session,
            files,
            quote,
            mentions,
        })
    }

    /// What forwarding `source` sends: its kind and content (without what it replied to), and
    /// the `forwardedFrom` marker, which names the first message of a chain of forwards. The
    /// caller must take part in its conversation; its files are then readable by the caller,
    /// and so may be shared on.
    async fn forwarded(&self, who: &Identity, source: MessageId) -> Result<(String, Value, Option<Value>)> {
        let message = self.store.message(source).await?.ok_or(Error::NotFound)?;
        self.participant(who, &message.conversation_id).await?;
        if message.status != Status::Normal || message.kind == "system" {
            return Err(Error::validation("forwardFrom", "only a message as sent can be forwarded"));
        }
        if self.store.hidden_among(who.user_id, &[source]).await?.contains(&source) {
            return Err(Error::NotFound);
        }
        let mut content = message.content;
        // A forward quotes no reply and mentions no one: only its sender's own words do.
        let earlier = content.as_object_mut().and_then(|o| {
            o.remove("replyTo");
            o.remove("mentions");
            o.remove("forwardedFrom")
        });
        let marker = earlier.unwrap_or_else(
            || serde_json::json!({"messageId": message.id.to_string(), "from": message.from.to_string()}),
        );
        Ok((message.kind, content, Some(marker)))
    }

    /// What a reply quotes: its `replyTo` must name a message of the same conversation.
    async fn quoted(&self, content: &Value, conversation_id: &ConversationId) -> Result<Option<Quote>> {
        let Some(reply_to) = content.get("replyTo").and_then(Value::as_str) else { return Ok(None) };
        let found = match reply_to.parse::<MessageId>() {
            Ok(id) => self.store.message(id).await?,
            Err(_) => None,
        };
        match found {
            Some(target) if target.conversation_id == *conversation_id => Ok(Some(Quote::of(&target))),
            _ => Err(Error::validation("replyTo", "replyTo must name a message of this conversation")),
        }
    }

    /// Appends a server-made `system` message to a group's conversation and pushes it.
    pub async fn append_system(&self, group_id: GroupId, by: UserId, content: Value) -> Result<Message> {
        let mut key = [0u8; 12];
        rand::rng().fill_bytes(&mut key);
        let new = NewMessage {
            conversation_id: ConversationId::group(group_id),
            from: by,
            to: Recipient::Group(group_id),
            kind: "system".into(),
            content,
            client_msg_id: format!("system:{}", hex::encode(key)),
            sent_at: now_ms(),
            participants: Vec::new(),
            session: None,
            files: Vec::new(),
            quote: None,
            mentions: Mentions::None,
        };
        Ok(self.store.append_message(new, &FREE).await?.0)
    }

    /// Checks the caller takes part in `conversation_id`.
    pub(super) async fn participant(
        &self,
        who: &Identity,
        conversation_id: &ConversationId,
    ) -> Result<ConversationRef> {
        let parsed = conversation_id.parse().ok_or(Error::NotFound)?;
        if self.store.is_participant(conversation_id, who.user_id).await? { Ok(parsed) } else { Err(Error::NotFound) }
    }

    /// A message of a conversation the caller takes part in (`NotFound` to anyone else), and
    /// that conversation.
    pub(super) async fn participants_message(
        &self,
        who: &Identity,
        message_id: MessageId,
    ) -> Result<(Message, ConversationRef)> {
        let message = self.store.message(message_id).await?.ok_or(Error::NotFound)?;
        let conversation = self.participant(who, &message.conversation_id).await?;
        Ok((message, conversation))
    }

    /// A page of history, ascending by seq: before `before_seq` (the newest by default) or after
    /// `after_seq`.
    pub async fn history(
        &self,
        who: &Identity,
        conversation_id: &ConversationId,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: Option<i64>,
    ) -> Result<(Vec<Message>, bool)> {
        let limit = page_limit(limit, 50, MAX_PAGE)?;
        if before_seq.is_some() && after_seq.is_some() {
            return Err(Error::validation("afterSeq", "give beforeSeq or afterSeq, not both"));
        }
        self.participant(who, conversation_id).await?;
        let (mut page, has_more) = match after_seq {
            Some(after) => {
                let (mut page, mut has_more) =
                    split_page(self.store.messages_after(conversation_id, after, limit + 1).await?, limit);
                // Within the byte budget too, keeping the first ones going forward.
                let fit = Budget::new(REPLY_BUDGET).fitting(&page);
                has_more |= fit < page.len();
                page.truncate(fit);
                (page, has_more)
            }
            None => {
                let page =
                    self.store.messages_before(conversation_id, before_seq.unwrap_or(i64::MAX), limit + 1).await?;
                newest_fitting(page, limit)
            }
        };
        self.as_seen_by(who, page.iter_mut()).await?;
        Ok((page, has_more))
    }

    /// A page of the messages that mention the caller in a conversation, by id or `@all`,
    /// ascending by seq: the newest before `before_seq`, so that a client can jump to each.
    pub async fn mentions(
        &self,
        who: &Identity,
        conversation_id: &ConversationId,
        before_seq: Option<i64>,
        limit: Option<i64>,
    ) -> Result<(Vec<Message>, bool)> {
        let limit = page_limit(limit, 50, MAX_PAGE)?;
        self.participant(who, conversation_id).await?;
        let before = before_seq.unwrap_or(i64::MAX);
        let page = self.store.mentions_before(conversation_id, who.user_id, before, limit + 1).await?;
        let (mut page, has_more) = newest_fitting(page, limit);
        self.as_seen_by(who, page.iter_mut()).await?;
        Ok((page, has_more))
    }

    /// Whether `moderator` may recall `sender`'s messages in `group_id`: the owner anyone's, an
    /// admin only those of members (or of people no longer in the group), never the owner's
    /// or another admin's.
    pub(super) async fn outranks(&self, group_id: GroupId, moderator: UserId, sender: UserId) -> Result<bool> {
        let Some(standing) = self.store.standing(group_id, moderator).await? else { return Ok(false) };
        Ok(match standing.role {
            Role::Owner => true,
            Role::Admin => {
                let sender_role = self.store.standing(group_id, sender).await?.map(|s| s.role);
                matches!(sender_role, None | Some(Role::Member))
            }
            Role::Member => false,
        })
    }

    /// Tells the other participants the caller is typing. Nothing is stored.
    pub async fn typing(&self, who: &Identity, conversation_id: &ConversationId) -> Result<()> {
        let conversation = self.participant(who, conversation_id).await?;
        self.events.publish(Event::Typing {
            conversation_id: conversation_id.clone(),
            user_id: who.user_id,
            audience: audience(conversation, Some(who.user_id)),
        });
        Ok(())
    }

    /// Makes `messages` what `who` sees: their reactions, those `who` deleted for themselves as
    /// `hidden` tombstones, and what replies quote as it is now. Three queries for them all.
    pub(super) async fn as_seen_by<'m>(
        &self,
        who: &Identity,
        messages: impl Iterator<Item = &'m mut Message>,
    ) -> Result<()> {
        let mut by_id: HashMap<MessageId, &'m mut Message> = messages.map(|m| (m.id, m)).collect();
        let ids: Vec<MessageId> = by_id.keys().copied().collect();
        let quoted: Vec<MessageId> = by_id
            .values()
            .filter_map(|m| m.content.get("replyTo").and_then(Value::as_str).and_then(|id| id.parse().ok()))
            .collect();
        let quotes: HashMap<MessageId, Quote> =
            self.store.messages_by_ids(&quoted).await?.iter().map(|q| (q.id, Quote::of(q))).collect();
        for message in by_id.values_mut() {
            let target = message.content.get("replyTo").and_then(Value::as_str).and_then(|id| id.parse().ok());
            message.quote = target.and_then(|id: MessageId| quotes.get(&id).cloned());
        }
        for (id, reaction) in self.store.reactions(&ids, who.user_id).await? {
            if let Some(message) = by_id.get_mut(&id) {
                message.reactions.push(reaction);
            }
        }
        for id in self.store.hidden_among(who.user_id, &ids).await? {
            if let Some(message) = by_id.get_mut(&id) {
                message.status = Status::Hidden;
                message.content = Value::Object(Default::default());
                message.reactions.clear();
                message.quote = None;
            }
        }
        Ok(())
    }

    /// Deletes a message for the caller only: their devices show it as `hidden`, and it no
    /// longer counts as their unread. Others see it as it is.
    pub async fn hide(&self, who: &Identity, message_id: MessageId) -> Result<Message> {
        let (message, _) = self.participants_message(who, message_id).await?;
        if self.store.hide_message(who.user_id, &message, now_ms()).await? {
            self.events.publish(Event::MessageHidden {
                user_id: who.user_id,
                conversation_id: message.conversation_id.clone(),
                message_id,
                seq: message.seq,
                skip_session: who.session,
            });
        }
        let mut message = message;
        self.as_seen_by(who, std::iter::once(&mut message)).await?;
        Ok(message)
    }

    /// Who (other than its sender) has read a message, or with `read` false who has not: how
    /// many of each, and a page of one of them, ascending by id after `after`.
    pub async fn readers(
        &self,
        who: &Identity,
        message_id: MessageId,
        read: bool,
        after: Option<UserId>,
        limit: Option<i64>,
    ) -> Result<Readers> {
        let limit = page_limit(limit, MAX_READERS, MAX_READERS)?;
        let (message, _) = self.participants_message(who, message_id).await?;
        let (conversation, seq, sender) = (&message.conversation_id, message.seq, message.from);
        let (read_count, unread_count) = self.store.reader_counts(conversation, seq, sender).await?;
        let after = after.unwrap_or(UserId(0));
        let (page, has_more) =
            split_page(self.store.readers(conversation, seq, sender, read, after, limit + 1).await?, limit);
        Ok(Readers { read: read_count, unread: unread_count, page, has_more })
    }
}

/// Largest page of readers: user ids are short, so a full page is a few KiB.
const MAX_READERS: i64 = 500;

/// Who has read a message, and who has not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readers {
    /// How many have (its sender aside).
    pub read: i64,
    /// How many have not.
    pub unread: i64,
    /// The page asked for, of one or the other.
    pub page: Vec<UserId>,
    /// More follow the page.
    pub has_more: bool,
}

/// Who hears of an event in `conversation`, but `except`.
pub(super) fn audience(conversation: ConversationRef, except: Option<UserId>) -> Audience {
    match conversation {
        ConversationRef::Single(a, b) => Audience::Users([a, b].into_iter().filter(|u| Some(*u) != except).collect()),
        ConversationRef::Group(group_id) => Audience::Group { group_id, except },
    }
}

/// A page size asked for, `default` when not, refused outside 1 to `max`.
/// A page asked for with one row more than `limit`: the first `limit` rows, and whether more follow.
fn split_page<T>(mut rows: Vec<T>, limit: i64) -> (Vec<T>, bool) {
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    (rows, has_more)
}

fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(Error::validation("limit", format!("limit must be between 1 and {max}")));
    }
    Ok(limit)
}

/// The newest `limit` of `descending` (which may hold one more, to tell whether more are left)
/// that fit a reply's byte budget, ascending; and whether older ones were left out.
fn newest_fitting(mut descending: Vec<Message>, limit: i64) -> (Vec<Message>, bool) {
    let mut has_more = descending.len() as i64 > limit;
    descending.truncate(limit as usize);
    let fit = Budget::new(REPLY_BUDGET).fitting(&descending);
    has_more |= fit < descending.len();
    descending.truncate(fit);
    descending.reverse();
    (descending, has_more)
}

/// Whom validated `content` sent by `from`, whose role is `role`, mentions: `@all` only from the
/// owner and admins; the sender is never among those listed.
fn mentioned(content: &Value, from: UserId, role: Role) -> Result<Mentions> {
    Ok(match content.get("mentions") {
        Some(Value::String(all)) if all == "all" => {
            if role == Role::Member {
                return Err(Error::validation("mentions", "only the group's owner and admins may mention all"));
            }
            Mentions::All
        }
        Some(Value::Array(ids)) => {
            let mut users: Vec<UserId> = Vec::with_capacity(ids.len());
            for id in ids.iter().filter_map(|v| v.as_str()?.parse().ok()).map(UserId) {
                if id != from && !users.contains(&id) {
                    users.push(id);
                }
            }
            if users.is_empty() { Mentions::None } else { Mentions::Users(users) }
        }
        _ => Mentions::None,
    })
}

/// Whether a member with `standing` may not send now.
fn is_muted(standing: Standing, group_muted_until: i64, now: i64) -> bool {
    standing.muted_until > now || (group_muted_until > now && standing.role == Role::Member)
}

fn checked_client_id(id: String) -> Result<String> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::validation("clientMsgId", "clientMsgId must be 1 to 64 printable ASCII characters"));
    }
    Ok(id)
}

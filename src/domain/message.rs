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
//! - Content is a JSON object validated per kind (types, ranges, lengths, URL schemes) before
//!   anything is stored; unknown fields are refused.

use std::collections::HashMap;
use std::sync::Arc;

use rand::RngCore;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::events::{Audience, Event, Events};
use crate::group::{Role, Standing};
use crate::now_ms;
use crate::store::Store;
use crate::user::{Identity, checked_url};

/// Largest page of history.
const MAX_PAGE: i64 = 100;
/// Messages per conversation in one sync answer.
const SYNC_PAGE: i64 = 100;
/// Conversations in one sync answer.
const SYNC_CONVERSATIONS: usize = 100;

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

/// A message's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// As sent.
    Normal,
    /// Recalled: it keeps its place, its content is gone.
    Recalled,
}

impl Status {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Normal => "normal",
            Status::Recalled => "recalled",
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Unique id.
    pub id: i64,
    /// Its conversation.
    pub conversation_id: String,
    /// Position in the conversation, from 1, gapless.
    pub seq: i64,
    /// One-to-one or group.
    pub chat_type: ChatType,
    /// The sender (for system messages, who caused the event).
    pub from: i64,
    /// The peer user, or the group.
    pub to: i64,
    /// `text`, `image`, ..., or `system`.
    pub kind: String,
    /// The kind's content; `{}` once recalled.
    pub content: Value,
    /// The sender's idempotency key.
    pub client_msg_id: String,
    /// When it was stored.
    pub sent_at: i64,
    /// Normal or recalled.
    pub status: Status,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Its conversation.
    pub conversation_id: String,
    /// One-to-one or group.
    pub chat_type: ChatType,
    /// Sender.
    pub from: i64,
    /// Peer or group.
    pub to: i64,
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
    pub participants: Vec<i64>,
    /// The session that sent it, if any: its reply carries the message, so no push goes to it.
    pub session: Option<u64>,
}

/// What a client asks to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// One-to-one or group.
    pub chat_type: ChatType,
    /// The peer user or the group.
    pub to: i64,
    /// Kind.
    pub kind: String,
    /// Content, to be validated.
    pub content: Value,
    /// Idempotency key.
    pub client_msg_id: String,
}

/// The id of the one-to-one conversation of two users.
pub fn single_conversation(a: i64, b: i64) -> String {
    format!("s:{}:{}", a.min(b), a.max(b))
}

/// The id of a group's conversation.
pub fn group_conversation(group_id: i64) -> String {
    format!("g:{group_id}")
}

/// What a conversation id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationRef {
    /// A one-to-one conversation of two users.
    Single(i64, i64),
    /// A group's conversation.
    Group(i64),
}

impl ConversationRef {
    /// Parses a conversation id; malformed ids name nothing.
    pub fn parse(id: &str) -> Option<Self> {
        if let Some(rest) = id.strip_prefix("s:") {
            let (a, b) = rest.split_once(':')?;
            let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
            (a > 0 && a < b).then_some(ConversationRef::Single(a, b))
        } else {
            let g: i64 = id.strip_prefix("g:")?.parse().ok()?;
            (g > 0).then_some(ConversationRef::Group(g))
        }
    }

    /// For a one-to-one conversation, the participant who is not `me`.
    pub fn peer_of(self, me: i64) -> Option<i64> {
        match self {
            ConversationRef::Single(a, b) if a == me => Some(b),
            ConversationRef::Single(a, b) if b == me => Some(a),
            _ => None,
        }
    }
}

/// Limits of message content.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest text, in characters.
    pub max_text: usize,
    /// How long after sending its sender may recall a message, in ms.
    pub recall_window_ms: i64,
}

/// The message domain's operations.
pub struct Messages {
    store: Arc<dyn Store>,
    events: Arc<dyn Events>,
    limits: Limits,
}

/// A conversation's new messages, as sync returns them.
pub struct SyncedConversation {
    /// The conversation.
    pub conversation_id: String,
    /// Messages after the known seq, ascending.
    pub messages: Vec<Message>,
    /// More messages follow; page with history.
    pub has_more: bool,
}

impl Messages {
    /// Wires the message domain. New messages are announced by the store's commit hook, in
    /// commit order.
    pub fn new(store: Arc<dyn Store>, events: Arc<dyn Events>, limits: Limits) -> Self {
        let announce = events.clone();
        store.set_commit_hook(Box::new(move |new, message| {
            let audience = match ConversationRef::parse(&message.conversation_id) {
                Some(ConversationRef::Group(group_id)) => Audience::Group { group_id, except: None },
                _ => Audience::Users(new.participants.clone()),
            };
            announce.publish(Event::MessageNew { message: message.clone(), audience, skip_session: new.session });
        }));
        Messages { store, events, limits }
    }

    /// Sends a message; returns it once it is durable.
    pub async fn send(&self, who: &Identity, mut out: Outgoing) -> Result<Message> {
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
        Ok(self.store.append_message(new).await?.0)
    }

    /// Checks that `who` may send `out` and returns the message to store.
    async fn prepare(&self, who: &Identity, out: Outgoing, client_msg_id: String) -> Result<NewMessage> {
        let content = validate_content(&out.kind, out.content, self.limits.max_text)?;
        let (conversation_id, participants) = match out.chat_type {
            ChatType::Single => {
                if out.to == who.user_id {
                    return Err(Error::validation("to", "a one-to-one message needs another user"));
                }
                (single_conversation(who.user_id, out.to), vec![who.user_id, out.to])
            }
            ChatType::Group => {
                let (group, standing) =
                    self.store.group_with_standing(out.to, who.user_id).await?.ok_or(Error::NotFound)?;
                let standing = standing.ok_or(Error::Forbidden)?;
                if is_muted(standing, group.muted_until, now_ms()) {
                    return Err(Error::Muted);
                }
                (group_conversation(group.id), Vec::new())
            }
        };
        if let Some(reply_to) = content.get("replyTo").and_then(Value::as_str) {
            let target = reply_to.parse::<i64>().ok();
            let found = match target {
                Some(id) => self.store.message(id).await?,
                None => None,
            };
            if found.is_none_or(|m| m.conversation_id != conversation_id) {
                return Err(Error::validation("replyTo", "replyTo must name a message of this conversation"));
            }
        }
        Ok(NewMessage {
            conversation_id,
            chat_type: out.chat_type,
            from: who.user_id,
            to: out.to,
            kind: out.kind,
            content,
            client_msg_id,
            sent_at: now_ms(),
            participants,
            session: who.session,
        })
    }

    /// Appends a server-made `system` message to a group's conversation and pushes it.
    pub async fn append_system(&self, group_id: i64, by: i64, content: Value) -> Result<Message> {
        let mut key = [0u8; 12];
        rand::rng().fill_bytes(&mut key);
        let new = NewMessage {
            conversation_id: group_conversation(group_id),
            chat_type: ChatType::Group,
            from: by,
            to: group_id,
            kind: "system".into(),
            content,
            client_msg_id: format!("system:{}", hex::encode(key)),
            sent_at: now_ms(),
            participants: Vec::new(),
            session: None,
        };
        Ok(self.store.append_message(new).await?.0)
    }

    /// Checks the caller takes part in `conversation_id`.
    async fn participant(&self, who: &Identity, conversation_id: &str) -> Result<ConversationRef> {
        let parsed = ConversationRef::parse(conversation_id).ok_or(Error::NotFound)?;
        if self.store.is_participant(conversation_id, who.user_id).await? { Ok(parsed) } else { Err(Error::NotFound) }
    }

    /// A page of history, ascending by seq: before `before_seq` (the newest by default) or after
    /// `after_seq`.
    pub async fn history(
        &self,
        who: &Identity,
        conversation_id: &str,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: Option<i64>,
    ) -> Result<(Vec<Message>, bool)> {
        let limit = limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::validation("limit", format!("limit must be between 1 and {MAX_PAGE}")));
        }
        if before_seq.is_some() && after_seq.is_some() {
            return Err(Error::validation("afterSeq", "give beforeSeq or afterSeq, not both"));
        }
        self.participant(who, conversation_id).await?;
        let mut page = match after_seq {
            Some(after) => self.store.messages_after(conversation_id, after, limit + 1).await?,
            None => {
                let mut page =
                    self.store.messages_before(conversation_id, before_seq.unwrap_or(i64::MAX), limit + 1).await?;
                page.reverse();
                page
            }
        };
        let has_more = page.len() as i64 > limit;
        if has_more {
            if after_seq.is_some() {
                page.truncate(limit as usize);
            } else {
                page.remove(0);
            }
        }
        Ok((page, has_more))
    }

    /// Everything the caller has not seen: for each of their conversations past the seq they
    /// know (0 when not listed), the messages after it. At most [`SYNC_CONVERSATIONS`]
    /// conversations per call, most recent first, each with at most [`SYNC_PAGE`] messages and
    /// `has_more` when more follow; the second value says whether other conversations wait too.
    pub async fn sync(&self, who: &Identity, known: &HashMap<String, i64>) -> Result<(Vec<SyncedConversation>, bool)> {
        let mut behind: Vec<(String, i64, i64)> = self
            .store
            .last_seqs(who.user_id)
            .await?
            .into_iter()
            .filter_map(|(id, last_seq, updated_at)| {
                let seen = known.get(&id).copied().unwrap_or(0);
                (last_seq > seen).then_some((id, seen, updated_at))
            })
            .collect();
        behind.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        let more_conversations = behind.len() > SYNC_CONVERSATIONS;
        behind.truncate(SYNC_CONVERSATIONS);
        let mut out = Vec::with_capacity(behind.len());
        for (conversation_id, seen, _) in behind {
            let mut messages = self.store.messages_after(&conversation_id, seen, SYNC_PAGE + 1).await?;
            let has_more = messages.len() as i64 > SYNC_PAGE;
            messages.truncate(SYNC_PAGE as usize);
            out.push(SyncedConversation { conversation_id, messages, has_more });
        }
        Ok((out, more_conversations))
    }

    /// Recalls a message: its sender within the recall window, or a group's owner or admin.
    pub async fn recall(&self, who: &Identity, message_id: i64) -> Result<Message> {
        let message = self.store.message(message_id).await?.ok_or(Error::NotFound)?;
        let conversation = self.participant(who, &message.conversation_id).await?;
        if message.kind == "system" {
            return Err(Error::Forbidden);
        }
        let own_in_time = message.from == who.user_id && now_ms() - message.sent_at <= self.limits.recall_window_ms;
        let moderator = match conversation {
            ConversationRef::Group(group_id) => {
                self.store.standing(group_id, who.user_id).await?.is_some_and(|s| s.role >= Role::Admin)
            }
            ConversationRef::Single(..) => false,
        };
        if !own_in_time && !moderator {
            return Err(Error::Forbidden);
        }
        if message.status == Status::Recalled {
            return Ok(message);
        }
        let recalled = self.store.recall(message_id).await?;
        self.events.publish(Event::MessageRecalled {
            conversation_id: recalled.conversation_id.clone(),
            message_id,
            seq: recalled.seq,
            audience: audience(conversation, None),
        });
        Ok(recalled)
    }

    /// Tells the other participants the caller is typing. Nothing is stored.
    pub async fn typing(&self, who: &Identity, conversation_id: &str) -> Result<()> {
        let conversation = self.participant(who, conversation_id).await?;
        self.events.publish(Event::Typing {
            conversation_id: conversation_id.to_owned(),
            user_id: who.user_id,
            audience: audience(conversation, Some(who.user_id)),
        });
        Ok(())
    }

    /// Who (other than its sender) has read a message.
    pub async fn readers(&self, who: &Identity, message_id: i64) -> Result<Vec<i64>> {
        let message = self.store.message(message_id).await?.ok_or(Error::NotFound)?;
        self.participant(who, &message.conversation_id).await?;
        self.store.readers(&message.conversation_id, message.seq, message.from).await
    }
}

/// Who hears of an event in `conversation`, but `except`.
fn audience(conversation: ConversationRef, except: Option<i64>) -> Audience {
    match conversation {
        ConversationRef::Single(a, b) => Audience::Users([a, b].into_iter().filter(|u| Some(*u) != except).collect()),
        ConversationRef::Group(group_id) => Audience::Group { group_id, except },
    }
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

/// Reads one content object, field by field, refusing fields it was not asked about.
struct Fields {
    map: Map<String, Value>,
    out: Map<String, Value>,
}

impl Fields {
    fn new(content: Value) -> Result<Self> {
        match content {
            Value::Object(map) => Ok(Fields { map, out: Map::new() }),
            _ => Err(Error::validation("content", "content must be an object")),
        }
    }

    fn take(&mut self, name: &'static str, required: bool) -> Result<Option<Value>> {
        match self.map.remove(name) {
            None | Some(Value::Null) if required => Err(Error::validation(name, format!("{name} is required"))),
            None | Some(Value::Null) => Ok(None),
            Some(v) => Ok(Some(v)),
        }
    }

    fn text(&mut self, name: &'static str, required: bool, max_chars: usize, allow_newlines: bool) -> Result<()> {
        let Some(value) = self.take(name, required)? else { return Ok(()) };
        let Value::String(s) = value else {
            return Err(Error::validation(name, format!("{name} must be a string")));
        };
        let bad_char = s.chars().any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\t' | '\r')));
        let len = s.chars().count();
        if bad_char || len > max_chars || (required && s.trim().is_empty()) {
            return Err(Error::validation(
                name,
                format!("{name} must be 1 to {max_chars} characters without control characters"),
            ));
        }
        self.out.insert(name.into(), Value::String(s));
        Ok(())
    }

    fn url(&mut self, name: &'static str, required: bool) -> Result<()> {
        let Some(value) = self.take(name, required)? else { return Ok(()) };
        let Value::String(s) = value else {
            return Err(Error::validation(name, format!("{name} must be a URL")));
        };
        let url = checked_url(name, s)?;
        if url.is_empty() {
            return Err(Error::validation(name, format!("{name} must be an http(s) URL or a /file/ path")));
        }
        self.out.insert(name.into(), Value::String(url));
        Ok(())
    }

    fn int(&mut self, name: &'static str, required: bool, max: i64) -> Result<()> {
        let Some(value) = self.take(name, required)? else { return Ok(()) };
        match value.as_i64() {
            Some(n) if (0..=max).contains(&n) => {
                self.out.insert(name.into(), Value::from(n));
                Ok(())
            }
            _ => Err(Error::validation(name, format!("{name} must be an integer from 0 to {max}"))),
        }
    }

    fn number(&mut self, name: &'static str, required: bool, min: f64, max: f64) -> Result<()> {
        let Some(value) = self.take(name, required)? else { return Ok(()) };
        match value.as_f64() {
            Some(n) if n.is_finite() && (min..=max).contains(&n) => {
                self.out.insert(name.into(), value);
                Ok(())
            }
            _ => Err(Error::validation(name, format!("{name} must be a number from {min} to {max}"))),
        }
    }

    fn mime(&mut self, prefix: Option<&str>) -> Result<()> {
        let Some(value) = self.take("mime", true)? else { return Ok(()) };
        let ok = value.as_str().is_some_and(|m| {
            m.len() <= 127
                && m.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
                && m.bytes().all(|c| c.is_ascii_graphic())
                && prefix.is_none_or(|p| m.starts_with(p))
        });
        if !ok {
            return Err(Error::validation("mime", "mime must be a media type such as image/png"));
        }
        self.out.insert("mime".into(), value);
        Ok(())
    }

    fn finish(self) -> Result<Value> {
        if let Some(unknown) = self.map.keys().next() {
            return Err(Error::validation(unknown.clone(), format!("unknown content field {unknown}")));
        }
        Ok(Value::Object(self.out))
    }
}

/// Largest size a media message may claim: 100 GiB.
const MAX_SIZE: i64 = 100 << 30;
/// Largest width or height.
const MAX_DIMENSION: i64 = 100_000;
/// Longest duration, in seconds: a day.
const MAX_DURATION: f64 = 86_400.0;

/// Validates `content` for `kind` and returns it normalized (ids as strings).
pub fn validate_content(kind: &str, content: Value, max_text: usize) -> Result<Value> {
    let mut f = Fields::new(content)?;
    match kind {
        "text" => {
            f.text("text", true, max_text, true)?;
            if let Some(mentions) = f.take("mentions", false)? {
                let normalized = match mentions {
                    Value::String(s) if s == "all" => Value::String(s),
                    Value::Array(ids) if ids.len() <= 100 => {
                        let ids: Option<Vec<Value>> = ids
                            .iter()
                            .map(|v| match v {
                                Value::String(s) => s.parse::<i64>().ok(),
                                other => other.as_i64(),
                            })
                            .map(|id| id.filter(|i| *i > 0).map(|i| Value::String(i.to_string())))
                            .collect();
                        Value::Array(
                            ids.ok_or_else(|| Error::validation("mentions", "mentions must be user ids or \"all\""))?,
                        )
                    }
                    _ => return Err(Error::validation("mentions", "mentions must be up to 100 user ids or \"all\"")),
                };
                f.out.insert("mentions".into(), normalized);
            }
            if let Some(reply_to) = f.take("replyTo", false)? {
                let id = match &reply_to {
                    Value::String(s) => s.parse::<i64>().ok(),
                    other => other.as_i64(),
                };
                let id = id
                    .filter(|i| *i > 0)
                    .ok_or_else(|| Error::validation("replyTo", "replyTo must be a message id"))?;
                f.out.insert("replyTo".into(), Value::String(id.to_string()));
            }
        }
        "image" => {
            f.url("url", true)?;
            f.int("width", true, MAX_DIMENSION)?;
            f.int("height", true, MAX_DIMENSION)?;
            f.int("size", true, MAX_SIZE)?;
            f.mime(Some("image/"))?;
            f.url("thumbnail", false)?;
        }
        "video" => {
            f.url("url", true)?;
            f.number("duration", true, 0.0, MAX_DURATION)?;
            f.int("width", true, MAX_DIMENSION)?;
            f.int("height", true, MAX_DIMENSION)?;
            f.int("size", true, MAX_SIZE)?;
            f.mime(Some("video/"))?;
            f.url("cover", false)?;
        }
        "audio" => {
            f.url("url", true)?;
            f.number("duration", true, 0.0, MAX_DURATION)?;
            f.int("size", true, MAX_SIZE)?;
            f.mime(Some("audio/"))?;
        }
        "file" => {
            f.url("url", true)?;
            f.text("name", true, 255, false)?;
            f.int("size", true, MAX_SIZE)?;
            f.mime(None)?;
        }
        "location" => {
            f.number("latitude", true, -90.0, 90.0)?;
            f.number("longitude", true, -180.0, 180.0)?;
            f.text("title", false, 200, false)?;
        }
        "custom" => {
            let data = f.take("data", true)?.unwrap_or(Value::Null);
            f.out.insert("data".into(), data);
        }
        _ => return Err(Error::validation("kind", "kind must be text, image, video, audio, file, location or custom")),
    }
    f.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reason(kind: &str, content: Value) -> String {
        validate_content(kind, content, 5000).unwrap_err().reason().into_owned()
    }

    #[test]
    fn content_is_validated_per_kind() {
        assert_eq!(
            validate_content("text", json!({"text": "hi\nthere", "mentions": [5, "6"], "replyTo": 9}), 5000).unwrap(),
            json!({"text": "hi\nthere", "mentions": ["5", "6"], "replyTo": "9"})
        );
        assert_eq!(reason("text", json!({"text": ""})), "validation.text");
        assert_eq!(reason("text", json!({"text": "x".repeat(5001)})), "validation.text");
        assert_eq!(reason("text", json!({"text": "a\u{0}b"})), "validation.text");
        assert_eq!(reason("text", json!({"text": "hi", "mentions": "some"})), "validation.mentions");
        assert_eq!(reason("text", json!({"text": "hi", "bold": true})), "validation.bold");
        assert_eq!(
            reason(
                "image",
                json!({"url": "javascript:alert(1)", "width": 1, "height": 1, "size": 1, "mime": "image/png"})
            ),
            "validation.url"
        );
        assert_eq!(
            reason("image", json!({"url": "/file/ab", "width": -1, "height": 1, "size": 1, "mime": "image/png"})),
            "validation.width"
        );
        assert_eq!(
            reason("image", json!({"url": "/file/ab", "width": 1, "height": 1, "size": 1, "mime": "text/html"})),
            "validation.mime"
        );
        assert_eq!(
            reason(
                "video",
                json!({"url": "https://v.test/a.mp4", "duration": -2, "width": 1, "height": 1, "size": 1, "mime": "video/mp4"})
            ),
            "validation.duration"
        );
        assert_eq!(reason("location", json!({"latitude": 91, "longitude": 0})), "validation.latitude");
        assert_eq!(reason("file", json!({"url": "/file/ab", "size": 1, "mime": "application/pdf"})), "validation.name");
        assert_eq!(reason("custom", json!({})), "validation.data");
        assert_eq!(reason("system", json!({})), "validation.kind");
        assert_eq!(reason("sticker", json!({})), "validation.kind");
        assert_eq!(reason("text", json!("hello")), "validation.content");
        assert!(
            validate_content(
                "audio",
                json!({"url": "https://a.test/x.ogg", "duration": 3.5, "size": 10, "mime": "audio/ogg"}),
                5000
            )
            .is_ok()
        );
        assert!(validate_content("custom", json!({"data": {"any": ["json", 1]}}), 5000).is_ok());
    }

    #[test]
    fn conversation_ids() {
        assert_eq!(ConversationRef::parse(&single_conversation(9, 3)), Some(ConversationRef::Single(3, 9)));
        assert_eq!(ConversationRef::parse("g:12"), Some(ConversationRef::Group(12)));
        for bad in ["s:3:3", "s:9:3", "g:x", "g:-1", "x:1", "s:1", ""] {
            assert_eq!(ConversationRef::parse(bad), None, "{bad}");
        }
        assert_eq!(ConversationRef::Single(3, 9).peer_of(3), Some(9));
        assert_eq!(ConversationRef::Single(3, 9).peer_of(4), None);
    }
}

//! The message routes: send, history, sync, the changes (recall, delete, edit, reactions),
//! versions, typing, readers, reactors and mentions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conversations::ConversationArg;
use super::views::{ChangeInfo, MessageInfo};
use super::wire::{Done, de_loose_id, de_opt_bool, de_opt_int};
use super::{Api, Ctx, Request};
use crate::domain::Made;
use crate::domain::content::validate_content;
use crate::error::{Error, Result};
use crate::model::{ChatType, ConversationId, MessageId, Outgoing, Recipient, UserId};

/// `{message}`.
#[derive(Debug, Serialize)]
pub struct MessageReply {
    /// The message.
    pub message: MessageInfo,
}

/// `POST /message/send`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SendMessage {
    /// `single` or `group`.
    pub chat_type: String,
    /// The peer user or the group.
    #[serde(deserialize_with = "de_loose_id")]
    pub to: Option<i64>,
    /// Kind; absent when forwarding.
    pub kind: Option<String>,
    /// Content object; absent when forwarding.
    pub content: Option<Value>,
    /// Idempotency key.
    pub client_msg_id: String,
    /// A message to forward, from a conversation the caller is in, instead of `kind` and
    /// `content`; malformed ids name nothing.
    #[serde(default, deserialize_with = "de_loose_id")]
    pub forward_from: Option<MessageId>,
}

impl SendMessage {
    /// The chat type named.
    pub fn chat_type(&self) -> Result<ChatType> {
        ChatType::parse(&self.chat_type)
            .ok_or_else(|| Error::validation("chatType", "chatType must be single or group"))
    }

    /// What the domain is asked to send: a recipient that names nothing is `not_found`.
    pub fn outgoing(self) -> Result<Outgoing> {
        let chat_type = self.chat_type()?;
        let to = Recipient::of(chat_type, self.to.ok_or(Error::NotFound)?);
        let (kind, content) = match (self.kind, self.content, self.forward_from) {
            (Some(kind), Some(content), None) => (kind, content),
            (None, None, Some(_)) => (String::new(), Value::Null),
            (_, _, Some(_)) => {
                return Err(Error::validation("forwardFrom", "give kind and content, or forwardFrom, not both"));
            }
            (None, _, None) => return Err(Error::validation("kind", "kind is required")),
            (Some(_), None, None) => return Err(Error::validation("content", "content is required")),
        };
        Ok(Outgoing { to, kind, content, client_msg_id: self.client_msg_id, forward_from: self.forward_from })
    }
}

/// `GET /message/history`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HistoryQuery {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Messages before this seq.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub before_seq: Option<i64>,
    /// Messages after this seq.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub after_seq: Option<i64>,
    /// Page size, 1 to 100 (default 50).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

/// `GET /message/mentions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MentionsQuery {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Mentions before this seq (the newest by default).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub before_seq: Option<i64>,
    /// Page size, 1 to 100 (default 50).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

/// `{messages, hasMore}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReply {
    /// Ascending by seq.
    pub messages: Vec<MessageInfo>,
    /// More in the direction asked.
    pub has_more: bool,
}

/// `{messageId}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MessageRef {
    /// The message; malformed ids name nothing.
    #[serde(deserialize_with = "de_loose_id")]
    pub message_id: Option<MessageId>,
}

/// `{message, pos, change}`: a message after a change to it.
#[derive(Debug, Serialize)]
pub struct ChangeReply {
    /// The message as it is now.
    pub message: MessageInfo,
    /// The change's position in the conversation's log; null when the message was in that
    /// state already and nothing changed.
    pub pos: Option<i64>,
    /// The change as logged, as the other sessions are pushed it; null with `pos`.
    pub change: Option<ChangeInfo>,
}

/// `POST /message/edit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EditMessage {
    /// The message; malformed ids name nothing.
    #[serde(deserialize_with = "de_loose_id")]
    pub message_id: Option<MessageId>,
    /// The new text content, `{text, mentions?}`.
    pub content: Value,
}

/// `POST /message/react` and `/message/unreact`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReactMessage {
    /// The message; malformed ids name nothing.
    #[serde(deserialize_with = "de_loose_id")]
    pub message_id: Option<MessageId>,
    /// The reaction: an emoji or a short name, 1 to 32 bytes.
    pub key: String,
}

/// One earlier version of an edited message.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// 1 for the content as sent, then one more per edit.
    pub version: i64,
    /// Its content.
    pub content: Value,
    /// When an edit replaced it.
    pub replaced_at: i64,
}

/// `{versions}`.
#[derive(Debug, Serialize)]
pub struct VersionsReply {
    /// Oldest first; the message's content now is not among them.
    pub versions: Vec<VersionInfo>,
}

/// `{count, userIds}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadersReply {
    /// How many have read it (its sender aside).
    pub count: i64,
    /// How many have not.
    pub unread_count: i64,
    /// A page of who has read it (or with `unread`, who has not), ascending by id.
    pub user_ids: Vec<UserId>,
    /// More follow: ask again with `after` the last of `userIds`.
    pub has_more: bool,
}

/// `GET /message/reactors`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReactorsQuery {
    /// The message; malformed ids name nothing.
    #[serde(deserialize_with = "de_loose_id")]
    pub message_id: Option<MessageId>,
    /// The reaction.
    pub key: String,
    /// The page after this user id.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub after: Option<i64>,
    /// Page size, 1 to 500 (default 500).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

/// `{userIds, hasMore}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactorsReply {
    /// A page of who reacted with the key, ascending by id.
    pub user_ids: Vec<UserId>,
    /// More follow: ask again with `after` the last of `userIds`.
    pub has_more: bool,
}

/// `GET /message/readers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReadersQuery {
    /// The message; malformed ids name nothing.
    #[serde(deserialize_with = "de_loose_id")]
    pub message_id: Option<MessageId>,
    /// List who has not read it instead.
    #[serde(default, deserialize_with = "de_opt_bool")]
    pub unread: Option<bool>,
    /// The page after this user id.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub after: Option<i64>,
    /// Page size, 1 to 500 (default 500).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

impl Request for HistoryQuery {}
impl Request for MentionsQuery {}
impl Request for EditMessage {}
impl Request for ReactMessage {}
impl Request for MessageRef {}
impl Request for ReadersQuery {}
impl Request for ReactorsQuery {}
impl Request for ConversationArg {}

impl Request for SendMessage {
    fn probe(self) {
        let _ = self.chat_type();
        if let (Some(kind), Some(content)) = (self.kind, self.content) {
            let _ = validate_content(&kind, content, 5000);
        }
    }
}

/// `POST /message/send`.
pub(super) async fn send(api: &Api, cx: &Ctx<'_>, req: SendMessage) -> Result<MessageReply> {
    let out = req.outgoing()?;
    Ok(MessageReply { message: api.domain.messages.send(cx.who()?, out, cx.turn()).await?.into() })
}

/// `GET /message/history`.
pub(super) async fn history(api: &Api, cx: &Ctx<'_>, req: HistoryQuery) -> Result<HistoryReply> {
    let messages = &api.domain.messages;
    let (page, has_more) =
        messages.history(cx.who()?, &req.conversation_id, req.before_seq, req.after_seq, req.limit).await?;
    Ok(HistoryReply { messages: page.into_iter().map(Into::into).collect(), has_more })
}

/// `GET /message/mentions`.
pub(super) async fn mentions(api: &Api, cx: &Ctx<'_>, req: MentionsQuery) -> Result<HistoryReply> {
    let messages = &api.domain.messages;
    let (page, has_more) = messages.mentions(cx.who()?, &req.conversation_id, req.before_seq, req.limit).await?;
    Ok(HistoryReply { messages: page.into_iter().map(Into::into).collect(), has_more })
}

/// The message a change names.
fn target(message_id: Option<MessageId>) -> Result<MessageId> {
    message_id.ok_or(Error::NotFound)
}

fn changed(made: Made) -> ChangeReply {
    ChangeReply {
        message: made.message.into(),
        pos: made.change.as_ref().map(|c| c.pos),
        change: made.change.map(Into::into),
    }
}

/// `POST /message/recall`.
pub(super) async fn recall(api: &Api, cx: &Ctx<'_>, req: MessageRef) -> Result<ChangeReply> {
    Ok(changed(api.domain.messages.recall(cx.who()?, target(req.message_id)?, cx.turn()).await?))
}

/// `POST /message/delete`.
pub(super) async fn delete(api: &Api, cx: &Ctx<'_>, req: MessageRef) -> Result<ChangeReply> {
    Ok(changed(api.domain.messages.delete(cx.who()?, target(req.message_id)?, cx.turn()).await?))
}

/// `POST /message/edit`.
pub(super) async fn edit(api: &Api, cx: &Ctx<'_>, req: EditMessage) -> Result<ChangeReply> {
    let messages = &api.domain.messages;
    Ok(changed(messages.edit(cx.who()?, target(req.message_id)?, req.content, cx.turn()).await?))
}

/// `POST /message/react`.
pub(super) async fn react(api: &Api, cx: &Ctx<'_>, req: ReactMessage) -> Result<ChangeReply> {
    let messages = &api.domain.messages;
    Ok(changed(messages.react(cx.who()?, target(req.message_id)?, req.key, true, cx.turn()).await?))
}

/// `POST /message/unreact`.
pub(super) async fn unreact(api: &Api, cx: &Ctx<'_>, req: ReactMessage) -> Result<ChangeReply> {
    let messages = &api.domain.messages;
    Ok(changed(messages.react(cx.who()?, target(req.message_id)?, req.key, false, cx.turn()).await?))
}

/// `POST /message/hide`.
pub(super) async fn hide(api: &Api, cx: &Ctx<'_>, req: MessageRef) -> Result<MessageReply> {
    Ok(MessageReply { message: api.domain.messages.hide(cx.who()?, target(req.message_id)?).await?.into() })
}

/// `GET /message/versions`.
pub(super) async fn versions(api: &Api, cx: &Ctx<'_>, req: MessageRef) -> Result<VersionsReply> {
    let versions = api.domain.messages.versions(cx.who()?, target(req.message_id)?).await?;
    let versions = versions
        .into_iter()
        .map(|v| VersionInfo { version: v.version, content: v.content, replaced_at: v.replaced_at })
        .collect();
    Ok(VersionsReply { versions })
}

/// `POST /message/typing`.
pub(super) async fn typing(api: &Api, cx: &Ctx<'_>, req: ConversationArg) -> Result<Done> {
    api.domain.messages.typing(cx.who()?, &req.conversation_id).await?;
    Ok(Done {})
}

/// `GET /message/readers`.
pub(super) async fn readers(api: &Api, cx: &Ctx<'_>, req: ReadersQuery) -> Result<ReadersReply> {
    let message_id = req.message_id.ok_or(Error::NotFound)?;
    let after = req.after.map(UserId);
    let readers =
        api.domain.messages.readers(cx.who()?, message_id, req.unread != Some(true), after, req.limit).await?;
    Ok(ReadersReply {
        count: readers.read,
        unread_count: readers.unread,
        user_ids: readers.page,
        has_more: readers.has_more,
    })
}

/// `GET /message/reactors`.
pub(super) async fn reactors(api: &Api, cx: &Ctx<'_>, req: ReactorsQuery) -> Result<ReactorsReply> {
    let message_id = req.message_id.ok_or(Error::NotFound)?;
    let after = req.after.map(UserId);
    let (user_ids, has_more) = api.domain.messages.reactors(cx.who()?, message_id, &req.key, after, req.limit).await?;
    Ok(ReactorsReply { user_ids, has_more })
}

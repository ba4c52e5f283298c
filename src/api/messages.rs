//! The message routes: send, history, sync, recall, typing and readers.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conversations::{ConversationArg, ConversationInfo};
use super::views::MessageInfo;
use super::wire::{Done, de_int, de_loose_id, de_opt_int};
use super::{Api, Ctx, Request};
use crate::domain::budget::{Budget, REPLY_BUDGET, SYNC_MESSAGES_BUDGET, view_estimate};
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
    /// Kind.
    pub kind: String,
    /// Content object.
    pub content: Value,
    /// Idempotency key.
    pub client_msg_id: String,
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
        Ok(Outgoing { to, kind: self.kind, content: self.content, client_msg_id: self.client_msg_id })
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

/// `{messages, hasMore}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReply {
    /// Ascending by seq.
    pub messages: Vec<MessageInfo>,
    /// More in the direction asked.
    pub has_more: bool,
}

/// One `{conversationId, seq}` a client already has.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KnownSeq {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The last seq the client holds.
    #[serde(deserialize_with = "de_int")]
    pub seq: i64,
}

/// `POST /message/sync`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// What the client has; unlisted conversations count as seq 0.
    #[serde(default)]
    pub conversations: Vec<KnownSeq>,
}

/// One conversation in a sync answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncedInfo {
    /// Its state.
    pub conversation: ConversationInfo,
    /// Messages after the known seq, ascending.
    pub messages: Vec<MessageInfo>,
    /// More messages follow: page with history.
    pub has_more: bool,
}

/// `{conversations, hasMore}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReply {
    /// Conversations with news.
    pub conversations: Vec<SyncedInfo>,
    /// Other conversations have news too: call again with the seqs now known.
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

/// `{count, userIds}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadersReply {
    /// How many have read it.
    pub count: usize,
    /// Who, by id.
    pub user_ids: Vec<UserId>,
}

impl Request for HistoryQuery {}
impl Request for SyncRequest {}
impl Request for MessageRef {}
impl Request for ConversationArg {}

impl Request for SendMessage {
    fn probe(self) {
        let _ = self.chat_type();
        let _ = validate_content(&self.kind, self.content, 5000);
    }
}

/// `POST /message/send`.
pub(super) async fn send(api: &Api, cx: &Ctx<'_>, req: SendMessage) -> Result<MessageReply> {
    let out = req.outgoing()?;
    Ok(MessageReply { message: api.domain.messages.send(cx.who()?, out).await?.into() })
}

/// `GET /message/history`.
pub(super) async fn history(api: &Api, cx: &Ctx<'_>, req: HistoryQuery) -> Result<HistoryReply> {
    let messages = &api.domain.messages;
    let (page, has_more) =
        messages.history(cx.who()?, &req.conversation_id, req.before_seq, req.after_seq, req.limit).await?;
    Ok(HistoryReply { messages: page.into_iter().map(Into::into).collect(), has_more })
}

/// `POST /message/sync`.
pub(super) async fn sync(api: &Api, cx: &Ctx<'_>, req: SyncRequest) -> Result<SyncReply> {
    let who = cx.who()?;
    let known: HashMap<ConversationId, i64> =
        req.conversations.into_iter().map(|k| (k.conversation_id, k.seq)).collect();
    let (synced, mut has_more) = api.domain.messages.sync(who, &known).await?;
    let mut out = Vec::with_capacity(synced.len());
    // The conversations' own fields take the rest of the reply's budget; those that do not fit
    // wait for the next call, whose known seqs have not moved past them.
    let mut budget = Budget::new(REPLY_BUDGET - SYNC_MESSAGES_BUDGET);
    for conversation in synced {
        let view = api.domain.conversations.info(who, &conversation.conversation_id).await?;
        if !budget.admit(view_estimate(&view)) {
            has_more = true;
            break;
        }
        out.push(SyncedInfo {
            conversation: view.into(),
            messages: conversation.messages.into_iter().map(Into::into).collect(),
            has_more: conversation.has_more,
        });
    }
    Ok(SyncReply { conversations: out, has_more })
}

/// `POST /message/recall`.
pub(super) async fn recall(api: &Api, cx: &Ctx<'_>, req: MessageRef) -> Result<MessageReply> {
    let message = api.domain.messages.recall(cx.who()?, req.message_id.ok_or(Error::NotFound)?).await?;
    Ok(MessageReply { message: message.into() })
}

/// `POST /message/typing`.
pub(super) async fn typing(api: &Api, cx: &Ctx<'_>, req: ConversationArg) -> Result<Done> {
    api.domain.messages.typing(cx.who()?, &req.conversation_id).await?;
    Ok(Done {})
}

/// `GET /message/readers`.
pub(super) async fn readers(api: &Api, cx: &Ctx<'_>, req: MessageRef) -> Result<ReadersReply> {
    let readers = api.domain.messages.readers(cx.who()?, req.message_id.ok_or(Error::NotFound)?).await?;
    Ok(ReadersReply { count: readers.len(), user_ids: readers })
}

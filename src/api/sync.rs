//! `/message/sync`: what a device has not seen, by conversation position or by one cursor of
//! the log clock, with the caller's own feed.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::conversations::ConversationInfo;
use super::groups::GroupInfo;
use super::users::UserInfo;
use super::views::{ChangeInfo, MessageInfo};
use super::wire::de_opt_int;
use super::{Api, Ctx, Request};
use crate::domain::Known;
use crate::domain::budget::{Budget, SYNC_CONVERSATIONS_BUDGET, view_estimate};
use crate::domain::feed::Fed;
use crate::error::{Error, Result};
use crate::model::{ConversationId, GroupId, Identity, MessageId, SyncCursor, SyncedConversation};

/// One `{conversationId, seq, pos}` a client already has.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KnownSeq {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The last seq the client holds (syncing by seq).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub seq: Option<i64>,
    /// The last log position the client holds (syncing by position).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub pos: Option<i64>,
}

/// `POST /message/sync`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncRequest {
    /// What the client has; unlisted conversations count as seq (or position) 0.
    #[serde(default)]
    pub conversations: Vec<KnownSeq>,
    /// Sync by log position: every message and change after each `pos`. Otherwise by seq,
    /// new messages only.
    #[serde(default)]
    pub log: bool,
    /// The position the client holds of the caller's own feed: when given, the answer's `feed`
    /// carries what changed after it.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub feed_pos: Option<i64>,
    /// Sync by cursor instead: the `cursor` of the last answer (`"0"` for a device holding
    /// nothing). Every message and change of every conversation that moved after it comes, by
    /// position, and `conversations` is not given.
    pub cursor: Option<String>,
}

/// One conversation in a sync answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncedInfo {
    /// Its state.
    pub conversation: ConversationInfo,
    /// Messages after the known seq (or made after the known position), ascending.
    pub messages: Vec<MessageInfo>,
    /// By position: the changes to messages after it, ascending by position.
    pub changes: Vec<ChangeInfo>,
    /// By position: the position held once this is applied; null by seq.
    pub pos: Option<i64>,
    /// By position: the position the answer starts after. A client holding less of this
    /// conversation (one it joined, or never held) fetches what it lacks by position.
    pub from: Option<i64>,
    /// By position: the log no longer reaches the known position; drop this conversation's
    /// messages, fetch its window with history, and go on from `pos`.
    pub reset: bool,
    /// More follows: by seq, page with history; by position, sync again.
    pub has_more: bool,
}

/// `{conversations, hasMore}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReply {
    /// Conversations with news.
    pub conversations: Vec<SyncedInfo>,
    /// Other conversations have news too: call again with the seqs now known (or `cursor`).
    pub has_more: bool,
    /// By cursor: the cursor to sync from next; the device holds it once this is applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// What changed in the caller's own state after `feedPos`; absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed: Option<FeedInfo>,
}

/// `{changes, pos, hasMore}`: a page of the caller's feed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedInfo {
    /// What changed, each once, as it is now, in feed order.
    pub changes: Vec<FeedChange>,
    /// The feed position held once this is applied.
    pub pos: i64,
    /// More follows: sync again with `pos`.
    pub has_more: bool,
}

/// One thing of the caller's own state that changed, as it is now, with the position of its
/// latest entry.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum FeedChange {
    /// `{type: "conversation", pos, conversation}`: settings or read position.
    Conversation {
        /// Position.
        pos: i64,
        /// The caller's state of it.
        conversation: Box<ConversationInfo>,
    },
    /// `{type: "group", pos, group}`: joined, or its info changed.
    Group {
        /// Position.
        pos: i64,
        /// The group.
        group: GroupInfo,
    },
    /// `{type: "left", pos, groupId}`: no longer a member (left, removed, or dismissed).
    Left {
        /// Position.
        pos: i64,
        /// The group.
        group_id: GroupId,
    },
    /// `{type: "hidden", pos, conversationId, messageId, seq}`: a message the caller deleted for
    /// themselves.
    Hidden {
        /// Position.
        pos: i64,
        /// Its conversation.
        conversation_id: ConversationId,
        /// The message.
        message_id: MessageId,
        /// Its seq.
        seq: i64,
    },
    /// `{type: "profile", pos, userinfo}`: the caller's own profile.
    Profile {
        /// Position.
        pos: i64,
        /// The caller, with private fields.
        userinfo: UserInfo,
    },
}

impl From<(i64, Fed)> for FeedChange {
    fn from((pos, fed): (i64, Fed)) -> Self {
        match fed {
            Fed::Conversation(view) => FeedChange::Conversation { pos, conversation: Box::new((*view).into()) },
            Fed::Group(group) => FeedChange::Group { pos, group: group.into() },
            Fed::Left(group_id) => FeedChange::Left { pos, group_id },
            Fed::Profile(user) => FeedChange::Profile { pos, userinfo: user.into() },
            Fed::Hidden(m) => {
                FeedChange::Hidden { pos, conversation_id: m.conversation_id, message_id: m.id, seq: m.seq }
            }
        }
    }
}

impl Request for SyncRequest {}

/// `POST /message/sync`.
pub(super) async fn sync(api: &Api, cx: &Ctx<'_>, req: SyncRequest) -> Result<SyncReply> {
    let who = cx.who()?;
    let feed_pos = req.feed_pos;
    let mut reply = match req.cursor {
        Some(ref text) => {
            if !req.conversations.is_empty() {
                return Err(Error::validation("conversations", "a sync by cursor names no conversations"));
            }
            let cursor = decode(text)?;
            let mut round = api.domain.messages.sync_from(who, cursor).await?;
            let (conversations, cut) = views(api, who, std::mem::take(&mut round.conversations)).await?;
            let next = match cut {
                Some((conversation, from)) => round.resume_at(conversation, from.unwrap_or(0)),
                None => round.next,
            };
            let has_more = matches!(next, SyncCursor::Within { .. });
            SyncReply { conversations, has_more, cursor: Some(encode(&next)), feed: None }
        }
        None => {
            let known: HashMap<ConversationId, Known> = req
                .conversations
                .into_iter()
                .map(|k| {
                    (k.conversation_id, Known { seq: k.seq.unwrap_or(0), pos: req.log.then(|| k.pos.unwrap_or(0)) })
                })
                .collect();
            let (synced, more) = api.domain.messages.sync(who, &known, req.log).await?;
            // Those left out wait for the next call, whose known positions have not moved past them.
            let (conversations, cut) = views(api, who, synced).await?;
            SyncReply { conversations, has_more: more || cut.is_some(), cursor: None, feed: None }
        }
    };
    if let Some(after) = feed_pos {
        let page = api.domain.conversations.feed(who, after).await?;
        let changes = page.items.into_iter().map(Into::into).collect();
        reply.feed = Some(FeedInfo { changes, pos: page.pos, has_more: page.has_more });
    }
    Ok(reply)
}

/// The first conversation a reply left out, and the position its answer started after.
type LeftOut = Option<(ConversationId, Option<i64>)>;

/// The conversations of a sync answer with their views, as many as their share of the reply's
/// budget admits, and the first left out when some are.
async fn views(api: &Api, who: &Identity, synced: Vec<SyncedConversation>) -> Result<(Vec<SyncedInfo>, LeftOut)> {
    let ids: Vec<ConversationId> = synced.iter().map(|s| s.conversation_id.clone()).collect();
    let mut views = api.domain.conversations.infos(who, &ids).await?.into_iter().peekable();
    let mut budget = Budget::new(SYNC_CONVERSATIONS_BUDGET);
    let mut out = Vec::with_capacity(synced.len());
    for conversation in synced {
        // In the same order; one the caller left in between has no view, and is left out.
        let Some(view) = views.next_if(|v| v.state.conversation_id == conversation.conversation_id) else {
            continue;
        };
        if !budget.admit(view_estimate(&view)) {
            return Ok((out, Some((conversation.conversation_id, conversation.from))));
        }
        out.push(SyncedInfo {
            conversation: view.into(),
            messages: conversation.messages.into_iter().map(Into::into).collect(),
            changes: conversation.changes.into_iter().map(Into::into).collect(),
            pos: conversation.pos,
            from: conversation.from,
            reset: conversation.reset,
            has_more: conversation.has_more,
        });
    }
    Ok((out, None))
}

/// A cursor as the wire carries it: `"<stamp>"`, or within a round
/// `"<since>.<upto>.<conversation>.<pos>"` (conversation ids hold no dot).
fn encode(cursor: &SyncCursor) -> String {
    match cursor {
        SyncCursor::Done(stamp) => stamp.to_string(),
        SyncCursor::Within { since, upto, conversation, pos } => format!("{since}.{upto}.{conversation}.{pos}"),
    }
}

/// Reads a cursor [`encode`] wrote; `"0"` is a device holding nothing.
fn decode(text: &str) -> Result<Option<SyncCursor>> {
    let bad = || Error::validation("cursor", "not a cursor this server gave");
    let number = |part: &str| part.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(bad);
    let parts: Vec<&str> = text.split('.').collect();
    match parts[..] {
        [stamp] => Ok(match number(stamp)? {
            0 => None,
            stamp => Some(SyncCursor::Done(stamp)),
        }),
        [since, upto, conversation, pos] => {
            let conversation = ConversationId(conversation.to_owned());
            let (since, upto, pos) = (number(since)?, number(upto)?, number(pos)?);
            if conversation.parse().is_none() || since > upto {
                return Err(bad());
            }
            Ok(Some(SyncCursor::Within { since, upto, conversation, pos }))
        }
        _ => Err(bad()),
    }
}

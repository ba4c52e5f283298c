//! The conversation routes: the list, one conversation, its settings, reads and unread counts.

use serde::{Deserialize, Serialize};

use super::groups::GroupInfo;
use super::users::UserInfo;
use super::views::MessageInfo;
use super::wire::{Done, Empty, de_int, de_opt_bool, de_opt_int};
use super::{Api, Ctx, Request};
use crate::error::Result;
use crate::model::{ConversationId, ConversationPatch, ConversationView, Peer};

/// `{conversationId}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConversationArg {
    /// The conversation.
    pub conversation_id: ConversationId,
}

/// A conversation's peer: a user or a group.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PeerInfo {
    /// The other user.
    User(UserInfo),
    /// The group.
    Group(GroupInfo),
}

/// `conversation` on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationInfo {
    /// Id.
    pub conversation_id: ConversationId,
    /// `single` or `group`.
    pub chat_type: &'static str,
    /// The other user or the group; null if gone.
    pub peer: Option<PeerInfo>,
    /// The newest message.
    pub last_message: Option<MessageInfo>,
    /// Its seq.
    pub last_seq: i64,
    /// The newest position of its log: where a device that holds all of it syncs from.
    pub last_pos: i64,
    /// The caller's read position.
    pub read_seq: i64,
    /// Unread messages from others.
    pub unread: i64,
    /// Of those, the ones that mention the caller, by id or `@all` (muted or not).
    pub mention_unread: i64,
    /// One-to-one: how far the peer has read (null in a group).
    pub peer_read_seq: Option<i64>,
    /// One-to-one: how far the peer's devices have received (null in a group).
    pub peer_delivered_seq: Option<i64>,
    /// Pinned.
    pub pinned: bool,
    /// Muted.
    pub muted: bool,
    /// Draft.
    pub draft: String,
    /// Hidden.
    pub hidden: bool,
    /// Latest activity.
    pub updated_at: i64,
}

impl From<ConversationView> for ConversationInfo {
    fn from(v: ConversationView) -> Self {
        let s = v.state;
        ConversationInfo {
            conversation_id: s.conversation_id,
            chat_type: s.chat_type.as_str(),
            peer: v.peer.map(|p| match p {
                Peer::User(u) => PeerInfo::User(u.into()),
                Peer::Group(g) => PeerInfo::Group(g.into()),
            }),
            last_message: v.last_message.map(Into::into),
            last_seq: s.last_seq,
            last_pos: s.last_pos,
            read_seq: s.read_seq,
            unread: s.unread,
            mention_unread: s.mention_unread,
            peer_read_seq: s.peer_read_seq,
            peer_delivered_seq: s.peer_delivered_seq,
            pinned: s.pinned,
            muted: s.muted,
            draft: s.draft,
            hidden: s.hidden,
            updated_at: s.updated_at,
        }
    }
}

/// `{conversation}`.
#[derive(Debug, Serialize)]
pub struct ConversationReply {
    /// The conversation.
    pub conversation: ConversationInfo,
}

/// `GET /conversation/list`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationListQuery {
    /// `nextCursor` of the previous page.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub cursor: Option<i64>,
    /// Page size, 1 to 100 (default 50).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

/// `{conversations, totalUnread, nextCursor}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationListReply {
    /// Pinned first, then by latest activity.
    pub conversations: Vec<ConversationInfo>,
    /// Unread over every unmuted conversation.
    pub total_unread: i64,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `POST /conversation/update`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConversationUpdate {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Pin.
    #[serde(default, deserialize_with = "de_opt_bool")]
    pub pinned: Option<bool>,
    /// Mute.
    #[serde(default, deserialize_with = "de_opt_bool")]
    pub muted: Option<bool>,
    /// Draft.
    #[serde(default)]
    pub draft: Option<String>,
    /// Hide.
    #[serde(default, deserialize_with = "de_opt_bool")]
    pub hidden: Option<bool>,
}

impl ConversationUpdate {
    /// The domain patch.
    pub fn patch(&self) -> ConversationPatch {
        ConversationPatch { pinned: self.pinned, muted: self.muted, draft: self.draft.clone(), hidden: self.hidden }
    }
}

/// `POST /conversation/read`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReadRequest {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Read up to here.
    #[serde(deserialize_with = "de_int")]
    pub seq: i64,
}

/// `POST /conversation/delivered`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveredRequest {
    /// The one-to-one conversation.
    pub conversation_id: ConversationId,
    /// Received up to here.
    #[serde(deserialize_with = "de_int")]
    pub seq: i64,
}

/// One entry of `/conversation/unread`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreadEntry {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its unread count.
    pub unread: i64,
}

/// `{total, conversations}`.
#[derive(Debug, Serialize)]
pub struct UnreadReply {
    /// Over unmuted conversations.
    pub total: i64,
    /// Conversations with unread messages.
    pub conversations: Vec<UnreadEntry>,
}

impl Request for ConversationListQuery {}
impl Request for ReadRequest {}
impl Request for DeliveredRequest {}

impl Request for ConversationUpdate {
    fn probe(self) {
        let _ = self.patch();
    }
}

/// `GET /conversation/list`.
pub(super) async fn list(api: &Api, cx: &Ctx<'_>, req: ConversationListQuery) -> Result<ConversationListReply> {
    let (views, total_unread, next) = api.domain.conversations.list(cx.who()?, req.cursor, req.limit).await?;
    Ok(ConversationListReply {
        conversations: views.into_iter().map(Into::into).collect(),
        total_unread,
        next_cursor: next.map(|c| c.to_string()),
    })
}

/// `GET /conversation/info`.
pub(super) async fn info(api: &Api, cx: &Ctx<'_>, req: ConversationArg) -> Result<ConversationReply> {
    let view = api.domain.conversations.info(cx.who()?, &req.conversation_id).await?;
    Ok(ConversationReply { conversation: view.into() })
}

/// `POST /conversation/update`.
pub(super) async fn update(api: &Api, cx: &Ctx<'_>, req: ConversationUpdate) -> Result<ConversationReply> {
    let view = api.domain.conversations.update(cx.who()?, &req.conversation_id, req.patch()).await?;
    Ok(ConversationReply { conversation: view.into() })
}

/// `POST /conversation/read`.
pub(super) async fn read(api: &Api, cx: &Ctx<'_>, req: ReadRequest) -> Result<ConversationReply> {
    let view = api.domain.conversations.read(cx.who()?, &req.conversation_id, req.seq).await?;
    Ok(ConversationReply { conversation: view.into() })
}

/// `POST /conversation/delivered`.
pub(super) async fn delivered(api: &Api, cx: &Ctx<'_>, req: DeliveredRequest) -> Result<Done> {
    api.domain.conversations.delivered(cx.who()?, &req.conversation_id, req.seq).await?;
    Ok(Done {})
}

/// `GET /conversation/unread`.
pub(super) async fn unread(api: &Api, cx: &Ctx<'_>, _: Empty) -> Result<UnreadReply> {
    let (total, per) = api.domain.conversations.unread(cx.who()?).await?;
    let conversations =
        per.into_iter().map(|(conversation_id, unread)| UnreadEntry { conversation_id, unread }).collect();
    Ok(UnreadReply { total, conversations })
}

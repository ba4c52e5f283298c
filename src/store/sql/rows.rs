//! Columns read back, and the model values made of them.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Error, Result};
use crate::model::{
    Changed, ChatType, ConversationState, Gender, Group, JoinPolicy, Message, MessageId, Profile, Recipient, Role,
    Standing, Status, User,
};

/// A user with their profile: `users u JOIN profile p`.
pub const USER_COLUMNS: &str =
    "u.id, u.username, u.created_at, p.nickname, p.avatar, p.gender, p.birthday, p.age, p.signature";
/// A group: `chat_group g`.
pub const GROUP_COLUMNS: &str = "g.id, g.name, g.avatar, g.intro, g.notice, g.owner_id, g.join_policy, \
                                 g.member_count, g.max_members, g.muted_until, g.created_at, g.updated_at";
/// A message: `message m`.
pub const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.seq, m.chat_type, m.sender_id, m.recipient, m.kind, \
                                   m.content, m.client_msg_id, m.sent_at, m.status, m.pos, m.edited_at";
/// A participant's state of their conversations, with its unread counts read from the
/// counters and, one-to-one, the peer's read and delivered positions; `$1` is the user.
pub const STATE_SELECT: &str = "SELECT c.id, c.chat_type, c.group_id, c.last_seq, c.last_pos, c.last_message_id, c.updated_at, \
     cm.read_seq, cm.pinned, cm.muted, cm.hidden, cm.draft, c.countable - cm.read_countable AS unread, \
     c.mentions_all + cm.mentioned - cm.mention_read AS mention_unread, \
     p.read_seq AS peer_read_seq, p.delivered_seq AS peer_delivered_seq \
     FROM conversation_member cm JOIN conversation c ON c.id = cm.conversation_id \
     LEFT JOIN conversation_member p ON c.chat_type = 'single' AND p.conversation_id = c.id AND p.user_id <> cm.user_id \
     WHERE cm.user_id = $1";

/// The state a log row of `kind` with `data` records; `None` for a new message's row.
pub fn changed(kind: &str, data: &str) -> Option<Changed> {
    let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let key = || data["key"].as_str().unwrap_or_default().to_owned();
    let count = data["count"].as_i64().unwrap_or_default();
    Some(match kind {
        "recall" => Changed::Recalled,
        "delete" => Changed::Deleted,
        "edit" => Changed::Edited { content: data["content"].clone() },
        "react" => Changed::Reaction { key: key(), count, added: true },
        "unreact" => Changed::Reaction { key: key(), count, added: false },
        _ => return None,
    })
}

/// A row of [`USER_COLUMNS`].
pub fn user(row: &AnyRow) -> Result<User> {
    let gender: String = row.try_get("gender")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        created_at: row.try_get("created_at")?,
        profile: Profile {
            nickname: row.try_get("nickname")?,
            avatar: row.try_get("avatar")?,
            gender: Gender::parse(&gender).unwrap_or_default(),
            birthday: row.try_get("birthday")?,
            age: row.try_get("age")?,
            signature: row.try_get("signature")?,
        },
    })
}

/// A row of [`GROUP_COLUMNS`].
pub fn group(row: &AnyRow) -> Result<Group> {
    let policy: String = row.try_get("join_policy")?;
    Ok(Group {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        avatar: row.try_get("avatar")?,
        intro: row.try_get("intro")?,
        notice: row.try_get("notice")?,
        owner_id: row.try_get("owner_id")?,
        join_policy: JoinPolicy::parse(&policy).unwrap_or(JoinPolicy::Invite),
        member_count: row.try_get("member_count")?,
        max_members: row.try_get("max_members")?,
        muted_until: row.try_get("muted_until")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The kind a message is read as when its stored content does not decode.
pub const UNSUPPORTED: &str = "unsupported";

/// A row of [`MESSAGE_COLUMNS`]. Total over stored content: content that does not decode (old
/// data, a bug, a manual edit) is logged and read as an [`UNSUPPORTED`] message that keeps its
/// id and seq, so one bad row never fails a whole list, sync or history.
pub fn message(row: &AnyRow) -> Result<Message> {
    let chat_type: String = row.try_get("chat_type")?;
    let status: String = row.try_get("status")?;
    let content: String = row.try_get("content")?;
    let id: MessageId = row.try_get("id")?;
    let (kind, content) = match serde_json::from_str(&content) {
        Ok(content) => (row.try_get("kind")?, content),
        Err(err) => {
            tracing::warn!(message = %id, error = %err, "a stored message's content does not decode; read as unsupported");
            (UNSUPPORTED.to_owned(), Value::Object(Default::default()))
        }
    };
    Ok(Message {
        id,
        conversation_id: row.try_get("conversation_id")?,
        seq: row.try_get("seq")?,
        from: row.try_get("sender_id")?,
        to: Recipient::of(ChatType::parse(&chat_type).unwrap_or(ChatType::Single), row.try_get("recipient")?),
        kind,
        content,
        client_msg_id: row.try_get("client_msg_id")?,
        sent_at: row.try_get("sent_at")?,
        status: Status::parse(&status).unwrap_or(Status::Normal),
        pos: row.try_get("pos")?,
        edited_at: row.try_get("edited_at")?,
        reactions: Vec::new(),
        quote: None,
    })
}

/// A row of [`STATE_SELECT`].
pub fn state(row: &AnyRow) -> Result<ConversationState> {
    let chat_type: String = row.try_get("chat_type")?;
    Ok(ConversationState {
        conversation_id: row.try_get("id")?,
        chat_type: ChatType::parse(&chat_type).unwrap_or(ChatType::Single),
        group_id: row.try_get("group_id")?,
        last_seq: row.try_get("last_seq")?,
        last_pos: row.try_get("last_pos")?,
        last_message_id: row.try_get("last_message_id")?,
        updated_at: row.try_get("updated_at")?,
        read_seq: row.try_get("read_seq")?,
        pinned: row.try_get::<i64, _>("pinned")? != 0,
        muted: row.try_get::<i64, _>("muted")? != 0,
        hidden: row.try_get::<i64, _>("hidden")? != 0,
        draft: row.try_get("draft")?,
        unread: row.try_get("unread")?,
        mention_unread: row.try_get("mention_unread")?,
        peer_read_seq: row.try_get("peer_read_seq")?,
        peer_delivered_seq: row.try_get("peer_delivered_seq")?,
    })
}

/// A member's `role` and `muted_until`.
pub fn standing(row: &AnyRow) -> Result<Standing> {
    let role: String = row.try_get("role")?;
    Ok(Standing { role: role_named(&role)?, muted_until: row.try_get("muted_until")? })
}

/// A stored role name.
pub fn role_named(role: &str) -> Result<Role> {
    Role::parse(role).ok_or_else(|| Error::internal(anyhow::anyhow!("bad role {role}")))
}

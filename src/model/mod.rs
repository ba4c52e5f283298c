//! The model: ids as newtypes and plain data, shared by every layer above. It knows nothing
//! else of the crate: no storage, no rules, no wire, no sockets.

pub mod change;
pub mod conversation;
pub mod event;
pub mod feed;
pub mod file;
pub mod group;
pub mod ids;
pub mod message;
pub mod turn;
pub mod user;

pub use change::{Alteration, Change, Changed, LogEntry, NewChange};
pub use conversation::{ConversationPatch, ConversationState, ConversationView, Peer};
pub use event::{Audience, Event, KickReason, MemberChange, ReadCount};
pub use feed::{FeedEntry, FeedKind};
pub use file::FileMeta;
pub use group::{Group, GroupPatch, JoinPolicy, Member, MemberAction, NewGroup, Role, Standing};
pub use ids::{ConversationId, ConversationRef, FileId, GroupId, LoginId, MessageId, SessionId, UserId};
pub use message::{
    ChatType, Mentions, Message, NewMessage, Outgoing, Quote, Reaction, Recipient, Status, SyncCursor,
    SyncedConversation,
};
pub use turn::{Tail, Turn};
pub use user::{
    Account, Gender, Identity, LoginAttempt, LoginRecord, Lookup, Origin, Profile, ProfilePatch, ResetNotice, Ticket,
    TokenState, Transport, User,
};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

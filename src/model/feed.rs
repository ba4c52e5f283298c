//! The per-user change feed: what changed in a user's own state, by position.

/// What a feed entry is about. Sync answers each with its subject's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedKind {
    /// The user's state of a conversation: pin, mute, draft, hide, read position.
    Conversation,
    /// A group the user is or was in: joined, left, removed, dismissed, or its info changed.
    Group,
    /// The user's own profile.
    Profile,
    /// A message the user deleted for themselves.
    Hidden,
}

impl FeedKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Conversation => "conversation",
            FeedKind::Group => "group",
            FeedKind::Profile => "profile",
            FeedKind::Hidden => "hidden",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<FeedKind> {
        [FeedKind::Conversation, FeedKind::Group, FeedKind::Profile, FeedKind::Hidden]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One entry of a user's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Its position in the user's feed.
    pub pos: i64,
    /// What it is about.
    pub kind: FeedKind,
    /// Which one: the conversation id, the group id, the user id, or the message id.
    pub subject: String,
}

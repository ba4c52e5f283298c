//! Ids as types of their own, so that a user id cannot be passed where a group id is expected.
//!
//! On the wire every id is a string (`"42"`), and a client may send an integer instead; in the
//! database the integer ids are `BIGINT` and the others `TEXT`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                $name(id)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                de_int(d).map($name)
            }
        }
    };
}

/// Reads an integer (an id, a seq, a time) sent as a string or, leniently, as an integer.
pub fn de_int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    // Named `Id`: the error text of an unmatched untagged enum names it, and clients see it.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Int(i64),
        Str(String),
    }
    match Id::deserialize(d)? {
        Id::Int(i) => Ok(i),
        Id::Str(s) => s.parse().map_err(|_| serde::de::Error::custom("not an id")),
    }
}

int_id!(
    /// A user.
    UserId
);
int_id!(
    /// A group.
    GroupId
);
int_id!(
    /// A stored message.
    MessageId
);
int_id!(
    /// A row of a user's login history.
    LoginId
);

/// A live session on this node (never stored, never sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// An uploaded file: 128 random bits in lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct FileId(pub String);

impl FileId {
    /// Whether the id has the shape of a file id; anything else names no file.
    pub fn is_well_formed(&self) -> bool {
        self.0.len() == 32 && self.0.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A conversation: `s:<a>:<b>` for the one-to-one conversation of users `a < b`, `g:<group>`
/// for a group's. Any string may arrive from a client; [`ConversationId::parse`] tells whether
/// it names a conversation at all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct ConversationId(pub String);

/// What a conversation id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationRef {
    /// The one-to-one conversation of two users, the smaller id first.
    Single(UserId, UserId),
    /// A group's conversation.
    Group(GroupId),
}

impl ConversationId {
    /// The one-to-one conversation of `a` and `b`, in either order.
    pub fn single(a: UserId, b: UserId) -> Self {
        ConversationId(format!("s:{}:{}", a.min(b), a.max(b)))
    }

    /// A group's conversation.
    pub fn group(group: GroupId) -> Self {
        ConversationId(format!("g:{group}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the id names; malformed ids name nothing.
    pub fn parse(&self) -> Option<ConversationRef> {
        if let Some(rest) = self.0.strip_prefix("s:") {
            let (a, b) = rest.split_once(':')?;
            let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
            (a > 0 && a < b).then_some(ConversationRef::Single(UserId(a), UserId(b)))
        } else {
            let g: i64 = self.0.strip_prefix("g:")?.parse().ok()?;
            (g > 0).then_some(ConversationRef::Group(GroupId(g)))
        }
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ConversationRef {
    /// For a one-to-one conversation, the participant who is not `me`.
    pub fn peer_of(self, me: UserId) -> Option<UserId> {
        match self {
            ConversationRef::Single(a, b) if a == me => Some(b),
            ConversationRef::Single(a, b) if b == me => Some(a),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids() {
        let single = ConversationId::single(UserId(9), UserId(3));
        assert_eq!(single.as_str(), "s:3:9");
        assert_eq!(single.parse(), Some(ConversationRef::Single(UserId(3), UserId(9))));
        assert_eq!(ConversationId("g:12".into()).parse(), Some(ConversationRef::Group(GroupId(12))));
        for bad in ["s:3:3", "s:9:3", "g:x", "g:-1", "x:1", "s:1", ""] {
            assert_eq!(ConversationId(bad.into()).parse(), None, "{bad}");
        }
        assert_eq!(ConversationRef::Single(UserId(3), UserId(9)).peer_of(UserId(3)), Some(UserId(9)));
        assert_eq!(ConversationRef::Single(UserId(3), UserId(9)).peer_of(UserId(4)), None);
    }

    #[test]
    fn ids_are_strings_on_the_wire_and_either_on_the_way_in() {
        assert_eq!(serde_json::to_string(&UserId(42)).unwrap(), r#""42""#);
        assert_eq!(serde_json::from_str::<GroupId>(r#""7""#).unwrap(), GroupId(7));
        assert_eq!(serde_json::from_str::<GroupId>("7").unwrap(), GroupId(7));
        assert!(serde_json::from_str::<MessageId>(r#""x""#).is_err());
        assert!(FileId("0123456789abcdef0123456789abcdef".into()).is_well_formed());
        assert!(!FileId("../../etc/passwd".into()).is_well_formed());
        assert!(!FileId("0123456789ABCDEF0123456789abcdef".into()).is_well_formed());
    }
}

//! Users: accounts, profiles, login history, and who a verified caller is.

use std::sync::Arc;

use super::ids::{LoginId, SessionId, UserId};

/// A user's self-declared gender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gender {
    /// Not said.
    #[default]
    Unknown,
    /// Male.
    Male,
    /// Female.
    Female,
    /// Something else.
    Other,
}

impl Gender {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Unknown => "unknown",
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
        }
    }

    /// Parses the stored and wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unknown" => Gender::Unknown,
            "male" => Gender::Male,
            "female" => Gender::Female,
            "other" => Gender::Other,
            _ => return None,
        })
    }
}

/// What a user says about themselves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// Display name.
    pub nickname: String,
    /// Avatar URL, or empty.
    pub avatar: String,
    /// Gender.
    pub gender: Gender,
    /// `YYYY-MM-DD`; private to the owner.
    pub birthday: Option<String>,
    /// Age in years.
    pub age: Option<i64>,
    /// Status line.
    pub signature: String,
}

/// An account with its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Unique id.
    pub id: UserId,
    /// Unique login name.
    pub username: String,
    /// The profile.
    pub profile: Profile,
    /// Registration time, Unix ms.
    pub created_at: i64,
}

impl User {
    /// The view anyone else gets: the owner's private fields removed.
    pub fn public(mut self) -> User {
        self.profile.birthday = None;
        self
    }
}

/// A stored account with what is needed to check a login.
#[derive(Debug, Clone)]
pub struct Account {
    /// The user.
    pub user: User,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Current token version.
    pub token_version: i64,
}

/// The transport a request came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The WebSocket.
    Ws,
    /// Plain HTTP.
    Http,
}

impl Transport {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Http => "http",
        }
    }
}

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Client address.
    pub ip: String,
    /// User-Agent or device description.
    pub user_agent: String,
    /// Transport.
    pub transport: Transport,
}

/// One login-log row to write.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    /// The account tried, if the username matched one.
    pub user_id: Option<UserId>,
    /// The username as typed (truncated).
    pub username: String,
    /// When.
    pub at: i64,
    /// Where from.
    pub origin: Origin,
    /// Whether it succeeded.
    pub success: bool,
}

/// One login-log row as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    /// Row id, the paging cursor.
    pub id: LoginId,
    /// When.
    pub at: i64,
    /// Client address.
    pub ip: String,
    /// User-Agent or device.
    pub user_agent: String,
    /// `ws` or `http`.
    pub transport: String,
    /// Whether it succeeded.
    pub success: bool,
}

/// A change to a profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    /// New nickname.
    pub nickname: Option<String>,
    /// New avatar URL ("" clears).
    pub avatar: Option<String>,
    /// New gender.
    pub gender: Option<Gender>,
    /// New birthday (`Some(None)` clears).
    pub birthday: Option<Option<String>>,
    /// New age (`Some(None)` clears).
    pub age: Option<Option<i64>>,
    /// New signature.
    pub signature: Option<String>,
}

/// A verified, unrevoked caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user_id: UserId,
    /// The token's id, for revoking this session alone.
    pub jti: Arc<str>,
    /// Token expiry, Unix ms.
    pub expires_at: i64,
    /// The user's token version the token was issued under; a password reset bumps it.
    pub version: i64,
    /// The node-local session the call came over, if any: pushes about the caller's own action
    /// skip it, since it has the reply.
    pub session: Option<SessionId>,
}

/// Whether someone asks about themselves or about another user.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The caller.
    Me,
    /// Another user by id.
    Id(UserId),
    /// Another user by username.
    Username(String),
}

/// What the token check needs to know about a token's user.
#[derive(Debug, Clone, Copy)]
pub struct TokenState {
    /// The user's current token version.
    pub version: i64,
    /// Whether this token id logged out.
    pub revoked: bool,
}

/// A single-use socket ticket as stored (by its digest): the login token it stands for, so that
/// the session it opens is that token's, revoked with it.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// Hex SHA-256 of the ticket; the ticket itself is never stored.
    pub digest: String,
    /// Whose session it opens.
    pub user_id: UserId,
    /// The login token's id.
    pub jti: Arc<str>,
    /// The login token's version.
    pub token_version: i64,
    /// The login token's expiry, Unix ms.
    pub token_expires_at: i64,
    /// The ticket's expiry, Unix ms.
    pub expires_at: i64,
}

/// A password-reset notification, to be delivered out of band.
#[derive(Debug, Clone)]
pub struct ResetNotice {
    /// The account's username.
    pub username: String,
    /// The account's id.
    pub user_id: UserId,
    /// The single-use secret.
    pub reset_token: String,
    /// A link that carries the secret.
    pub reset_url: String,
    /// When the secret expires, Unix ms.
    pub expires_at: i64,
}

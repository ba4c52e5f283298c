//! Accounts, profiles, the login log and password resets.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Account, FeedEntry, LoginAttempt, LoginId, LoginRecord, Profile, User, UserId};

/// Where users live.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The entries of a user's change feed after position `after`, at most `limit`, and whether
    /// more follow.
    async fn feed_after(&self, user_id: UserId, after: i64, limit: i64) -> Result<(Vec<FeedEntry>, bool)>;
    /// Creates a user with an empty profile; `UserExists` if the name is taken in any case.
    async fn create_user(&self, username: &str, password_hash: &str, now: i64) -> Result<User>;
    /// A user by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>>;
    /// An account by username, whatever its ASCII case, with its credentials.
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>>;
    /// Replaces a user's profile and returns the user.
    async fn update_profile(&self, user_id: UserId, profile: &Profile, now: i64) -> Result<User>;
    /// Users by id (those that exist).
    async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<User>>;
    /// Which of `ids` name users.
    async fn existing_users(&self, ids: &[UserId]) -> Result<Vec<UserId>>;

    /// Appends a login attempt to the log.
    async fn record_login(&self, attempt: &LoginAttempt) -> Result<()>;
    /// A user's login history, newest first, rows with id below `before`.
    async fn login_log(&self, user_id: UserId, before: Option<LoginId>, limit: i64) -> Result<Vec<LoginRecord>>;

    /// Stores a reset secret's hash.
    async fn create_reset(&self, user_id: UserId, token_hash: &str, now: i64, expires_at: i64) -> Result<()>;
    /// Whether a reset secret is usable now: known, unspent and unexpired. A cheap look before
    /// the new password is hashed; spending it still decides.
    async fn reset_usable(&self, token_hash: &str, now: i64) -> Result<bool>;
    /// Spends a usable reset secret: sets the password, voids the user's other secrets and bumps
    /// the token version, all at once. Returns the user, or `None` if the secret is not usable.
    async fn consume_reset(&self, token_hash: &str, password_hash: &str, now: i64) -> Result<Option<UserId>>;
}

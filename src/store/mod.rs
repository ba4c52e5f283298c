//! Persistence. [`Store`] is what the domain needs; [`sql::SqlStore`] implements it on SQLite
//! (the embedded default) and PostgreSQL, chosen by the database URL.
//!
//! Invariants:
//! - Constraint violations become domain errors here (a taken username is `UserExists`), so no
//!   database error text ever reaches a client.
//! - Every multi-row change that must hold together runs in one transaction.

pub mod sql;

use async_trait::async_trait;

use crate::error::Result;
use std::collections::HashMap;

use crate::group::{Group, GroupPatch, Member, NewGroup, Role, Standing};
use crate::user::{Account, LoginAttempt, LoginRecord, Profile, User};

/// What a token check needs to know about its user.
#[derive(Debug, Clone, Copy)]
pub struct TokenState {
    /// The user's current token version.
    pub version: i64,
    /// Whether this token id logged out.
    pub revoked: bool,
}

/// The persistence the domain needs.
#[async_trait]
pub trait Store: Send + Sync {
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;

    /// Creates a user with an empty profile; `UserExists` if the name is taken.
    async fn create_user(&self, username: &str, password_hash: &str, now: i64) -> Result<User>;
    /// A user by id.
    async fn user_by_id(&self, id: i64) -> Result<Option<User>>;
    /// An account by username, with its credentials.
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>>;
    /// Replaces a user's profile and returns the user.
    async fn update_profile(&self, user_id: i64, profile: &Profile, now: i64) -> Result<User>;

    /// The user's token version and whether `jti` is revoked; `None` if the user is gone.
    async fn token_state(&self, user_id: i64, jti: &str) -> Result<Option<TokenState>>;
    /// Revokes one token until its expiry.
    async fn revoke_token(&self, jti: &str, user_id: i64, expires_at: i64) -> Result<()>;

    /// Appends a login attempt to the log.
    async fn record_login(&self, attempt: &LoginAttempt) -> Result<()>;
    /// A user's login history, newest first, rows with id below `before`.
    async fn login_log(
        &self,
        user_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LoginRecord>>;

    /// Stores a reset secret's hash.
    async fn create_reset(
        &self,
        user_id: i64,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// Spends a usable reset secret: sets the password, voids the user's other secrets and bumps
    /// the token version, all at once. Returns the user, or `None` if the secret is not usable.
    async fn consume_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<i64>>;

    /// Which of `ids` name users.
    async fn existing_users(&self, ids: &[i64]) -> Result<Vec<i64>>;

    /// Creates a group with `owner` as owner and `members` as plain members.
    async fn create_group(
        &self,
        new: &NewGroup,
        owner: i64,
        members: &[i64],
        now: i64,
    ) -> Result<Group>;
    /// A group that is not dismissed.
    async fn group(&self, group_id: i64) -> Result<Option<Group>>;
    /// A user's standing in a group, if a member.
    async fn standing(&self, group_id: i64, user_id: i64) -> Result<Option<Standing>>;
    /// The standings of those of `user_ids` who are members, in one query.
    async fn standings(&self, group_id: i64, user_ids: &[i64]) -> Result<HashMap<i64, Standing>>;
    /// Every member's user id.
    async fn member_ids(&self, group_id: i64) -> Result<Vec<i64>>;
    /// Adds plain members (skipping those already in) within the cap, atomically:
    /// `GroupFull` if they do not all fit.
    async fn add_members(&self, group_id: i64, user_ids: &[i64], now: i64) -> Result<Group>;
    /// Removes members (never the owner).
    async fn remove_members(&self, group_id: i64, user_ids: &[i64], now: i64) -> Result<Group>;
    /// Applies an info change.
    async fn update_group(&self, group_id: i64, patch: &GroupPatch, now: i64) -> Result<Group>;
    /// Sets a member's role.
    async fn set_role(&self, group_id: i64, user_id: i64, role: Role, now: i64) -> Result<Group>;
    /// Makes `to` the owner and `from` an admin.
    async fn transfer(&self, group_id: i64, from: i64, to: i64, now: i64) -> Result<Group>;
    /// Marks the group dismissed.
    async fn dismiss(&self, group_id: i64, now: i64) -> Result<()>;
    /// Mutes the whole group until `until`.
    async fn mute_group(&self, group_id: i64, until: i64, now: i64) -> Result<Group>;
    /// Mutes one member until `until`.
    async fn mute_member(&self, group_id: i64, user_id: i64, until: i64, now: i64)
    -> Result<Group>;
    /// The groups a user is in, most recently changed first.
    async fn groups_of(&self, user_id: i64) -> Result<Vec<Group>>;
    /// Members with user id above `after`, by user id.
    async fn members(&self, group_id: i64, after: Option<i64>, limit: i64) -> Result<Vec<Member>>;
}

//! Persistence. [`Store`] is what the domain needs; [`sql::SqlStore`] implements it on SQLite
//! (the embedded default) and PostgreSQL, chosen by the database URL.
//!
//! Invariants:
//! - Constraint violations become domain errors here (a taken username is `UserExists`), so no
//!   database error text ever reaches a client.
//! - Every multi-row change that must hold together runs in one transaction.

mod append;
pub mod sql;

use async_trait::async_trait;

use crate::error::Result;
use std::collections::HashMap;

use crate::conversation::{ConversationPatch, ConversationState};
use crate::group::{Group, GroupPatch, Member, NewGroup, Role, Standing};
use crate::message::{Message, NewMessage};
use crate::user::{Account, LoginAttempt, LoginRecord, Profile, User};

/// An uploaded file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Random hex id.
    pub id: String,
    /// Uploader.
    pub owner_id: i64,
    /// Bytes.
    pub size: i64,
    /// Sniffed media type.
    pub mime: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// Upload time.
    pub created_at: i64,
}

/// What a token check needs to know about its user.
#[derive(Debug, Clone, Copy)]
pub struct TokenState {
    /// The user's current token version.
    pub version: i64,
    /// Whether this token id logged out.
    pub revoked: bool,
}

/// Told of each newly stored message, in commit order, right after its commit and before its
/// sender is answered: so pushes of one conversation leave a node in seq order. It must not
/// block (publishing an event does not).
pub type CommitHook = Box<dyn Fn(&NewMessage, &Message) + Send + Sync>;

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
    async fn login_log(&self, user_id: i64, before: Option<i64>, limit: i64) -> Result<Vec<LoginRecord>>;

    /// Stores a reset secret's hash.
    async fn create_reset(&self, user_id: i64, token_hash: &str, now: i64, expires_at: i64) -> Result<()>;
    /// Spends a usable reset secret: sets the password, voids the user's other secrets and bumps
    /// the token version, all at once. Returns the user, or `None` if the secret is not usable.
    async fn consume_reset(&self, token_hash: &str, password_hash: &str, now: i64) -> Result<Option<i64>>;

    /// Which of `ids` name users.
    async fn existing_users(&self, ids: &[i64]) -> Result<Vec<i64>>;

    /// Creates a group with `owner` as owner and `members` as plain members.
    async fn create_group(&self, new: &NewGroup, owner: i64, members: &[i64], now: i64) -> Result<Group>;
    /// A group that is not dismissed.
    async fn group(&self, group_id: i64) -> Result<Option<Group>>;
    /// A group that is not dismissed, with `user_id`'s standing in it if a member: one read.
    async fn group_with_standing(&self, group_id: i64, user_id: i64) -> Result<Option<(Group, Option<Standing>)>>;
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
    async fn mute_member(&self, group_id: i64, user_id: i64, until: i64, now: i64) -> Result<Group>;
    /// The ids of the (not dismissed) groups a user is in.
    async fn group_ids_of(&self, user_id: i64) -> Result<Vec<i64>>;
    /// The groups a user is in, most recently changed first.
    async fn groups_of(&self, user_id: i64) -> Result<Vec<Group>>;
    /// Members with user id above `after`, by user id.
    async fn members(&self, group_id: i64, after: Option<i64>, limit: i64) -> Result<Vec<Member>>;

    /// Users by id (those that exist).
    async fn users_by_ids(&self, ids: &[i64]) -> Result<Vec<User>>;
    /// Groups by id, dismissed ones included (old conversations still name them).
    async fn groups_by_ids(&self, ids: &[i64]) -> Result<Vec<Group>>;

    /// Stores a message: creates the conversation and, for one-to-one, both participants'
    /// state on first use; allocates the next seq; un-hides the conversation. If the sender
    /// used this `client_msg_id` before, stores nothing and returns the first message with
    /// `false`. `NotFound` if a one-to-one recipient does not exist. Messages arriving together
    /// are committed together (group commit).
    async fn append_message(&self, new: NewMessage) -> Result<(Message, bool)>;
    /// Sets the hook told of every new message; set once, at start-up.
    fn set_commit_hook(&self, hook: CommitHook);
    /// A sender's message by idempotency key.
    async fn message_by_client_id(&self, sender: i64, client_msg_id: &str) -> Result<Option<Message>>;
    /// A message by id.
    async fn message(&self, id: i64) -> Result<Option<Message>>;
    /// Messages by id.
    async fn messages_by_ids(&self, ids: &[i64]) -> Result<Vec<Message>>;
    /// Messages with seq above `after`, ascending.
    async fn messages_after(&self, conversation_id: &str, after: i64, limit: i64) -> Result<Vec<Message>>;
    /// Messages with seq below `before`, descending.
    async fn messages_before(&self, conversation_id: &str, before: i64, limit: i64) -> Result<Vec<Message>>;
    /// Marks a message recalled and empties its content.
    async fn recall(&self, message_id: i64) -> Result<Message>;
    /// Whether `user_id` takes part in a conversation.
    async fn is_participant(&self, conversation_id: &str, user_id: i64) -> Result<bool>;
    /// Participants other than `except` whose read position reached `seq`.
    async fn readers(&self, conversation_id: &str, seq: i64, except: i64) -> Result<Vec<i64>>;
    /// `(conversation, last seq, updated_at)` of each of a user's conversations.
    async fn last_seqs(&self, user_id: i64) -> Result<Vec<(String, i64, i64)>>;

    /// A user's states of all their conversations, or of one.
    async fn conversation_states(&self, user_id: i64, only: Option<&str>) -> Result<Vec<ConversationState>>;
    /// Applies a change to a user's state of a conversation.
    async fn update_conversation_state(
        &self,
        conversation_id: &str,
        user_id: i64,
        patch: &ConversationPatch,
        now: i64,
    ) -> Result<()>;
    /// Moves a read position forward to `seq`, capped at the last seq.
    async fn mark_read(&self, conversation_id: &str, user_id: i64, seq: i64, now: i64) -> Result<()>;

    /// Records an uploaded file.
    async fn create_file(&self, file: &FileMeta) -> Result<()>;
    /// An uploaded file's metadata.
    async fn file(&self, id: &str) -> Result<Option<FileMeta>>;
}

//! Persistence: what the domain needs, as one trait per family ([`UserStore`], [`TokenStore`],
//! [`GroupStore`], [`MessageStore`], [`ConversationStore`], [`FileStore`]), all of them together
//! as [`Store`], and [`sql::SqlStore`], which implements them on SQLite (the embedded default)
//! and PostgreSQL, chosen by the database URL.
//!
//! Invariants:
//! - The store speaks the model's types only; it knows no rule, no wire and no socket.
//! - Constraint violations become typed errors here (a taken username is `UserExists`), so no
//!   database error text ever reaches a client.
//! - Every multi-row change that must hold together runs in one transaction.

mod conversations;
mod files;
mod groups;
mod messages;
pub mod sql;
mod tokens;
mod users;

pub use conversations::ConversationStore;
pub use files::FileStore;
pub use groups::GroupStore;
pub use messages::{CommitHook, Committed, LogHead, LogPage, MessageStore};
pub use tokens::TokenStore;
pub use users::UserStore;

use async_trait::async_trait;

use crate::error::Result;

/// Every family of persistence the domain needs, behind one handle.
#[async_trait]
pub trait Store: UserStore + TokenStore + GroupStore + MessageStore + ConversationStore + FileStore {
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;
}

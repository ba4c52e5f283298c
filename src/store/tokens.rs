//! What a token check asks: the token version of its user, and whether it logged out.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Ticket, TokenState, UserId};

/// Where revocations live.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The user's token version and whether `jti` is revoked; `None` if the user is gone.
    async fn token_state(&self, user_id: UserId, jti: &str) -> Result<Option<TokenState>>;
    /// [`TokenStore::token_state`] of many tokens at once, in order, in a few queries whatever
    /// their number: the periodic revalidation of every live session.
    async fn token_states(&self, tokens: &[(UserId, Arc<str>)]) -> Result<Vec<Option<TokenState>>>;
    /// Stores a socket ticket, and drops expired ones.
    async fn create_ticket(&self, ticket: &Ticket) -> Result<()>;
    /// Removes and returns the ticket with this digest, if any, expired or not: whoever asks
    /// first gets it, on any node, and nobody after.
    async fn take_ticket(&self, digest: &str) -> Result<Option<Ticket>>;
    /// Revokes one token until its expiry.
    async fn revoke_token(&self, jti: &str, user_id: UserId, expires_at: i64) -> Result<()>;
}

//! Each participant's state of their conversations.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{ConversationId, ConversationPatch, ConversationState, UserId};

/// Where conversation states live.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// A user's states of all their conversations, or of one.
    async fn conversation_states(
        &self,
        user_id: UserId,
        only: Option<&ConversationId>,
    ) -> Result<Vec<ConversationState>>;
    /// A user's states of the given conversations (those they take part in).
    async fn conversation_states_in(&self, user_id: UserId, ids: &[ConversationId]) -> Result<Vec<ConversationState>>;
    /// Applies a change to a user's state of a conversation.
    async fn update_conversation_state(
        &self,
        conversation: &ConversationId,
        user_id: UserId,
        patch: &ConversationPatch,
        now: i64,
    ) -> Result<()>;
    /// Moves a read position forward to `seq`, capped at the last seq.
    async fn mark_read(&self, conversation: &ConversationId, user_id: UserId, seq: i64, now: i64) -> Result<()>;
    /// Moves `user_id`'s delivered position forward to `seq` (the caller caps it at the last
    /// seq); whether it moved.
    async fn mark_delivered(&self, conversation: &ConversationId, user_id: UserId, seq: i64) -> Result<bool>;
}

//! [`ConversationStore`] on SQL.

use async_trait::async_trait;

use super::rows::{self, STATE_SELECT};
use super::{SqlStore, sql};
use crate::error::Result;
use crate::model::{ConversationId, ConversationPatch, ConversationState, UserId};
use crate::store::ConversationStore;

#[async_trait]
impl ConversationStore for SqlStore {
    async fn conversation_states(
        &self,
        user_id: UserId,
        only: Option<&ConversationId>,
    ) -> Result<Vec<ConversationState>> {
        let rows = match only {
            Some(id) => {
                let text = format!("{STATE_SELECT} AND c.id = $2");
                sqlx::query(sql(text)).bind(user_id).bind(id).fetch_all(&self.pool).await?
            }
            None => sqlx::query(STATE_SELECT).bind(user_id).fetch_all(&self.pool).await?,
        };
        rows.iter().map(rows::state).collect()
    }

    async fn update_conversation_state(
        &self,
        conversation: &ConversationId,
        user_id: UserId,
        patch: &ConversationPatch,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE conversation_member SET pinned = COALESCE($1, pinned), muted = COALESCE($2, muted), \
             hidden = COALESCE($3, hidden), draft = COALESCE($4, draft), updated_at = $5 \
             WHERE conversation_id = $6 AND user_id = $7",
        )
        .bind(patch.pinned.map(i64::from))
        .bind(patch.muted.map(i64::from))
        .bind(patch.hidden.map(i64::from))
        .bind(patch.draft.as_deref())
        .bind(now)
        .bind(conversation)
        .bind(user_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn mark_read(&self, conversation: &ConversationId, user_id: UserId, seq: i64, now: i64) -> Result<()> {
        // Forward only, and never past the last seq (read in the same statement).
        sqlx::query(
            "UPDATE conversation_member SET \
               read_seq = (SELECT CASE WHEN $1 < c.last_seq THEN $1 ELSE c.last_seq END \
                           FROM conversation c WHERE c.id = $3), \
               updated_at = $2 \
             WHERE conversation_id = $3 AND user_id = $4 \
               AND read_seq < (SELECT CASE WHEN $1 < c.last_seq THEN $1 ELSE c.last_seq END \
                               FROM conversation c WHERE c.id = $3)",
        )
        .bind(seq)
        .bind(now)
        .bind(conversation)
        .bind(user_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

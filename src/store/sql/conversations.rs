//! [`ConversationStore`] on SQL.

use async_trait::async_trait;

use super::rows::{self, STATE_SELECT};
use sqlx::Row;

use super::feed::{self, Whom};
use super::mentions;
use super::{Backend, SqlStore, placeholders, sql};
use crate::error::Result;
use crate::model::{ConversationId, ConversationPatch, ConversationState, FeedKind, UserId};
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

    async fn conversation_states_in(&self, user_id: UserId, ids: &[ConversationId]) -> Result<Vec<ConversationState>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let text = format!("{STATE_SELECT} AND c.id IN ({})", placeholders(2, ids.len()));
        let mut query = sqlx::query(sql(text)).bind(user_id);
        for id in ids {
            query = query.bind(id);
        }
        query.fetch_all(&self.pool).await?.iter().map(rows::state).collect()
    }

    async fn update_conversation_state(
        &self,
        conversation: &ConversationId,
        user_id: UserId,
        patch: &ConversationPatch,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
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
        .execute(&mut *tx)
        .await?;
        feed::record(
            &mut tx,
            self.backend,
            Whom::Users(&[user_id]),
            FeedKind::Conversation,
            conversation.as_str(),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_read(&self, conversation: &ConversationId, user_id: UserId, seq: i64, now: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        // The conversation row's lock orders this with the message writer, which changes the
        // counters under the same lock: the count read here is the one the new position gets.
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let text = format!("SELECT last_seq, countable, mentions_all FROM conversation WHERE id = $1{lock}");
        let Some(row) = sqlx::query(sql(text)).bind(conversation).fetch_optional(&mut *tx).await? else {
            return Ok(());
        };
        let (last_seq, countable, all): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let to = seq.min(last_seq);
        // Forward only, never past the last seq; the messages still unread after the new
        // position are those past it that others sent, and so are the mentions.
        let mention_read = mentions::mention_read("$4", "$5", "$1", "$6");
        let text = format!(
            "UPDATE conversation_member SET read_seq = $1, updated_at = $2, read_countable = $3 - \
               (SELECT COUNT(*) FROM message m WHERE m.conversation_id = $4 AND m.seq > $1 \
                  AND m.sender_id <> $5 AND m.status = 'normal' AND m.kind <> 'system' \
                  AND m.id NOT IN (SELECT h.message_id FROM message_hidden h WHERE h.user_id = $5)), \
               mention_read = {mention_read}, \
               delivered_seq = CASE WHEN delivered_seq < $1 THEN $1 ELSE delivered_seq END \
             WHERE conversation_id = $4 AND user_id = $5 AND read_seq < $1"
        );
        let moved = sqlx::query(sql(text))
            .bind(to)
            .bind(now)
            .bind(countable)
            .bind(conversation)
            .bind(user_id)
            .bind(all)
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() > 0 {
            let whom = Whom::Users(&[user_id]);
            feed::record(&mut tx, self.backend, whom, FeedKind::Conversation, conversation.as_str(), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_delivered(&self, conversation: &ConversationId, user_id: UserId, seq: i64) -> Result<bool> {
        let moved = sqlx::query(
            "UPDATE conversation_member SET delivered_seq = $3 \
             WHERE conversation_id = $1 AND user_id = $2 AND delivered_seq < $3",
        )
        .bind(conversation)
        .bind(user_id)
        .bind(seq)
        .execute(&self.writer)
        .await?;
        Ok(moved.rows_affected() > 0)
    }
}

//! [`MessageStore`] on SQL. Appends go through the group-commit writer ([`super::append`]).

use async_trait::async_trait;
use sqlx::Row;

use super::rows::{self, MESSAGE_COLUMNS};
use super::{SqlStore, sql};
use crate::error::{Error, Result};
use crate::model::{ConversationId, Message, MessageId, NewMessage, UserId};
use crate::store::{CommitHook, MessageStore};

#[async_trait]
impl MessageStore for SqlStore {
    async fn append_message(&self, new: NewMessage) -> Result<(Message, bool)> {
        self.appender.append(new).await
    }

    fn set_commit_hook(&self, hook: CommitHook) {
        self.appender.set_hook(hook);
    }

    async fn message_by_client_id(&self, sender: UserId, client_msg_id: &str) -> Result<Option<Message>> {
        let text = format!("SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.sender_id = $1 AND m.client_msg_id = $2");
        let row = sqlx::query(sql(text)).bind(sender).bind(client_msg_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::message).transpose()
    }

    async fn message(&self, id: MessageId) -> Result<Option<Message>> {
        let text = format!("SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.id = $1");
        let row = sqlx::query(sql(text)).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(rows::message).transpose()
    }

    async fn messages_by_ids(&self, ids: &[MessageId]) -> Result<Vec<Message>> {
        let select = format!("SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.id");
        self.fetch_in(&select, &[], ids.iter().map(|m| m.0)).await?.iter().map(rows::message).collect()
    }

    async fn messages_after(&self, conversation: &ConversationId, after: i64, limit: i64) -> Result<Vec<Message>> {
        let text = format!(
            "SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.conversation_id = $1 AND m.seq > $2 \
             ORDER BY m.seq LIMIT $3"
        );
        let rows = sqlx::query(sql(text)).bind(conversation).bind(after).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(rows::message).collect()
    }

    async fn messages_before(&self, conversation: &ConversationId, before: i64, limit: i64) -> Result<Vec<Message>> {
        let text = format!(
            "SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.conversation_id = $1 AND m.seq < $2 \
             ORDER BY m.seq DESC LIMIT $3"
        );
        let rows = sqlx::query(sql(text)).bind(conversation).bind(before).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(rows::message).collect()
    }

    async fn recall(&self, message_id: MessageId) -> Result<Message> {
        sqlx::query("UPDATE message SET status = 'recalled', content = '{}' WHERE id = $1")
            .bind(message_id)
            .execute(&self.writer)
            .await?;
        self.message(message_id).await?.ok_or(Error::NotFound)
    }

    async fn is_participant(&self, conversation: &ConversationId, user_id: UserId) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) FROM conversation_member WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    async fn readers(&self, conversation: &ConversationId, seq: i64, except: UserId) -> Result<Vec<UserId>> {
        let rows = sqlx::query(
            "SELECT user_id FROM conversation_member WHERE conversation_id = $1 AND read_seq >= $2 AND user_id <> $3 \
             ORDER BY user_id",
        )
        .bind(conversation)
        .bind(seq)
        .bind(except)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn last_seqs(&self, user_id: UserId) -> Result<Vec<(ConversationId, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT c.id, c.last_seq, c.updated_at FROM conversation_member cm \
             JOIN conversation c ON c.id = cm.conversation_id WHERE cm.user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    }
}

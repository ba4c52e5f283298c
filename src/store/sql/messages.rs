//! [`MessageStore`] on SQL. Appends go through the group-commit writer ([`super::append`]).

use async_trait::async_trait;
use sqlx::Row;

use super::feed::{self, Whom};
use super::mentions;
use super::rows::{self, MESSAGE_COLUMNS};
use super::{Backend, SqlStore, placeholders, sql};
use crate::error::Result;
use serde_json::Value;

use crate::model::{
    Change, ConversationId, FeedKind, LogEntry, Message, MessageId, NewChange, NewMessage, Reaction, Turn, UserId,
};
use crate::store::{CommitHook, LogHead, LogPage, MessageStore};

#[async_trait]
impl MessageStore for SqlStore {
    async fn append_message(&self, new: NewMessage, turn: &Turn) -> Result<(Message, bool)> {
        self.appender.append(new, turn).await
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

    async fn mentions_before(
        &self,
        conversation: &ConversationId,
        user_id: UserId,
        before: i64,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let text = format!(
            "SELECT {MESSAGE_COLUMNS} FROM message_mention mm JOIN message m ON m.id = mm.message_id \
             WHERE mm.conversation_id = $1 AND mm.user_id IN ($2, 0) AND mm.seq < $3 AND mm.sender_id <> $2 \
               AND mm.message_id NOT IN (SELECT h.message_id FROM message_hidden h WHERE h.user_id = $2) \
             ORDER BY mm.seq DESC LIMIT $4"
        );
        let query = sqlx::query(sql(text)).bind(conversation).bind(user_id).bind(before).bind(limit);
        query.fetch_all(&self.pool).await?.iter().map(rows::message).collect()
    }

    async fn log_after(&self, conversation: &ConversationId, after: i64, upto: i64, limit: i64) -> Result<LogPage> {
        // Seqs and positions grow together, so the messages made after position `after` are
        // those past the newest seq at or below it: found walking back from the newest, past
        // exactly the messages about to be returned.
        let text = format!(
            "SELECT {MESSAGE_COLUMNS} FROM message m WHERE m.conversation_id = $1 AND m.seq > COALESCE(\
               (SELECT b.seq FROM message b WHERE b.conversation_id = $1 AND b.pos <= $2 ORDER BY b.seq DESC LIMIT 1), 0) \
             AND m.stamp <= $4 ORDER BY m.seq LIMIT $3"
        );
        let query = sqlx::query(sql(text)).bind(conversation).bind(after).bind(limit + 1).bind(upto);
        let rows = query.fetch_all(&self.pool).await?;
        let messages: Vec<Message> = rows.iter().map(rows::message).collect::<Result<_>>()?;
        let rows = sqlx::query(
            "SELECT c.pos, c.kind, c.actor_id, c.data, c.at, c.message_id, m.seq FROM message_change c \
             JOIN message m ON m.id = c.message_id WHERE c.conversation_id = $1 AND c.pos > $2 AND c.stamp <= $4 \
             ORDER BY c.pos LIMIT $3",
        )
        .bind(conversation)
        .bind(after)
        .bind(limit + 1)
        .bind(upto)
        .fetch_all(&self.pool)
        .await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let (kind, data): (String, String) = (row.try_get(1)?, row.try_get(3)?);
            if let Some(what) = rows::changed(&kind, &data) {
                changes.push(Change {
                    conversation_id: conversation.clone(),
                    pos: row.try_get(0)?,
                    message_id: row.try_get(5)?,
                    seq: row.try_get(6)?,
                    by: row.try_get(2)?,
                    at: row.try_get(4)?,
                    what,
                });
            }
        }
        // Each list holds a prefix of its own kind; the first `limit` of both by position are
        // then a prefix of the log.
        let mut page = LogPage::default();
        let (mut messages, mut changes) = (messages.into_iter().peekable(), changes.into_iter().peekable());
        while page.entries.len() < limit as usize {
            let entry = match (messages.peek(), changes.peek()) {
                (Some(m), Some(c)) if m.pos < c.pos => messages.next().map(LogEntry::Message),
                (Some(_), None) => messages.next().map(LogEntry::Message),
                (_, Some(_)) => changes.next().map(LogEntry::Change),
                (None, None) => None,
            };
            let Some(entry) = entry else { break };
            page.entries.push(entry);
        }
        page.has_more = messages.peek().is_some() || changes.peek().is_some();
        Ok(page)
    }

    async fn hide_message(&self, user_id: UserId, message: &Message, now: i64) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        // On PostgreSQL, ordered with the message writer and reads by the conversation row, as
        // they are; the message first, as a change to it locks them, or a recall racing this
        // deadlocks (the hide's row refers to the message, which the recall holds). SQLite's one
        // writer connection orders everything already.
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM message WHERE id = $1 FOR UPDATE")
                .bind(message.id)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query("SELECT id FROM conversation WHERE id = $1 FOR UPDATE")
                .bind(&message.conversation_id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let hidden = sqlx::query(
            "INSERT INTO message_hidden (user_id, message_id, at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, message_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(message.id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if hidden {
            // Still unread for them (someone else's, counted, past their read position): no more.
            sqlx::query(
                "UPDATE conversation_member SET read_countable = read_countable + 1 \
                 WHERE conversation_id = $1 AND user_id = $2 AND read_seq < $3 AND EXISTS \
                   (SELECT 1 FROM message m WHERE m.id = $4 AND m.sender_id <> $2 AND m.status = 'normal' AND m.kind <> 'system')",
            )
            .bind(&message.conversation_id)
            .bind(user_id)
            .bind(message.seq)
            .bind(message.id)
            .execute(&mut *tx)
            .await?;
            mentions::hide(&mut tx, &message.conversation_id, user_id, message.id).await?;
            let whom = Whom::Users(&[user_id]);
            feed::record(&mut tx, self.backend, whom, FeedKind::Hidden, &message.id.to_string(), now).await?;
        }
        tx.commit().await?;
        Ok(hidden)
    }

    async fn hidden_among(&self, user_id: UserId, messages: &[MessageId]) -> Result<Vec<MessageId>> {
        let select = "SELECT message_id FROM message_hidden WHERE user_id = $1 AND message_id";
        let rows = self.fetch_in(select, &[user_id.0], messages.iter().map(|m| m.0)).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn change_message(&self, change: NewChange, turn: &Turn) -> Result<Option<Change>> {
        self.appender.change(change, turn).await
    }

    async fn reactions(&self, messages: &[MessageId], reader: UserId) -> Result<Vec<(MessageId, Reaction)>> {
        let select = "SELECT message_id, reaction, COUNT(*) AS n, MAX(CASE WHEN user_id = $1 THEN 1 ELSE 0 END) AS mine, \
                      MIN(at) AS first FROM message_reaction WHERE message_id";
        let text = format!(
            "{select} IN ({}) GROUP BY message_id, reaction ORDER BY message_id, first, reaction",
            placeholders(2, messages.len())
        );
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::query(sql(text)).bind(reader);
        for id in messages {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let reaction = Reaction {
                    key: row.try_get("reaction")?,
                    count: row.try_get("n")?,
                    mine: row.try_get::<i64, _>("mine")? > 0,
                };
                Ok((row.try_get("message_id")?, reaction))
            })
            .collect()
    }

    async fn versions(&self, message_id: MessageId) -> Result<Vec<(i64, Value, i64)>> {
        let rows = sqlx::query(
            "SELECT version, content, replaced_at FROM message_edit WHERE message_id = $1 ORDER BY version",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let content: String = row.try_get(1)?;
                Ok((row.try_get(0)?, serde_json::from_str(&content).unwrap_or(Value::Null), row.try_get(2)?))
            })
            .collect()
    }

    async fn is_participant(&self, conversation: &ConversationId, user_id: UserId) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) FROM conversation_member WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    async fn readers(
        &self,
        conversation: &ConversationId,
        seq: i64,
        except: UserId,
        read: bool,
        after: UserId,
        limit: i64,
    ) -> Result<Vec<UserId>> {
        let reached = if read { "read_seq >= $2" } else { "read_seq < $2" };
        let text = format!(
            "SELECT user_id FROM conversation_member WHERE conversation_id = $1 AND {reached} AND user_id <> $3 \
             AND user_id > $4 ORDER BY user_id LIMIT $5"
        );
        let query = sqlx::query(sql(text)).bind(conversation).bind(seq).bind(except).bind(after).bind(limit);
        query.fetch_all(&self.pool).await?.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn reactors(&self, message_id: MessageId, key: &str, after: UserId, limit: i64) -> Result<Vec<UserId>> {
        let rows = sqlx::query(
            "SELECT user_id FROM message_reaction WHERE message_id = $1 AND reaction = $2 AND user_id > $3 \
             ORDER BY user_id LIMIT $4",
        )
        .bind(message_id)
        .bind(key)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn reader_counts(&self, conversation: &ConversationId, seq: i64, except: UserId) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN read_seq >= $2 THEN 1 ELSE 0 END), 0), COUNT(*) FROM conversation_member \
             WHERE conversation_id = $1 AND user_id <> $3",
        )
        .bind(conversation)
        .bind(seq)
        .bind(except)
        .fetch_one(&self.pool)
        .await?;
        let (read, all): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok((read, all - read))
    }

    async fn read_positions_past(&self, conversation: &ConversationId, after: i64) -> Result<Vec<(UserId, i64)>> {
        let rows = sqlx::query(
            "SELECT user_id, read_seq FROM conversation_member WHERE conversation_id = $1 AND read_seq > $2",
        )
        .bind(conversation)
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    async fn heads(&self, user_id: UserId) -> Result<Vec<LogHead>> {
        let text = format!("{HEAD_SELECT} WHERE cm.user_id = $1");
        let rows = sqlx::query(sql(text)).bind(user_id).fetch_all(&self.pool).await?;
        rows.iter().map(head).collect()
    }

    async fn clock(&self) -> Result<i64> {
        let row = sqlx::query("SELECT stamp FROM log_clock WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    async fn changed_heads(
        &self,
        user_id: UserId,
        since: i64,
        from: Option<&ConversationId>,
        limit: i64,
    ) -> Result<Vec<LogHead>> {
        let text =
            format!("{HEAD_SELECT} WHERE cm.user_id = $1 AND c.stamp > $2 AND c.id >= $3 ORDER BY c.id LIMIT $4");
        let from = from.map_or("", |c| c.as_str());
        let rows =
            sqlx::query(sql(text)).bind(user_id).bind(since).bind(from).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(head).collect()
    }

    async fn pos_at(&self, conversation: &ConversationId, stamp: i64) -> Result<i64> {
        // Stamps grow with positions in a conversation, so each walk goes back from the newest
        // entry past exactly the entries stamped later: the ones sync is about to send.
        let row = sqlx::query(
            "SELECT COALESCE((SELECT m.pos FROM message m WHERE m.conversation_id = $1 AND m.stamp <= $2 \
               ORDER BY m.seq DESC LIMIT 1), 0), \
             COALESCE((SELECT c.pos FROM message_change c WHERE c.conversation_id = $1 AND c.stamp <= $2 \
               ORDER BY c.pos DESC LIMIT 1), 0)",
        )
        .bind(conversation)
        .bind(stamp)
        .fetch_one(&self.pool)
        .await?;
        let (message, change): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok(message.max(change))
    }
}

/// Where a user's conversations stand, joined from their memberships.
const HEAD_SELECT: &str = "SELECT c.id, c.last_seq, c.last_pos, c.log_floor, c.updated_at FROM conversation_member cm \
                           JOIN conversation c ON c.id = cm.conversation_id";

fn head(r: &sqlx::any::AnyRow) -> Result<LogHead> {
    Ok(LogHead {
        conversation_id: r.try_get(0)?,
        last_seq: r.try_get(1)?,
        last_pos: r.try_get(2)?,
        log_floor: r.try_get(3)?,
        updated_at: r.try_get(4)?,
    })
}

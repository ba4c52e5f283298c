//! Changes to messages inside the writer's transaction, and the conversation log's rows.
//!
//! A change is checked against the message's state in the same transaction that applies it, so
//! two changes racing (an edit and a recall, two reactions at a key's limit) are decided by the
//! database, not by whichever check ran first. On PostgreSQL the message row is locked for
//! that: several nodes write at once. On SQLite this writer is the only one.

use serde_json::{Value, json};
use sqlx::Row;

use super::super::Backend;
use super::super::mentions;
use super::super::statement::{Statement, Tx};
use crate::error::{Error, Result};
use crate::model::change::MAX_REACTION_KEYS;
use crate::model::{Alteration, Changed, ConversationId, MessageId, NewChange, Status, UserId};

/// What becomes of a change.
pub(super) enum ChangeFate {
    /// Applied to the message with this seq; it takes a position (0 until allocated).
    Applied {
        /// The message's seq.
        seq: i64,
        /// The state it left.
        what: Changed,
        /// Its log position.
        pos: i64,
    },
    /// The message is in that state already: nothing is logged.
    Same,
    /// Not applied.
    Refused(Error),
}

/// Applies `change`; a database failure fails the batch, a refusal only the change.
pub(super) async fn apply(tx: &mut Tx<'_>, backend: Backend, change: &NewChange) -> Result<ChangeFate> {
    let lock = if backend == Backend::Postgres { " FOR UPDATE" } else { "" };
    let text = format!(
        "SELECT seq, status, content, kind, sender_id FROM message WHERE id = $1 AND conversation_id = $2{lock}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(text))
        .bind(change.message_id)
        .bind(&change.conversation_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(ChangeFate::Refused(Error::NotFound)) };
    let seq: i64 = row.try_get(0)?;
    let status = Status::parse(&row.try_get::<String, _>(1)?).unwrap_or(Status::Normal);
    let counted = status == Status::Normal && row.try_get::<String, _>(3)? != "system";
    let id = change.message_id;
    let what = match &change.what {
        Alteration::Recall if status != Status::Normal => return Ok(ChangeFate::Same),
        Alteration::Recall => {
            empty(tx, id, Status::Recalled).await?;
            uncount(tx, change, seq, row.try_get(4)?, counted).await?;
            Changed::Recalled
        }
        Alteration::Delete if status == Status::Deleted => return Ok(ChangeFate::Same),
        Alteration::Delete => {
            empty(tx, id, Status::Deleted).await?;
            uncount(tx, change, seq, row.try_get(4)?, counted).await?;
            Changed::Deleted
        }
        _ if status != Status::Normal => return Ok(ChangeFate::Refused(Error::NotEditable)),
        // An edit to what it says already (a retry whose answer was lost) changes nothing.
        Alteration::Edit { content }
            if serde_json::from_str::<Value>(&row.try_get::<String, _>(2)?).ok().as_ref() == Some(content) =>
        {
            return Ok(ChangeFate::Same);
        }
        Alteration::Edit { content } => {
            edit(tx, id, content, change.at).await?;
            Changed::Edited { content: content.clone() }
        }
        Alteration::React { key } => match react(tx, change, key).await? {
            Some(fate) => return Ok(fate),
            None => Changed::Reaction { key: key.clone(), count: key_count(tx, id, key).await?, added: true },
        },
        Alteration::Unreact { key } => {
            let removed =
                sqlx::query("DELETE FROM message_reaction WHERE message_id = $1 AND reaction = $2 AND user_id = $3")
                    .bind(id)
                    .bind(key)
                    .bind(change.by)
                    .execute(&mut **tx)
                    .await?;
            if removed.rows_affected() == 0 {
                return Ok(ChangeFate::Same);
            }
            Changed::Reaction { key: key.clone(), count: key_count(tx, id, key).await?, added: false }
        }
    };
    Ok(ChangeFate::Applied { seq, what, pos: 0 })
}

/// Recalls or deletes a message: its content, earlier versions and reactions go with it.
async fn empty(tx: &mut Tx<'_>, id: MessageId, status: Status) -> Result<()> {
    sqlx::query("UPDATE message SET status = $2, content = '{}' WHERE id = $1")
        .bind(id)
        .bind(status.as_str())
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM message_edit WHERE message_id = $1").bind(id).execute(&mut **tx).await?;
    sqlx::query("DELETE FROM message_reaction WHERE message_id = $1").bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// Takes a message that counted as unread out of the unread counters: from the conversation's
/// countable messages, and from what each participant who had read it (or sent it, or hidden
/// it) holds, so that only those for whom it was unread see their count drop. Its mentions go
/// the same way.
async fn uncount(tx: &mut Tx<'_>, change: &NewChange, seq: i64, sender: UserId, counted: bool) -> Result<()> {
    mentions::unmention(tx, &change.conversation_id, change.message_id, seq, sender).await?;
    if !counted {
        return Ok(());
    }
    sqlx::query("UPDATE conversation SET countable = countable - 1 WHERE id = $1")
        .bind(&change.conversation_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE conversation_member SET read_countable = read_countable - 1 WHERE conversation_id = $1 \
         AND (read_seq >= $2 OR user_id = $3 OR user_id IN (SELECT user_id FROM message_hidden WHERE message_id = $4))",
    )
    .bind(&change.conversation_id)
    .bind(seq)
    .bind(sender)
    .bind(change.message_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Keeps the content as the next earlier version and puts `content` in its place.
async fn edit(tx: &mut Tx<'_>, id: MessageId, content: &Value, at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_edit (message_id, version, content, replaced_at) \
         SELECT id, (SELECT COUNT(*) FROM message_edit WHERE message_id = $1) + 1, content, $2 \
         FROM message WHERE id = $1",
    )
    .bind(id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    let text = serde_json::to_string(content).map_err(Error::internal)?;
    sqlx::query("UPDATE message SET content = $2, edited_at = $3 WHERE id = $1")
        .bind(id)
        .bind(text)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Adds the reaction; `Some` when that ends the change (already there, or no room for a key).
async fn react(tx: &mut Tx<'_>, change: &NewChange, key: &str) -> Result<Option<ChangeFate>> {
    let row = sqlx::query(
        "SELECT COUNT(DISTINCT reaction), COUNT(CASE WHEN reaction = $2 THEN 1 END) \
         FROM message_reaction WHERE message_id = $1",
    )
    .bind(change.message_id)
    .bind(key)
    .fetch_one(&mut **tx)
    .await?;
    let (keys, with_key): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    if with_key == 0 && keys >= MAX_REACTION_KEYS {
        return Ok(Some(ChangeFate::Refused(Error::ReactionsFull)));
    }
    let added = sqlx::query(
        "INSERT INTO message_reaction (message_id, user_id, reaction, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (message_id, reaction, user_id) DO NOTHING",
    )
    .bind(change.message_id)
    .bind(change.by)
    .bind(key)
    .bind(change.at)
    .execute(&mut **tx)
    .await?;
    Ok((added.rows_affected() == 0).then_some(ChangeFate::Same))
}

async fn key_count(tx: &mut Tx<'_>, id: MessageId, key: &str) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) FROM message_reaction WHERE message_id = $1 AND reaction = $2")
        .bind(id)
        .bind(key)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get(0)?)
}

/// One row of a conversation's log.
pub(super) struct Entry<'a> {
    pub conversation_id: &'a ConversationId,
    pub pos: i64,
    pub message_id: MessageId,
    pub kind: &'static str,
    pub actor: UserId,
    pub data: String,
    pub at: i64,
}

/// What a change's log row keeps of the state it left.
pub(super) fn data_of(what: &Changed) -> String {
    match what {
        Changed::Recalled | Changed::Deleted => "{}".to_owned(),
        Changed::Edited { content } => json!({ "content": content }).to_string(),
        Changed::Reaction { key, count, .. } => json!({ "key": key, "count": count }).to_string(),
    }
}

/// Writes the batch's log rows in one statement.
pub(super) async fn log(tx: &mut Tx<'_>, backend: Backend, entries: Vec<Entry<'_>>, stamp: i64) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = Statement::new(
        backend,
        "INSERT INTO message_change (conversation_id, pos, message_id, kind, actor_id, data, at, stamp) VALUES ",
    );
    for (i, entry) in entries.into_iter().enumerate() {
        insert.sql(if i == 0 { "(" } else { ", (" });
        insert.bind(entry.conversation_id.clone())?.sql(", ").bind(entry.pos)?.sql(", ").bind(entry.message_id)?;
        insert.sql(", ").bind(entry.kind)?.sql(", ").bind(entry.actor)?.sql(", ").bind(entry.data)?;
        insert.sql(", ").bind(entry.at)?.sql(", ").bind(stamp)?.sql(")");
    }
    insert.run(tx).await
}

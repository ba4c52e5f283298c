//! Mentions and their unread counters (see `migrations/*/0011_mentions.sql`).
//!
//! A participant's `mentionUnread` is `conversation.mentions_all + member.mentioned -
//! member.mention_read`. Sending a mention moves the first two (one row per conversation for
//! `@all`, one per listed user), so a message costs the same whatever the group's size; a read
//! recounts the third from the mentions still unread past the new position, which are few.

use sqlx::Row;

use super::Backend;
use super::statement::{Statement, Tx};
use crate::error::Result;
use crate::model::{ConversationId, Mentions, MessageId, NewMessage, UserId};

/// `mention_read` for the member row being updated, once its read position is `{read}`: every
/// mention of it but those past `{read}` that others sent and it has not hidden. `{conversation}`,
/// `{user}` and `{all}` (the conversation's `mentions_all`) are SQL expressions.
pub(super) fn mention_read(conversation: &str, user: &str, read: &str, all: &str) -> String {
    format!(
        "CASE WHEN {all} + mentioned = 0 THEN 0 ELSE {all} + mentioned - \
           (SELECT COUNT(*) FROM message_mention mm WHERE mm.conversation_id = {conversation} \
              AND mm.user_id IN ({user}, 0) AND mm.seq > {read} AND mm.sender_id <> {user} \
              AND mm.message_id NOT IN (SELECT h.message_id FROM message_hidden h WHERE h.user_id = {user})) END"
    )
}

/// A new message of a batch, placed: its conversation, seq, id and sender, and whom it mentions.
pub(super) struct Placed<'b> {
    pub(super) new: &'b NewMessage,
    pub(super) seq: i64,
    pub(super) id: MessageId,
}

/// Records whom the batch's new messages mention, and counts the listed users' mentions:
/// nothing at all when none mentions anyone. (`@all` is counted on the conversation row, with
/// its seqs.)
pub(super) async fn record(tx: &mut Tx<'_>, backend: Backend, placed: &[Placed<'_>]) -> Result<()> {
    let mut rows: Vec<(&ConversationId, UserId, i64, MessageId, UserId)> = Vec::new();
    for p in placed {
        let to = |user| (&p.new.conversation_id, user, p.seq, p.id, p.new.from);
        match &p.new.mentions {
            Mentions::None => {}
            Mentions::All => rows.push(to(UserId(0))),
            Mentions::Users(users) => rows.extend(users.iter().map(|u| to(*u))),
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = Statement::new(
        backend,
        "INSERT INTO message_mention (conversation_id, user_id, seq, message_id, sender_id) VALUES ",
    );
    for (i, (conversation, user, seq, id, from)) in rows.iter().enumerate() {
        insert.sql(if i == 0 { "(" } else { ", (" });
        insert.bind((*conversation).clone())?.sql(", ").bind(*user)?.sql(", ").bind(*seq)?.sql(", ");
        insert.bind(*id)?.sql(", ").bind(*from)?.sql(")");
    }
    insert.run(tx).await?;
    let listed: Vec<_> = rows.iter().filter(|r| r.1 != UserId(0)).collect();
    if listed.is_empty() {
        return Ok(());
    }
    let mut count = Statement::new(
        backend,
        "UPDATE conversation_member SET mentioned = mentioned + v.column3 FROM (SELECT column1, column2, COUNT(*) AS column3 FROM (VALUES ",
    );
    for (i, (conversation, user, ..)) in listed.iter().enumerate() {
        count.sql(if i == 0 { "(" } else { ", (" });
        count.bind((*conversation).clone())?.sql(", ").bind(*user)?.sql(")");
    }
    count.sql(
        ") AS l GROUP BY column1, column2) AS v \
         WHERE conversation_member.conversation_id = v.column1 AND conversation_member.user_id = v.column2",
    );
    count.run(tx).await
}

/// Takes a recalled or deleted message's mentions out of the counters: from the conversation's
/// `@all` count and the listed users' counts, and from what each mentioned participant for whom
/// it was not unread (read past it, sent it, or hid it) holds; then forgets them.
pub(super) async fn unmention(
    tx: &mut Tx<'_>,
    conversation: &ConversationId,
    message: MessageId,
    seq: i64,
    sender: UserId,
) -> Result<()> {
    let rows = sqlx::query("SELECT user_id FROM message_mention WHERE message_id = $1")
        .bind(message)
        .fetch_all(&mut **tx)
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let all = rows.iter().any(|r| r.try_get::<UserId, _>(0).is_ok_and(|u| u == UserId(0)));
    if all {
        sqlx::query("UPDATE conversation SET mentions_all = mentions_all - 1 WHERE id = $1")
            .bind(conversation)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(
        "UPDATE conversation_member SET \
           mentioned = mentioned - CASE WHEN user_id IN (SELECT user_id FROM message_mention WHERE message_id = $2) THEN 1 ELSE 0 END, \
           mention_read = mention_read - CASE WHEN read_seq >= $3 OR user_id = $4 \
             OR user_id IN (SELECT user_id FROM message_hidden WHERE message_id = $2) THEN 1 ELSE 0 END \
         WHERE conversation_id = $1 AND ($5 = 1 OR user_id IN (SELECT user_id FROM message_mention WHERE message_id = $2))",
    )
    .bind(conversation)
    .bind(message)
    .bind(seq)
    .bind(sender)
    .bind(i64::from(all))
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM message_mention WHERE message_id = $1").bind(message).execute(&mut **tx).await?;
    Ok(())
}

/// A message `user` hid no longer mentions them unread: counts it as read for them when it
/// mentioned them, someone else sent it, and it was past their read position.
pub(super) async fn hide(
    tx: &mut Tx<'_>,
    conversation: &ConversationId,
    user: UserId,
    message: MessageId,
) -> Result<()> {
    sqlx::query(
        "UPDATE conversation_member SET mention_read = mention_read + 1 \
         WHERE conversation_id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM message_mention mm \
           WHERE mm.message_id = $3 AND mm.user_id IN ($2, 0) AND mm.sender_id <> $2 AND mm.seq > conversation_member.read_seq)",
    )
    .bind(conversation)
    .bind(user)
    .bind(message)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

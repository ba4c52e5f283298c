//! The message half of a batch: who the one-to-one recipients are, which conversations and
//! participant states are new, which sends are retries, and the rows of the new messages.

use std::collections::HashMap;

use sqlx::Row;

use super::super::Backend;
use super::super::rows::{self, MESSAGE_COLUMNS};
use super::super::statement::{Statement, Tx};
use crate::error::{Error, Result};
use crate::model::{ConversationId, FileId, Message, MessageId, NewMessage, Recipient, Status, UserId};

/// What happens to each message of a batch.
pub(super) enum Fate {
    /// Sent before: answered with the stored message.
    Stored(Box<Message>),
    /// The same key earlier in this batch: answered with what that one became.
    SameAs(usize),
    /// Inserted with this seq and log position (0 until they are allocated).
    New {
        /// Its seq.
        seq: i64,
        /// Its log position.
        pos: i64,
    },
    /// Not stored: its one-to-one recipient does not exist.
    NoRecipient,
}

/// The ids of stored messages, by conversation and seq.
pub(super) type Ids = HashMap<(ConversationId, i64), MessageId>;

/// What becomes of each of `news`, before seqs are allocated: the conversations and
/// participant states they need exist once this returns.
pub(super) async fn prepare(tx: &mut Tx<'_>, backend: Backend, news: &[&NewMessage]) -> Result<Vec<Fate>> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let known = existing_recipients(tx, backend, news).await?;
    let storable = |new: &NewMessage| match new.to {
        Recipient::Group(_) => true,
        Recipient::User(user) => known.contains(&user),
    };
    if !news.iter().any(|n| storable(n)) {
        return Ok(news.iter().map(|_| Fate::NoRecipient).collect());
    }
    let mut firsts: Vec<&NewMessage> = Vec::new();
    for new in news.iter().filter(|n| storable(n)) {
        if !firsts.iter().any(|c| c.conversation_id == new.conversation_id) {
            firsts.push(new);
        }
    }
    create_conversations(tx, backend, &firsts, news[0].sent_at).await?;
    let stored = earlier_sends(tx, backend, news).await?;
    Ok(fates_of(news, storable, stored))
}

/// Inserts the new messages, once their seqs and positions are placed, and points their
/// conversations (`counts`: the new messages of each) at them; returns their ids.
pub(super) async fn insert(
    tx: &mut Tx<'_>,
    backend: Backend,
    news: &[&NewMessage],
    fates: &[Fate],
    counts: &[(&ConversationId, i64)],
    stamp: i64,
) -> Result<Ids> {
    let ids = insert_messages(tx, backend, news, fates, stamp).await?;
    share_files(tx, backend, news, fates).await?;
    finish_conversations(tx, backend, counts, news, fates, &ids).await?;
    Ok(ids)
}

/// Which one-to-one recipients of the batch exist.
async fn existing_recipients(tx: &mut Tx<'_>, backend: Backend, batch: &[&NewMessage]) -> Result<Vec<UserId>> {
    let recipients: Vec<UserId> = batch
        .iter()
        .filter_map(|n| match n.to {
            Recipient::User(user) => Some(user),
            Recipient::Group(_) => None,
        })
        .collect();
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    let mut users = Statement::new(backend, "SELECT id FROM users WHERE id IN (");
    users.list(recipients.iter().copied())?.sql(")");
    users.rows(tx).await?.iter().map(|row| Ok(row.try_get::<UserId, _>(0)?)).collect()
}

/// Creates the conversations the batch writes to where they are new, and a one-to-one
/// conversation's participant states on first use.
async fn create_conversations(tx: &mut Tx<'_>, backend: Backend, firsts: &[&NewMessage], now: i64) -> Result<()> {
    let mut insert = Statement::new(
        backend,
        "INSERT INTO conversation (id, chat_type, group_id, last_seq, created_at, updated_at) VALUES ",
    );
    for (i, new) in firsts.iter().enumerate() {
        let group_id = match new.to {
            Recipient::Group(group) => Some(group),
            Recipient::User(_) => None,
        };
        insert.sql(if i == 0 { "(" } else { ", (" });
        insert.bind(new.conversation_id.clone())?.sql(", ").bind(new.to.chat_type().as_str())?.sql(", ");
        insert.bind(group_id)?.sql(", 0, ").bind(new.sent_at)?.sql(", ").bind(new.sent_at)?.sql(")");
    }
    insert.sql(" ON CONFLICT (id) DO NOTHING");
    insert.run(tx).await?;

    let states: Vec<(&ConversationId, UserId)> =
        firsts.iter().flat_map(|c| c.participants.iter().map(|p| (&c.conversation_id, *p))).collect();
    if states.is_empty() {
        return Ok(());
    }
    let mut add = Statement::new(
        backend,
        "INSERT INTO conversation_member (conversation_id, user_id, read_seq, read_countable, mention_read, updated_at) \
         SELECT c.id, u.id, c.last_seq, c.countable, c.mentions_all, ",
    );
    add.bind(now)?.sql(" FROM (VALUES ");
    for (i, (conversation, user)) in states.iter().enumerate() {
        add.sql(if i == 0 { "(" } else { ", (" });
        add.bind((*conversation).clone())?.sql(", ").bind(*user)?.sql(")");
    }
    add.sql(
        ") AS v JOIN conversation c ON c.id = v.column1 JOIN users u ON u.id = v.column2 \
         WHERE true ON CONFLICT (conversation_id, user_id) DO NOTHING",
    );
    add.run(tx).await
}

/// Messages stored earlier under the batch's `(sender, clientMsgId)` keys.
async fn earlier_sends(
    tx: &mut Tx<'_>,
    backend: Backend,
    batch: &[&NewMessage],
) -> Result<HashMap<(UserId, String), Message>> {
    let mut lookup = Statement::new(backend, &format!("SELECT {MESSAGE_COLUMNS} FROM (VALUES "));
    for (i, new) in batch.iter().enumerate() {
        lookup.sql(if i == 0 { "(" } else { ", (" });
        lookup.bind(new.from)?.sql(", ").bind(new.client_msg_id.clone())?.sql(")");
    }
    lookup.sql(") AS v JOIN message m ON m.sender_id = v.column1 AND m.client_msg_id = v.column2");
    let mut stored = HashMap::new();
    for row in lookup.rows(tx).await? {
        let message = rows::message(&row)?;
        stored.insert((message.from, message.client_msg_id.clone()), message);
    }
    Ok(stored)
}

/// What becomes of each message.
fn fates_of(
    batch: &[&NewMessage],
    storable: impl Fn(&NewMessage) -> bool,
    mut stored: HashMap<(UserId, String), Message>,
) -> Vec<Fate> {
    let mut fates = Vec::with_capacity(batch.len());
    let mut first_of: HashMap<(UserId, &str), usize> = HashMap::new();
    for (i, new) in batch.iter().enumerate() {
        let key = (new.from, new.client_msg_id.as_str());
        if !storable(new) {
            fates.push(Fate::NoRecipient);
        } else if let Some(message) = stored.remove(&(new.from, new.client_msg_id.clone())) {
            first_of.insert(key, i);
            fates.push(Fate::Stored(Box::new(message)));
        } else if let Some(&first) = first_of.get(&key) {
            fates.push(Fate::SameAs(first));
        } else {
            first_of.insert(key, i);
            fates.push(Fate::New { seq: 0, pos: 0 });
        }
    }
    fates
}

/// Inserts the new messages in one statement and returns their ids.
async fn insert_messages(
    tx: &mut Tx<'_>,
    backend: Backend,
    batch: &[&NewMessage],
    fates: &[Fate],
    stamp: i64,
) -> Result<Ids> {
    // SQLite has one writer, this task: the ids it would give follow the largest so far, and
    // naming them saves sending one row back per message. PostgreSQL's come back.
    let mut next_id = match backend {
        Backend::Sqlite => {
            let max = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM message").fetch_one(&mut **tx).await?;
            Some(max.try_get::<i64, _>(0)? + 1)
        }
        Backend::Postgres => None,
    };
    let columns = "conversation_id, seq, pos, chat_type, sender_id, recipient, kind, content, client_msg_id, sent_at";
    let mut insert = match next_id {
        Some(_) => Statement::new(backend, &format!("INSERT INTO message (id, {columns}, status, stamp) VALUES ")),
        None => Statement::new(backend, &format!("INSERT INTO message ({columns}, status, stamp) VALUES ")),
    };
    // One value for every row: written as a literal (it is a number the writer made) rather
    // than bound once per row.
    let stamped = format!(", 'normal', {stamp})");
    let mut ids = Ids::new();
    let mut first = true;
    for (fate, new) in fates.iter().zip(batch) {
        let Fate::New { seq, pos } = fate else { continue };
        let content = serde_json::to_string(&new.content).map_err(Error::internal)?;
        insert.sql(if first { "(" } else { ", (" });
        first = false;
        if let Some(id) = next_id.as_mut() {
            ids.insert((new.conversation_id.clone(), *seq), MessageId(*id));
            insert.bind(*id)?.sql(", ");
            *id += 1;
        }
        insert.bind(new.conversation_id.clone())?.sql(", ").bind(*seq)?.sql(", ").bind(*pos)?.sql(", ");
        insert.bind(new.to.chat_type().as_str())?.sql(", ").bind(new.from)?.sql(", ").bind(new.to.raw())?.sql(", ");
        insert.bind(new.kind.clone())?.sql(", ").bind(content)?.sql(", ").bind(new.client_msg_id.clone())?;
        insert.sql(", ").bind(new.sent_at)?.sql(&stamped);
    }
    if next_id.is_some() {
        insert.run(tx).await?;
    } else {
        insert.sql(" RETURNING id, conversation_id, seq");
        for row in insert.rows(tx).await? {
            ids.insert((row.try_get(1)?, row.try_get(2)?), row.try_get(0)?);
        }
    }
    Ok(ids)
}

/// Makes the files the batch's new messages reference readable in their conversations: one
/// statement, only when some message references a file.
async fn share_files(tx: &mut Tx<'_>, backend: Backend, batch: &[&NewMessage], fates: &[Fate]) -> Result<()> {
    let mut refs: Vec<(&FileId, &ConversationId)> = Vec::new();
    for (fate, new) in fates.iter().zip(batch) {
        if matches!(fate, Fate::New { .. }) {
            for file in &new.files {
                if !refs.contains(&(file, &new.conversation_id)) {
                    refs.push((file, &new.conversation_id));
                }
            }
        }
    }
    if refs.is_empty() {
        return Ok(());
    }
    let mut insert = Statement::new(backend, "INSERT INTO file_ref (file_id, scope) VALUES ");
    for (i, (file, conversation)) in refs.into_iter().enumerate() {
        insert.sql(if i == 0 { "(" } else { ", (" });
        insert.bind(file.clone())?.sql(", ").bind(conversation.clone())?.sql(")");
    }
    insert.sql(" ON CONFLICT (file_id, scope) DO NOTHING");
    insert.run(tx).await
}

/// Points each conversation at its newest message, and un-hides it for every participant.
async fn finish_conversations(
    tx: &mut Tx<'_>,
    backend: Backend,
    counts: &[(&ConversationId, i64)],
    news: &[&NewMessage],
    fates: &[Fate],
    ids: &Ids,
) -> Result<()> {
    let mut newest: HashMap<&ConversationId, i64> = HashMap::new();
    for (new, fate) in news.iter().zip(fates) {
        if let Fate::New { seq, .. } = fate {
            let top = newest.entry(&new.conversation_id).or_default();
            *top = (*top).max(*seq);
        }
    }
    let mut last = Statement::new(backend, "UPDATE conversation SET last_message_id = CASE id");
    for (conversation, _) in counts {
        let seq = newest.get(*conversation).copied().unwrap_or(0);
        let id = ids.get(&((*conversation).clone(), seq)).copied();
        last.sql(" WHEN ").bind((*conversation).clone())?.sql(" THEN ").bind(id)?;
    }
    last.sql(" END WHERE id IN (").list(counts.iter().map(|(c, _)| (*c).clone()))?.sql(")");
    last.run(tx).await?;
    let mut unhide =
        Statement::new(backend, "UPDATE conversation_member SET hidden = 0 WHERE hidden = 1 AND conversation_id IN (");
    unhide.list(counts.iter().map(|(c, _)| (*c).clone()))?.sql(")");
    unhide.run(tx).await
}

/// Each message's answer, in the batch's order.
pub(super) fn answers(batch: &[&NewMessage], fates: Vec<Fate>, ids: &Ids) -> Result<Vec<Result<(Message, bool)>>> {
    let mut out: Vec<Result<(Message, bool)>> = Vec::with_capacity(batch.len());
    for (fate, new) in fates.into_iter().zip(batch) {
        let result = match fate {
            Fate::Stored(message) => Ok((*message, false)),
            Fate::SameAs(first) => match &out[first] {
                Ok((message, _)) => Ok((message.clone(), false)),
                Err(_) => Err(Error::NotFound),
            },
            Fate::New { seq, pos } => {
                let id = ids
                    .get(&(new.conversation_id.clone(), seq))
                    .copied()
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("an inserted message returned no id")))?;
                Ok((stored_message(new, id, seq, pos), true))
            }
            Fate::NoRecipient => Err(Error::NotFound),
        };
        out.push(result);
    }
    Ok(out)
}

fn stored_message(new: &NewMessage, id: MessageId, seq: i64, pos: i64) -> Message {
    Message {
        id,
        conversation_id: new.conversation_id.clone(),
        seq,
        from: new.from,
        to: new.to,
        kind: new.kind.clone(),
        content: new.content.clone(),
        client_msg_id: new.client_msg_id.clone(),
        sent_at: new.sent_at,
        status: Status::Normal,
        pos,
        edited_at: None,
        reactions: Vec::new(),
        quote: new.quote.clone(),
    }
}

//! Group commit for messages: one writer task takes every message that is waiting and stores
//! them all in one transaction, in about seven statements whatever their number, then answers
//! each sender.
//!
//! Why: a message costs a transaction of its own otherwise, and on SQLite every statement is a
//! round trip to the connection's worker thread; batching amortizes both, so the commit rate
//! grows with the load instead of capping it.
//!
//! Invariants, as for a lone message:
//! - A sender is answered only after the transaction holding its message committed.
//! - Seqs are allocated by one update of each conversation row in that transaction, so they stay
//!   gapless and ordered by arrival; a transaction that fails allocates nothing.
//! - A repeated `(sender, clientMsgId)`, in the database or twice in one batch, stores nothing
//!   and answers with the first message.
//! - A batch that fails is retried one message at a time, so one bad message (a dismissed
//!   group, a lost race with another node) fails alone.
//! - The commit hook sees new messages in commit order, before their senders are answered: one
//!   task does both, so a node's pushes of a conversation leave in seq order.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{AnyPool, Arguments, Encode, Row, Type};
use tokio::sync::{mpsc, oneshot};

use super::Backend;
use super::rows::{self, MESSAGE_COLUMNS};
use crate::error::{Error, Result};
use crate::model::{ConversationId, FileId, Message, MessageId, NewMessage, Recipient, Status, UserId};
use crate::store::CommitHook;

/// Messages stored by one transaction at most. Ten values each keeps a full batch far below
/// both databases' limits on bound values.
const MAX_BATCH: usize = 256;
/// Messages that may wait for the writer; senders beyond wait to queue.
const QUEUE: usize = 4096;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// A message waiting for the writer, and where its answer goes.
struct Pending {
    new: NewMessage,
    reply: oneshot::Sender<Result<(Message, bool)>>,
}

/// The handle senders use; the writer task ends when it is dropped.
pub struct Appender {
    queue: mpsc::Sender<Pending>,
    hook: Arc<OnceLock<CommitHook>>,
}

impl Appender {
    /// Starts the writer on `writer`, a pool of `backend`.
    pub fn start(writer: AnyPool, backend: Backend) -> Appender {
        let (queue, rx) = mpsc::channel(QUEUE);
        let hook = Arc::new(OnceLock::new());
        tokio::spawn(run(writer, backend, rx, hook.clone()));
        Appender { queue, hook }
    }

    /// Sets the hook told of each new message in commit order (once; later calls are ignored).
    pub fn set_hook(&self, hook: CommitHook) {
        let _ = self.hook.set(hook);
    }

    /// Stores a message (see [`crate::store::MessageStore::append_message`]) once its batch
    /// commits.
    pub async fn append(&self, new: NewMessage) -> Result<(Message, bool)> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { new, reply })
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("the message writer stopped")))?;
        answer.await.map_err(|_| Error::internal(anyhow::anyhow!("the message writer dropped a message")))?
    }
}

async fn run(writer: AnyPool, backend: Backend, mut rx: mpsc::Receiver<Pending>, hook: Arc<OnceLock<CommitHook>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let answer = |pending: Pending, result: Result<(Message, bool)>| {
        if let (Ok((message, true)), Some(hook)) = (&result, hook.get()) {
            hook(&pending.new, message);
        }
        let _ = pending.reply.send(result);
    };
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let news: Vec<&NewMessage> = batch.iter().map(|p| &p.new).collect();
        match store_batch(&writer, backend, &news).await {
            Ok(stored) => {
                for (pending, result) in batch.drain(..).zip(stored) {
                    answer(pending, result);
                }
            }
            Err(err) if batch.len() == 1 => {
                if let Some(pending) = batch.pop() {
                    answer(pending, Err(err));
                }
            }
            // The database is away: one by one would wait for it once per message.
            Err(Error::Unavailable) => {
                for pending in batch.drain(..) {
                    answer(pending, Err(Error::Unavailable));
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, size = batch.len(), "a message batch failed; storing its messages one by one");
                for pending in batch.drain(..) {
                    let result = store_batch(&writer, backend, &[&pending.new]).await.and_then(|mut one| one.remove(0));
                    answer(pending, result);
                }
            }
        }
    }
}

/// SQL text and its arguments, built together so that each value gets the next placeholder:
/// `$n` for PostgreSQL, `?` for SQLite, which looks numbered parameters up by name, one linear
/// scan each (measured: a third of the writer's time on a full batch).
struct Statement {
    text: String,
    args: AnyArguments,
    backend: Backend,
}

impl Statement {
    fn new(backend: Backend, text: &str) -> Statement {
        Statement { text: text.to_owned(), args: AnyArguments::default(), backend }
    }

    fn sql(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Writes the placeholder of `value` and binds it.
    fn bind<'t, T>(&mut self, value: T) -> Result<&mut Self>
    where
        T: Encode<'t, sqlx::Any> + Type<sqlx::Any>,
    {
        self.args.add(value).map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        match self.backend {
            Backend::Sqlite => self.text.push('?'),
            Backend::Postgres => self.text.push_str(&format!("${}", self.args.len())),
        }
        Ok(self)
    }

    /// Writes `v1, v2, ...` binding each.
    fn list<'t, T>(&mut self, values: impl IntoIterator<Item = T>) -> Result<&mut Self>
    where
        T: Encode<'t, sqlx::Any> + Type<sqlx::Any>,
    {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql(", ");
            }
            self.bind(value)?;
        }
        Ok(self)
    }

    async fn rows(self, tx: &mut Tx<'_>) -> Result<Vec<AnyRow>> {
        // Not cached: the text varies with the batch's size.
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args).persistent(false).fetch_all(&mut **tx).await?)
    }

    async fn run(self, tx: &mut Tx<'_>) -> Result<()> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args).persistent(false).execute(&mut **tx).await?;
        Ok(())
    }
}

/// What happens to each message of a batch.
enum Fate {
    /// Sent before: answered with the stored message.
    Stored(Message),
    /// The same key earlier in this batch: answered with what that one became.
    SameAs(usize),
    /// Inserted with this seq.
    New(i64),
    /// Not stored: its one-to-one recipient does not exist.
    NoRecipient,
}

/// The ids of stored messages, by conversation and seq.
type Ids = HashMap<(ConversationId, i64), MessageId>;

/// Stores `batch` in one transaction and returns, for each message in order, the stored
/// message and whether it is new, or why it was not stored.
async fn store_batch(
    writer: &AnyPool,
    backend: Backend,
    batch: &[&NewMessage],
) -> Result<Vec<Result<(Message, bool)>>> {
    let mut tx = writer.begin().await?;
    let known = existing_recipients(&mut tx, backend, batch).await?;
    let storable = |new: &NewMessage| match new.to {
        Recipient::Group(_) => true,
        Recipient::User(user) => known.contains(&user),
    };
    if !batch.iter().any(|n| storable(n)) {
        tx.commit().await?;
        return Ok(batch.iter().map(|_| Err(Error::NotFound)).collect());
    }
    let conversations: Vec<&NewMessage> = {
        let mut firsts: Vec<&NewMessage> = Vec::new();
        for new in batch.iter().filter(|n| storable(n)) {
            if !firsts.iter().any(|c| c.conversation_id == new.conversation_id) {
                firsts.push(new);
            }
        }
        firsts
    };
    create_conversations(&mut tx, backend, &conversations, batch[0].sent_at).await?;
    let stored = earlier_sends(&mut tx, backend, batch).await?;
    let (mut fates, counts) = fates_of(batch, storable, stored);
    let mut ids = Ids::new();
    if !counts.is_empty() {
        let next = allocate_seqs(&mut tx, backend, batch, &counts, &mut fates).await?;
        ids = insert_messages(&mut tx, backend, batch, &fates).await?;
        share_files(&mut tx, backend, batch, &fates).await?;
        finish_conversations(&mut tx, backend, &counts, &next, &ids).await?;
    }
    tx.commit().await?;
    answers(batch, fates, &ids)
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
        "INSERT INTO conversation_member (conversation_id, user_id, read_seq, updated_at) \
         SELECT c.id, u.id, c.last_seq, ",
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

/// What becomes of each message, and how many new messages each conversation takes.
fn fates_of<'b>(
    batch: &[&'b NewMessage],
    storable: impl Fn(&NewMessage) -> bool,
    mut stored: HashMap<(UserId, String), Message>,
) -> (Vec<Fate>, Vec<(&'b ConversationId, i64)>) {
    let mut fates = Vec::with_capacity(batch.len());
    let mut first_of: HashMap<(UserId, &str), usize> = HashMap::new();
    let mut counts: Vec<(&ConversationId, i64)> = Vec::new();
    for (i, new) in batch.iter().enumerate() {
        let key = (new.from, new.client_msg_id.as_str());
        if !storable(new) {
            fates.push(Fate::NoRecipient);
        } else if let Some(message) = stored.remove(&(new.from, new.client_msg_id.clone())) {
            first_of.insert(key, i);
            fates.push(Fate::Stored(message));
        } else if let Some(&first) = first_of.get(&key) {
            fates.push(Fate::SameAs(first));
        } else {
            first_of.insert(key, i);
            match counts.iter_mut().find(|(c, _)| **c == new.conversation_id) {
                Some((_, n)) => *n += 1,
                None => counts.push((&new.conversation_id, 1)),
            }
            fates.push(Fate::New(0));
        }
    }
    (fates, counts)
}

/// Moves each conversation's seq by its count and gives its new messages the seqs below the
/// new last seq, in arrival order; returns each conversation's seq after the batch, plus one. The row locks
/// serialize concurrent writers.
async fn allocate_seqs(
    tx: &mut Tx<'_>,
    backend: Backend,
    batch: &[&NewMessage],
    counts: &[(&ConversationId, i64)],
    fates: &mut [Fate],
) -> Result<HashMap<ConversationId, i64>> {
    let latest = batch.iter().map(|n| n.sent_at).max().unwrap_or_default();
    let mut bump = Statement::new(backend, "UPDATE conversation SET updated_at = ");
    bump.bind(latest)?.sql(", last_seq = last_seq + CASE id");
    for (conversation, n) in counts {
        bump.sql(" WHEN ").bind((*conversation).clone())?.sql(" THEN ").bind(*n)?;
    }
    bump.sql(" END WHERE id IN (").list(counts.iter().map(|(c, _)| (*c).clone()))?;
    bump.sql(") RETURNING id, last_seq");
    let mut next: HashMap<ConversationId, i64> = HashMap::new();
    for row in bump.rows(tx).await? {
        let (id, last): (ConversationId, i64) = (row.try_get(0)?, row.try_get(1)?);
        let n = counts.iter().find(|(c, _)| **c == id).map_or(0, |(_, n)| *n);
        next.insert(id, last - n + 1);
    }
    for (fate, new) in fates.iter_mut().zip(batch) {
        if let Fate::New(seq) = fate {
            let slot = next
                .get_mut(&new.conversation_id)
                .ok_or_else(|| Error::internal(anyhow::anyhow!("conversation {} vanished", new.conversation_id)))?;
            *seq = *slot;
            *slot += 1;
        }
    }
    Ok(next)
}

/// Inserts the new messages in one statement and returns their ids.
async fn insert_messages(tx: &mut Tx<'_>, backend: Backend, batch: &[&NewMessage], fates: &[Fate]) -> Result<Ids> {
    // SQLite has one writer, this task: the ids it would give follow the largest so far, and
    // naming them saves sending one row back per message. PostgreSQL's come back.
    let mut next_id = match backend {
        Backend::Sqlite => {
            let max = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM message").fetch_one(&mut **tx).await?;
            Some(max.try_get::<i64, _>(0)? + 1)
        }
        Backend::Postgres => None,
    };
    let columns = "conversation_id, seq, chat_type, sender_id, recipient, kind, content, client_msg_id, sent_at";
    let mut insert = match next_id {
        Some(_) => Statement::new(backend, &format!("INSERT INTO message (id, {columns}, status) VALUES ")),
        None => Statement::new(backend, &format!("INSERT INTO message ({columns}, status) VALUES ")),
    };
    let mut ids = Ids::new();
    let mut first = true;
    for (fate, new) in fates.iter().zip(batch) {
        let Fate::New(seq) = fate else { continue };
        let content = serde_json::to_string(&new.content).map_err(Error::internal)?;
        insert.sql(if first { "(" } else { ", (" });
        first = false;
        if let Some(id) = next_id.as_mut() {
            ids.insert((new.conversation_id.clone(), *seq), MessageId(*id));
            insert.bind(*id)?.sql(", ");
            *id += 1;
        }
        insert.bind(new.conversation_id.clone())?.sql(", ").bind(*seq)?.sql(", ");
        insert.bind(new.to.chat_type().as_str())?.sql(", ").bind(new.from)?.sql(", ").bind(new.to.raw())?.sql(", ");
        insert.bind(new.kind.clone())?.sql(", ").bind(content)?.sql(", ").bind(new.client_msg_id.clone())?;
        insert.sql(", ").bind(new.sent_at)?.sql(", 'normal')");
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
        if matches!(fate, Fate::New(_)) {
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
    next: &HashMap<ConversationId, i64>,
    ids: &Ids,
) -> Result<()> {
    let mut last = Statement::new(backend, "UPDATE conversation SET last_message_id = CASE id");
    for (conversation, _) in counts {
        let seq = next.get(*conversation).map_or(0, |s| s - 1);
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
fn answers(batch: &[&NewMessage], fates: Vec<Fate>, ids: &Ids) -> Result<Vec<Result<(Message, bool)>>> {
    let mut out: Vec<Result<(Message, bool)>> = Vec::with_capacity(batch.len());
    for (fate, new) in fates.into_iter().zip(batch) {
        let result = match fate {
            Fate::Stored(message) => Ok((message, false)),
            Fate::SameAs(first) => match &out[first] {
                Ok((message, _)) => Ok((message.clone(), false)),
                Err(_) => Err(Error::NotFound),
            },
            Fate::New(seq) => {
                let id = ids
                    .get(&(new.conversation_id.clone(), seq))
                    .copied()
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("an inserted message returned no id")))?;
                Ok((stored_message(new, id, seq), true))
            }
            Fate::NoRecipient => Err(Error::NotFound),
        };
        out.push(result);
    }
    Ok(out)
}

fn stored_message(new: &NewMessage, id: MessageId, seq: i64) -> Message {
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
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::config::Config;
    use crate::store::sql::SqlStore;
    use crate::store::{MessageStore, UserStore};

    fn text(from: UserId, to: UserId, key: &str) -> NewMessage {
        NewMessage {
            conversation_id: ConversationId::single(from, to),
            from,
            to: Recipient::User(to),
            kind: "text".into(),
            content: json!({"text": key}),
            client_msg_id: key.into(),
            sent_at: 1,
            participants: vec![from, to],
            session: None,
            files: Vec::new(),
        }
    }

    /// Messages queued together share a transaction: seqs follow arrival, a key repeated within
    /// the batch stores once, and a message that cannot be stored fails alone.
    #[tokio::test]
    async fn one_batch_keeps_order_dedupes_and_isolates_a_bad_message() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse_from(["chatgate", "--data-dir", dir.path().to_str().unwrap()]);
        let store = SqlStore::connect(&config).await.unwrap();
        let a = store.create_user("batch-a", "x", 1).await.unwrap().id;
        let b = store.create_user("batch-b", "x", 1).await.unwrap().id;
        let mut news = Vec::new();
        for i in 0..40 {
            let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
            news.push(text(from, to, &format!("k{i}")));
            if i == 3 {
                news.extend((0..5).map(|_| text(b, a, "k3")));
            }
        }
        // A sender that does not exist: its insert breaks a foreign key.
        news.insert(20, text(UserId(9999), a, "ghost"));
        // A recipient that does not exist: refused alone, inside the batch.
        news.push(text(a, UserId(8888), "nobody"));
        let mut results = futures::future::join_all(news.into_iter().map(|n| store.append_message(n))).await;
        assert!(matches!(results.pop(), Some(Err(Error::NotFound))));

        assert!(results[20].is_err(), "the bad message fails");
        let ok: Vec<&(Message, bool)> =
            results.iter().enumerate().filter(|(i, _)| *i != 20).map(|(_, r)| r.as_ref().unwrap()).collect();
        let created: Vec<i64> = ok.iter().filter(|(_, new)| *new).map(|(m, _)| m.seq).collect();
        assert_eq!(created, (1..=40).collect::<Vec<_>>(), "gapless, in arrival order");
        let first_k3 = &ok[3].0;
        for (dup, new) in &ok[4..9] {
            assert!(!new);
            assert_eq!(dup, first_k3);
        }
        let (again, new) = store.append_message(text(a, b, "k6")).await.unwrap();
        assert!(!new);
        assert_eq!(again.seq, 7);
        let stored = store.messages_after(&ConversationId::single(a, b), 0, 100).await.unwrap();
        assert_eq!(stored.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=40).collect::<Vec<_>>());
        assert_eq!(stored[3].client_msg_id, "k3");
    }
}

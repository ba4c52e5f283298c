//! Group commit for the conversation log: one writer task takes every new message and every
//! change to a message that is waiting, and stores them all in one transaction, in about eight
//! statements for the messages whatever their number (and a few per change), then answers
//! each sender.
//!
//! Why: a message costs a transaction of its own otherwise, and on SQLite every statement is a
//! round trip to the connection's worker thread; batching amortizes both, so the commit rate
//! grows with the load instead of capping it. Changes go through the same writer so that they
//! take log positions in the order they were queued, among the messages.
//!
//! Invariants, as for a lone message:
//! - A sender is answered only after the transaction holding its message or change committed.
//! - Seqs and log positions are allocated by one update of each conversation row in that
//!   transaction, so they stay gapless and ordered by arrival; a transaction that fails
//!   allocates nothing. A message takes a seq and a position, a change a position only.
//! - A repeated `(sender, clientMsgId)`, in the database or twice in one batch, stores nothing
//!   and answers with the first message. A change that changes nothing takes no position.
//! - A batch that fails is retried one entry at a time, so one bad message (a dismissed group,
//!   a lost race with another node) fails alone.
//! - The commit hook sees new messages and changes in commit order, before their senders are
//!   answered: one task does both, so a node's pushes of a conversation leave in log order.

mod changes;
mod messages;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use self::changes::{ChangeFate, Entry};
use self::messages::{Fate, Ids};
use super::Backend;
use super::mentions::{self, Placed};
use super::statement::{Statement, Tx};
use crate::error::{Error, Result};
use crate::model::{Change, ConversationId, Mentions, Message, NewChange, NewMessage, Turn, UserId};
use crate::store::{CommitHook, Committed};

/// Entries stored by one transaction at most. Ten values each keeps a full batch far below
/// both databases' limits on bound values.
const MAX_BATCH: usize = 256;
/// Entries that may wait for the writer; senders beyond wait to queue.
const QUEUE: usize = 4096;

/// What the writer is asked to store.
enum Op {
    Message(NewMessage),
    Change(NewChange),
}

/// What became of an [`Op`].
enum Answer {
    Message(Result<(Message, bool)>),
    Change(Result<Option<Change>>),
}

impl Op {
    fn failed(&self, err: Error) -> Answer {
        match self {
            Op::Message(_) => Answer::Message(Err(err)),
            Op::Change(_) => Answer::Change(Err(err)),
        }
    }
}

/// An entry waiting for the writer, and where its answer goes.
struct Pending {
    op: Op,
    reply: oneshot::Sender<Answer>,
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

    /// Sets the hook told of each new message and change in commit order (once; later calls
    /// are ignored).
    pub fn set_hook(&self, hook: CommitHook) {
        let _ = self.hook.set(hook);
    }

    /// Stores a message (see [`crate::store::MessageStore::append_message`]) once its batch
    /// commits.
    pub async fn append(&self, new: NewMessage, turn: &Turn) -> Result<(Message, bool)> {
        match self.submit(Op::Message(new), turn).await? {
            Answer::Message(result) => result,
            Answer::Change(_) => Err(Error::internal(anyhow::anyhow!("a message was answered as a change"))),
        }
    }

    /// Stores a change (see [`crate::store::MessageStore::change_message`]) once its batch
    /// commits.
    pub async fn change(&self, change: NewChange, turn: &Turn) -> Result<Option<Change>> {
        match self.submit(Op::Change(change), turn).await? {
            Answer::Change(result) => result,
            Answer::Message(_) => Err(Error::internal(anyhow::anyhow!("a change was answered as a message"))),
        }
    }

    /// Queues `op` in `turn`, lets the next turn go once it is queued, and waits for its answer.
    async fn submit(&self, op: Op, turn: &Turn) -> Result<Answer> {
        let (reply, answer) = oneshot::channel();
        turn.wait().await;
        let slot = self.queue.reserve().await;
        let slot = slot.map_err(|_| Error::internal(anyhow::anyhow!("the message writer stopped")))?;
        slot.send(Pending { op, reply });
        turn.pass();
        answer.await.map_err(|_| Error::internal(anyhow::anyhow!("the message writer dropped an entry")))
    }
}

async fn run(writer: AnyPool, backend: Backend, mut rx: mpsc::Receiver<Pending>, hook: Arc<OnceLock<CommitHook>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let finish = |pending: Pending, answer: Answer| {
        if let Some(hook) = hook.get() {
            match (&pending.op, &answer) {
                (Op::Message(new), Answer::Message(Ok((message, true)))) => hook(Committed::Message(new, message)),
                (Op::Change(new), Answer::Change(Ok(Some(change)))) => hook(Committed::Change(new, change)),
                _ => {}
            }
        }
        let _ = pending.reply.send(answer);
    };
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ops: Vec<&Op> = batch.iter().map(|p| &p.op).collect();
        match store_batch(&writer, backend, &ops).await {
            Ok(answers) => {
                for (pending, answer) in batch.drain(..).zip(answers) {
                    finish(pending, answer);
                }
            }
            Err(err) if batch.len() == 1 => {
                if let Some(pending) = batch.pop() {
                    let answer = pending.op.failed(err);
                    finish(pending, answer);
                }
            }
            // The database is away: one by one would wait for it once per entry.
            Err(Error::Unavailable) => {
                for pending in batch.drain(..) {
                    let answer = pending.op.failed(Error::Unavailable);
                    finish(pending, answer);
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, size = batch.len(), "a log batch failed; storing its entries one by one");
                for pending in batch.drain(..) {
                    let answer = match store_batch(&writer, backend, &[&pending.op]).await {
                        Ok(mut one) => one.remove(0),
                        Err(err) => pending.op.failed(err),
                    };
                    finish(pending, answer);
                }
            }
        }
    }
}

/// How many seqs and log positions one conversation of a batch takes, how many of its new
/// messages count as unread for the others, and how many mention everyone.
struct Tally<'b> {
    conversation: &'b ConversationId,
    messages: i64,
    entries: i64,
    countable: i64,
    all: i64,
}

/// Where a conversation stands as the batch's entries are placed: the next seq and position,
/// the countable messages so far, and its `@all` messages once the batch is in.
#[derive(Clone, Copy)]
struct Head {
    seq: i64,
    pos: i64,
    countable: i64,
    mentions_all: i64,
}

/// Stores `ops` in one transaction and returns, for each in order, what became of it.
async fn store_batch(writer: &AnyPool, backend: Backend, ops: &[&Op]) -> Result<Vec<Answer>> {
    let news: Vec<&NewMessage> =
        ops.iter().filter_map(|op| if let Op::Message(m) = op { Some(m) } else { None }).collect();
    let mut tx = writer.begin().await?;
    let mut fates = messages::prepare(&mut tx, backend, &news).await?;
    // Changes name messages committed before (a client learns an id from its reply), so
    // applying them before this batch's messages are inserted changes no outcome.
    let mut change_fates = Vec::new();
    for op in ops {
        if let Op::Change(change) = op {
            change_fates.push(changes::apply(&mut tx, backend, change).await?);
        }
    }
    let tallies = tally(ops, &fates, &change_fates);
    let mut ids = Ids::new();
    if !tallies.is_empty() {
        let stamp = tick(&mut tx).await?;
        let heads = allocate(&mut tx, backend, &tallies, latest(&news), stamp).await?;
        let reads = place(ops, &mut fates, &mut change_fates, heads)?;
        if fates.iter().any(|f| matches!(f, Fate::New { .. })) {
            ids = messages::insert(&mut tx, backend, &news, &fates, &tallies_of_messages(&tallies), stamp).await?;
            mentions::record(&mut tx, backend, &placed(&news, &fates, &ids)).await?;
        }
        advance_senders(&mut tx, backend, reads).await?;
        changes::log(&mut tx, backend, entries(ops, &change_fates), stamp).await?;
    }
    tx.commit().await?;
    let mut messages = messages::answers(&news, fates, &ids)?.into_iter();
    let mut changes = change_fates.into_iter();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match op {
            Op::Message(_) => Answer::Message(messages.next().unwrap_or(Err(Error::NotFound))),
            Op::Change(change) => Answer::Change(match changes.next() {
                Some(ChangeFate::Applied { seq, what, pos }) => Ok(Some(Change {
                    conversation_id: change.conversation_id.clone(),
                    pos,
                    message_id: change.message_id,
                    seq,
                    by: change.by,
                    at: change.at,
                    what,
                })),
                Some(ChangeFate::Same) => Ok(None),
                Some(ChangeFate::Refused(err)) => Err(err),
                None => Err(Error::NotFound),
            }),
        });
    }
    Ok(out)
}

/// The batch's new messages that mention anyone, with their seqs and ids.
fn placed<'b>(news: &[&'b NewMessage], fates: &[Fate], ids: &Ids) -> Vec<Placed<'b>> {
    let mentioning = news.iter().zip(fates).filter(|(new, _)| new.mentions != Mentions::None);
    mentioning
        .filter_map(|(new, fate)| match fate {
            Fate::New { seq, .. } => {
                ids.get(&(new.conversation_id.clone(), *seq)).map(|id| Placed { new, seq: *seq, id: *id })
            }
            _ => None,
        })
        .collect()
}

fn latest(news: &[&NewMessage]) -> i64 {
    news.iter().map(|n| n.sent_at).max().unwrap_or_default()
}

/// The seqs and positions each conversation of the batch takes, in order of first arrival.
fn tally<'b>(ops: &[&'b Op], fates: &[Fate], change_fates: &[ChangeFate]) -> Vec<Tally<'b>> {
    let mut tallies: Vec<Tally<'b>> = Vec::new();
    let (mut fates, mut change_fates) = (fates.iter(), change_fates.iter());
    for op in ops {
        let (conversation, message, countable, all) = match op {
            Op::Message(new) => match fates.next() {
                Some(Fate::New { .. }) => (
                    &new.conversation_id,
                    1,
                    i64::from(counts_as_unread(new)),
                    i64::from(new.mentions == Mentions::All),
                ),
                _ => continue,
            },
            Op::Change(change) => match change_fates.next() {
                Some(ChangeFate::Applied { .. }) => (&change.conversation_id, 0, 0, 0),
                _ => continue,
            },
        };
        match tallies.iter_mut().find(|t| t.conversation == conversation) {
            Some(t) => {
                t.messages += message;
                t.entries += 1;
                t.countable += countable;
                t.all += all;
            }
            None => tallies.push(Tally { conversation, messages: message, entries: 1, countable, all }),
        }
    }
    tallies
}

/// The `(conversation, new messages)` of the batch's conversations that got any.
fn tallies_of_messages<'b>(tallies: &[Tally<'b>]) -> Vec<(&'b ConversationId, i64)> {
    tallies.iter().filter(|t| t.messages > 0).map(|t| (t.conversation, t.messages)).collect()
}

/// Whether a new message counts as unread for the other participants: a system message (a
/// group event) does not.
fn counts_as_unread(new: &NewMessage) -> bool {
    new.kind != "system"
}

/// Takes the batch's stamp from the log clock. Its row stays locked until the batch commits
/// (on PostgreSQL; SQLite has one writer anyway), so batches commit in stamp order on every
/// node: a reader that sees stamp `s` sees every entry stamped at or below it. Taken after the
/// changes locked their messages and before the conversation rows, as every batch does, so
/// writers never wait on each other in a cycle.
async fn tick(tx: &mut Tx<'_>) -> Result<i64> {
    let row =
        sqlx::query("UPDATE log_clock SET stamp = stamp + 1 WHERE id = 1 RETURNING stamp").fetch_one(&mut **tx).await?;
    Ok(row.try_get(0)?)
}

/// Moves each conversation's seq, log position and countable messages by what the batch takes,
/// stamps it, and returns, by conversation, where the batch's entries start. The row locks
/// serialize concurrent writers.
async fn allocate(
    tx: &mut Tx<'_>,
    backend: Backend,
    tallies: &[Tally<'_>],
    latest: i64,
    stamp: i64,
) -> Result<HashMap<ConversationId, Head>> {
    let mut bump = Statement::new(backend, "UPDATE conversation SET stamp = ");
    bump.bind(stamp)?.sql(", last_seq = last_seq + CASE id");
    for t in tallies {
        bump.sql(" WHEN ").bind(t.conversation.clone())?.sql(" THEN ").bind(t.messages)?;
    }
    bump.sql(" END, last_pos = last_pos + CASE id");
    for t in tallies {
        bump.sql(" WHEN ").bind(t.conversation.clone())?.sql(" THEN ").bind(t.entries)?;
    }
    bump.sql(" END, countable = countable + CASE id");
    for t in tallies {
        bump.sql(" WHEN ").bind(t.conversation.clone())?.sql(" THEN ").bind(t.countable)?;
    }
    let all: Vec<&Tally> = tallies.iter().filter(|t| t.all > 0).collect();
    if !all.is_empty() {
        bump.sql(" END, mentions_all = mentions_all + CASE id");
        for t in &all {
            bump.sql(" WHEN ").bind(t.conversation.clone())?.sql(" THEN ").bind(t.all)?;
        }
        bump.sql(" ELSE 0");
    }
    // A change does not move a conversation up the list; a new message does.
    let active: Vec<&Tally> = tallies.iter().filter(|t| t.messages > 0).collect();
    if !active.is_empty() {
        bump.sql(" END, updated_at = CASE WHEN id IN (").list(active.iter().map(|t| t.conversation.clone()))?;
        bump.sql(") THEN ").bind(latest)?.sql(" ELSE updated_at");
    }
    bump.sql(" END WHERE id IN (").list(tallies.iter().map(|t| t.conversation.clone()))?;
    bump.sql(") RETURNING id, last_seq, last_pos, countable, mentions_all");
    let mut heads = HashMap::new();
    for row in bump.rows(tx).await? {
        let id: ConversationId = row.try_get(0)?;
        let (last_seq, last_pos, countable): (i64, i64, i64) = (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
        let mentions_all: i64 = row.try_get(4)?;
        if let Some(t) = tallies.iter().find(|t| *t.conversation == id) {
            let head = Head {
                seq: last_seq - t.messages + 1,
                pos: last_pos - t.entries + 1,
                countable: countable - t.countable,
                mentions_all,
            };
            heads.insert(id, head);
        }
    }
    Ok(heads)
}

/// Where each sender's read position goes: sending a message marks its conversation read up to
/// it for its sender. `(conversation, sender) -> (seq, countable messages through it, the
/// conversation's @all messages once the batch is in)`.
type Reads<'b> = HashMap<(&'b ConversationId, UserId), (i64, i64, i64)>;

/// Moves the senders' read positions to their newest message of the batch, in one statement,
/// with their unread counters: the mentions still unread for a sender are the ones past their
/// message (the batch's are recorded by now).
async fn advance_senders(tx: &mut Tx<'_>, backend: Backend, reads: Reads<'_>) -> Result<()> {
    if reads.is_empty() {
        return Ok(());
    }
    let mention_read = mentions::mention_read("v.column1", "v.column2", "v.column3", "v.column5");
    let mut update = Statement::new(
        backend,
        &format!(
            "UPDATE conversation_member SET read_seq = v.column3, read_countable = v.column4, \
             delivered_seq = CASE WHEN delivered_seq < v.column3 THEN v.column3 ELSE delivered_seq END, \
             mention_read = {mention_read} FROM (VALUES "
        ),
    );
    for (i, ((conversation, user), (seq, countable, all))) in reads.into_iter().enumerate() {
        update.sql(if i == 0 { "(" } else { ", (" });
        update.bind(conversation.clone())?.sql(", ").bind(user)?.sql(", ").bind(seq)?.sql(", ").bind(countable)?;
        update.sql(", ").bind(all)?.sql(")");
    }
    update.sql(
        ") AS v WHERE conversation_member.conversation_id = v.column1 AND conversation_member.user_id = v.column2 \
         AND conversation_member.read_seq < v.column3",
    );
    update.run(tx).await
}

/// Gives the batch's new messages their seqs and positions, and its changes their positions,
/// in arrival order; returns where their senders' read positions go.
fn place<'b>(
    ops: &[&'b Op],
    fates: &mut [Fate],
    change_fates: &mut [ChangeFate],
    mut heads: HashMap<ConversationId, Head>,
) -> Result<Reads<'b>> {
    let (mut fates, mut change_fates) = (fates.iter_mut(), change_fates.iter_mut());
    let vanished = |c: &ConversationId| Error::internal(anyhow::anyhow!("conversation {c} vanished"));
    let mut reads = Reads::new();
    for op in ops {
        match op {
            Op::Message(new) => {
                if let Some(Fate::New { seq, pos }) = fates.next() {
                    let head = heads.get_mut(&new.conversation_id).ok_or_else(|| vanished(&new.conversation_id))?;
                    (*seq, *pos) = (head.seq, head.pos);
                    (head.seq, head.pos) = (head.seq + 1, head.pos + 1);
                    if counts_as_unread(new) {
                        head.countable += 1;
                        reads.insert((&new.conversation_id, new.from), (*seq, head.countable, head.mentions_all));
                    }
                }
            }
            Op::Change(change) => {
                if let Some(ChangeFate::Applied { pos, .. }) = change_fates.next() {
                    let head =
                        heads.get_mut(&change.conversation_id).ok_or_else(|| vanished(&change.conversation_id))?;
                    *pos = head.pos;
                    head.pos += 1;
                }
            }
        }
    }
    Ok(reads)
}

/// The log rows of the batch's applied changes (a new message's position is on its row).
fn entries<'b>(ops: &[&'b Op], change_fates: &[ChangeFate]) -> Vec<Entry<'b>> {
    let changes = ops.iter().filter_map(|op| if let Op::Change(c) = op { Some(c) } else { None });
    changes
        .zip(change_fates)
        .filter_map(|(change, fate)| match fate {
            ChangeFate::Applied { what, pos, .. } => Some(Entry {
                conversation_id: &change.conversation_id,
                pos: *pos,
                message_id: change.message_id,
                kind: what.as_str(),
                actor: change.by,
                data: changes::data_of(what),
                at: change.at,
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::config::Config;
    use crate::model::turn::FREE;
    use crate::model::{Recipient, UserId};
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
            quote: None,
            mentions: Mentions::None,
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
        let mut results = futures::future::join_all(news.into_iter().map(|n| store.append_message(n, &FREE))).await;
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
        let (again, new) = store.append_message(text(a, b, "k6"), &FREE).await.unwrap();
        assert!(!new);
        assert_eq!(again.seq, 7);
        let stored = store.messages_after(&ConversationId::single(a, b), 0, 100).await.unwrap();
        assert_eq!(stored.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=40).collect::<Vec<_>>());
        assert_eq!(stored[3].client_msg_id, "k3");
    }
}

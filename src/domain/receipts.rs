//! Group read receipts, pushed: when members read, the senders of what they read hear how many
//! have read each of their messages, at most once a second per conversation.
//!
//! Why debounced: in a busy group every member's read would otherwise push to every sender, so
//! the pushes would grow with the readers; coalesced, a conversation costs one computation and
//! one push per sender a second, however many read meanwhile. The counts are computed when
//! pushed, from the read positions then, so each push is exact; a sender who missed one reads
//! the counts through `/message/readers`.
//!
//! Invariants:
//! - The first read of a quiet conversation is pushed at once; reads within the following
//!   second are coalesced into one push at its end, and so on while reads keep coming.
//! - At most one entry and one task per conversation read in the last second; no lock is held
//!   across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ports::Events;
use crate::error::Result;
use crate::model::{ConversationId, Event, GroupId, ReadCount, Status, UserId};
use crate::store::Store;

/// The least time between two pushes of one conversation's counts.
const EVERY: Duration = Duration::from_secs(1);
/// Messages whose counts one push carries at most, the newest of those read: a member catching
/// up on a long backlog moves them all, and the older ones' counts are there to be read.
const MAX_COUNTS: i64 = 200;

/// The seqs read since the last push: `(after, upto]`, empty once taken.
#[derive(Clone, Copy)]
struct Window {
    after: i64,
    upto: i64,
}

impl Window {
    fn is_empty(self) -> bool {
        self.upto <= self.after
    }
}

/// The debouncer of read-count pushes.
pub struct Receipts {
    store: Arc<dyn Store>,
    events: Arc<dyn Events>,
    /// Conversations with a push due or just made.
    pending: Mutex<HashMap<ConversationId, Window>>,
}

impl Receipts {
    /// Wires the pushes.
    pub fn new(store: Arc<dyn Store>, events: Arc<dyn Events>) -> Arc<Self> {
        Arc::new(Receipts { store, events, pending: Mutex::new(HashMap::new()) })
    }

    /// A member of group `group_id` moved their read position from `from` to `to`.
    pub fn read(self: &Arc<Self>, group_id: GroupId, from: i64, to: i64) {
        let conversation = ConversationId::group(group_id);
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(window) = pending.get_mut(&conversation) {
                // A push is due or cooling down: it takes this read too.
                *window = if window.is_empty() {
                    Window { after: from, upto: to }
                } else {
                    Window { after: window.after.min(from), upto: window.upto.max(to) }
                };
                return;
            }
            pending.insert(conversation.clone(), Window { after: from, upto: to });
        }
        let this = self.clone();
        tokio::spawn(async move { this.flush(conversation).await });
    }

    /// Pushes a conversation's counts while reads keep coming, once a second.
    async fn flush(self: Arc<Self>, conversation: ConversationId) {
        loop {
            let window = {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let Some(window) = pending.get_mut(&conversation) else { return };
                if window.is_empty() {
                    pending.remove(&conversation);
                    return;
                }
                std::mem::replace(window, Window { after: 0, upto: 0 })
            };
            if let Err(err) = self.push(&conversation, window).await {
                tracing::warn!(error = %err, %conversation, "read counts could not be pushed");
            }
            tokio::time::sleep(EVERY).await;
        }
    }

    /// Counts the readers of the messages read in `window` and pushes each sender theirs.
    async fn push(&self, conversation: &ConversationId, window: Window) -> Result<()> {
        let messages = self.store.messages_before(conversation, window.upto + 1, MAX_COUNTS).await?;
        let messages: Vec<_> = messages
            .into_iter()
            .filter(|m| m.seq > window.after && m.kind != "system" && m.status == Status::Normal)
            .collect();
        if messages.is_empty() {
            return Ok(());
        }
        let positions: HashMap<UserId, i64> =
            self.store.read_positions_past(conversation, window.after).await?.into_iter().collect();
        let mut seqs: Vec<i64> = positions.values().copied().collect();
        seqs.sort_unstable();
        let mut by_sender: HashMap<UserId, Vec<ReadCount>> = HashMap::new();
        for m in messages.iter().rev() {
            // Those whose position reached it, but its sender.
            let reached = seqs.len() - seqs.partition_point(|seq| *seq < m.seq);
            let own = positions.get(&m.from).is_some_and(|seq| *seq >= m.seq);
            let read = (reached - usize::from(own)) as i64;
            by_sender.entry(m.from).or_default().push(ReadCount { message_id: m.id, seq: m.seq, read });
        }
        for (sender, counts) in by_sender {
            self.events.publish(Event::ReadCounts { conversation_id: conversation.clone(), counts, recipient: sender });
        }
        Ok(())
    }
}

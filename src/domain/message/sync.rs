//! Sync: everything a device has not seen, from where it says it is.
//!
//! A device names, per conversation, the log position it holds (or, for older clients, only the
//! seq). By position it gets every entry after it, in log order: the messages made since, as
//! they are now, and every change to any message since, each with its position, so that it
//! converges to exactly what a device that stayed online saw. By seq it gets the messages
//! after it only.

use std::collections::HashMap;

use super::super::budget::{Budget, SYNC_MESSAGES_BUDGET, change_estimate, estimate};
use super::Messages;
use crate::error::Result;
use crate::model::{ConversationId, Identity, LogEntry, SyncedConversation};
use crate::store::LogHead;

/// Messages (or log entries) per conversation in one sync answer.
const SYNC_PAGE: i64 = 100;
/// Conversations in one sync answer.
const SYNC_CONVERSATIONS: usize = 100;

/// What an entry takes in a reply, at most.
pub(super) fn size(entry: &LogEntry) -> usize {
    match entry {
        LogEntry::Message(message) => estimate(message),
        LogEntry::Change(change) => change_estimate(change),
    }
}

/// Where a device stands in one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// The last seq it holds.
    pub seq: i64,
    /// The last log position it holds, when it syncs by position.
    pub pos: Option<i64>,
}

impl Known {
    fn behind(&self, head: &LogHead) -> bool {
        match self.pos {
            Some(pos) => head.last_pos > pos,
            None => head.last_seq > self.seq,
        }
    }
}

impl Messages {
    /// Everything the caller has not seen: for each of their conversations past what they know
    /// (nothing, when not listed), what came after it. At most [`SYNC_CONVERSATIONS`]
    /// conversations per call, most recent first, each with at most [`SYNC_PAGE`] entries and
    /// `has_more` when more follow; the second value says whether other conversations wait too.
    /// Its messages and changes stay within [`SYNC_MESSAGES_BUDGET`] bytes (it holds at least
    /// one).
    pub async fn sync(
        &self,
        who: &Identity,
        known: &HashMap<ConversationId, Known>,
        by_pos: bool,
    ) -> Result<(Vec<SyncedConversation>, bool)> {
        let nothing = Known { seq: 0, pos: by_pos.then_some(0) };
        let mut behind: Vec<(LogHead, Known)> = self
            .store
            .heads(who.user_id)
            .await?
            .into_iter()
            .filter_map(|head| {
                let known = known.get(&head.conversation_id).copied().unwrap_or(nothing);
                known.behind(&head).then_some((head, known))
            })
            .collect();
        behind.sort_by(|a, b| {
            b.0.updated_at.cmp(&a.0.updated_at).then_with(|| a.0.conversation_id.cmp(&b.0.conversation_id))
        });
        let mut more_conversations = behind.len() > SYNC_CONVERSATIONS;
        behind.truncate(SYNC_CONVERSATIONS);
        let waiting = behind.len();
        let mut out = Vec::with_capacity(waiting);
        let mut budget = Budget::new(SYNC_MESSAGES_BUDGET);
        for (i, (head, known)) in behind.into_iter().enumerate() {
            let (synced, cut) = match known.pos {
                Some(pos) => self.log_page(&head, pos, &mut budget).await?,
                None => self.seq_page(&head, known.seq, &mut budget).await?,
            };
            if let Some(synced) = synced {
                out.push(synced);
            }
            if cut {
                more_conversations |=
                    out.last().is_none_or(|s| s.conversation_id != head.conversation_id) || i + 1 < waiting;
                break;
            }
        }
        self.as_seen_by(who, out.iter_mut().flat_map(|s| s.messages.iter_mut())).await?;
        Ok((out, more_conversations))
    }

    /// The messages after `seq`, within `budget`; `true` when the budget cut them short.
    async fn seq_page(
        &self,
        head: &LogHead,
        seq: i64,
        budget: &mut Budget,
    ) -> Result<(Option<SyncedConversation>, bool)> {
        let mut messages = self.store.messages_after(&head.conversation_id, seq, SYNC_PAGE + 1).await?;
        let mut has_more = messages.len() as i64 > SYNC_PAGE;
        messages.truncate(SYNC_PAGE as usize);
        // The byte budget ends the answer: a conversation cut short says so (the client pages
        // the rest from history), and the ones after it wait for the next call.
        let fit = budget.fitting(&messages);
        let cut = fit < messages.len();
        messages.truncate(fit);
        has_more |= cut;
        let synced = (fit > 0).then(|| SyncedConversation {
            conversation_id: head.conversation_id.clone(),
            messages,
            changes: Vec::new(),
            pos: None,
            from: None,
            reset: false,
            has_more,
        });
        Ok((synced, cut))
    }

    /// The log entries after `pos`, within `budget`; `true` when the budget cut them short. A
    /// position the log no longer reaches (compacted away) is answered with `reset`.
    pub(super) async fn log_page(
        &self,
        head: &LogHead,
        pos: i64,
        budget: &mut Budget,
    ) -> Result<(Option<SyncedConversation>, bool)> {
        let conversation_id = head.conversation_id.clone();
        if pos < head.log_floor {
            let reset = SyncedConversation {
                conversation_id,
                messages: Vec::new(),
                changes: Vec::new(),
                pos: Some(head.last_pos),
                from: Some(pos),
                reset: true,
                has_more: false,
            };
            return Ok((Some(reset), false));
        }
        let page = self.store.log_after(&conversation_id, pos, i64::MAX, SYNC_PAGE).await?;
        // Entries are admitted in log order, so that what fits is a prefix of the log and the
        // position returned covers exactly what is sent.
        let (mut kept_messages, mut kept_changes) = (Vec::new(), Vec::new());
        let mut reached = pos;
        let mut cut = false;
        for entry in page.entries {
            if !budget.admit(size(&entry)) {
                cut = true;
                break;
            }
            reached = entry.pos();
            match entry {
                LogEntry::Message(message) => kept_messages.push(message),
                LogEntry::Change(change) => kept_changes.push(change),
            }
        }
        let has_more = page.has_more || cut;
        if reached == pos {
            return Ok((None, cut));
        }
        let synced = SyncedConversation {
            conversation_id,
            messages: kept_messages,
            changes: kept_changes,
            pos: Some(reached),
            from: Some(pos),
            reset: false,
            has_more,
        };
        Ok((Some(synced), cut))
    }
}

//! Sync by cursor: a device names one stamp of the log clock instead of each conversation it
//! holds, and gets every entry of each of its conversations whose log moved past it.
//!
//! A round runs over those conversations in id order, from the stamp the device holds
//! (`since`) to the clock as the round started (`upto`), and sends each the entries stamped
//! between the two: every one of them once, so that once the round ends the device holds
//! exactly the entries stamped at or below `upto`. Stamps grow with positions in a
//! conversation, so those entries follow the position of its newest entry stamped at or below
//! `since`. A round paged by bytes says where it stopped ([`SyncCursor::Within`]); what is
//! stamped after `upto` is the next round's.

use super::Messages;
use super::sync::size;
use crate::domain::budget::{Budget, SYNC_MESSAGES_BUDGET};
use crate::error::Result;
use crate::model::{ConversationId, Identity, LogEntry, SyncCursor, SyncedConversation};
use crate::store::LogHead;

/// Conversations in one answer.
const ROUND_CONVERSATIONS: usize = 100;
/// Entries read from a conversation's log at a time.
const READ_PAGE: i64 = 200;

/// An answer of a sync by cursor.
#[derive(Debug)]
pub struct CursorSync {
    /// The conversations that moved, each from where the device stood: in id order.
    pub conversations: Vec<SyncedConversation>,
    /// Where the device stands once it has applied them all.
    pub next: SyncCursor,
    since: i64,
    upto: i64,
}

impl CursorSync {
    /// Where the device stands if the round is taken up to position `pos` of `conversation`,
    /// one of its conversations, and not beyond (a reply with no room left for the rest).
    pub fn resume_at(&self, conversation: ConversationId, pos: i64) -> SyncCursor {
        SyncCursor::Within { since: self.since, upto: self.upto, conversation, pos }
    }
}

/// How one conversation's part of a round went.
enum Part {
    /// All of it was sent (possibly nothing).
    Whole(Option<SyncedConversation>),
    /// The budget ran out after position `reached`.
    Cut(Option<SyncedConversation>, i64),
}

impl Messages {
    /// Everything the caller has not seen, from `cursor` (none: from nothing), within
    /// [`SYNC_MESSAGES_BUDGET`] bytes and [`ROUND_CONVERSATIONS`] conversations.
    pub async fn sync_from(&self, who: &Identity, cursor: Option<SyncCursor>) -> Result<CursorSync> {
        let (since, upto, resume): (i64, i64, Option<(ConversationId, i64)>) = match cursor {
            None => (0, self.store.clock().await?, None),
            Some(SyncCursor::Done(since)) => (since, self.store.clock().await?, None),
            Some(SyncCursor::Within { since, upto, conversation, pos }) => (since, upto, Some((conversation, pos))),
        };
        let from = resume.as_ref().map(|(id, _)| id);
        let limit = ROUND_CONVERSATIONS as i64 + 1;
        let heads = self.store.changed_heads(who.user_id, since, from, limit).await?;
        let mut out = CursorSync { conversations: Vec::new(), next: SyncCursor::Done(upto), since, upto };
        let mut budget = Budget::new(SYNC_MESSAGES_BUDGET);
        let within = |conversation, pos| SyncCursor::Within { since, upto, conversation, pos };
        for (i, head) in heads.into_iter().enumerate() {
            let start = match &resume {
                Some((id, pos)) if *id == head.conversation_id => *pos,
                _ if since == 0 => 0,
                _ => self.store.pos_at(&head.conversation_id, since).await?,
            };
            if i == ROUND_CONVERSATIONS {
                out.next = within(head.conversation_id, start);
                break;
            }
            match self.whole_log(&head, start, upto, &mut budget).await? {
                Part::Whole(synced) => out.conversations.extend(synced),
                Part::Cut(synced, reached) => {
                    out.conversations.extend(synced);
                    out.next = within(head.conversation_id, reached);
                    break;
                }
            }
        }
        let held = out.conversations.iter_mut().flat_map(|s| s.messages.iter_mut());
        self.as_seen_by(who, held).await?;
        Ok(out)
    }

    /// A conversation's entries after `start` stamped at or below `upto`, all of them or as many
    /// as `budget` admits.
    async fn whole_log(&self, head: &LogHead, start: i64, upto: i64, budget: &mut Budget) -> Result<Part> {
        let mut synced = SyncedConversation {
            conversation_id: head.conversation_id.clone(),
            messages: Vec::new(),
            changes: Vec::new(),
            pos: Some(start),
            from: Some(start),
            reset: false,
            has_more: false,
        };
        if start < head.log_floor {
            // Compacted away: the device refetches the window and goes on from the newest.
            synced.reset = true;
            synced.pos = Some(head.last_pos);
            return Ok(Part::Whole(Some(synced)));
        }
        let mut reached = start;
        while reached < head.last_pos {
            let page = self.store.log_after(&head.conversation_id, reached, upto, READ_PAGE).await?;
            let got = page.entries.len();
            for entry in page.entries {
                if !budget.admit(size(&entry)) {
                    synced.has_more = true;
                    synced.pos = Some(reached);
                    let synced = (reached > start).then_some(synced);
                    return Ok(Part::Cut(synced, reached));
                }
                reached = entry.pos();
                match entry {
                    LogEntry::Message(message) => synced.messages.push(message),
                    LogEntry::Change(change) => synced.changes.push(change),
                }
            }
            if !page.has_more || got == 0 {
                break;
            }
        }
        synced.pos = Some(reached);
        Ok(Part::Whole((reached > start).then_some(synced)))
    }
}

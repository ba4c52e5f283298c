//! The conversation domain: each participant's view of their conversations: the list, read
//! positions, unread counts, pins, mutes, drafts and hiding.
//!
//! Invariants:
//! - `unread` is the number of normal (not recalled or deleted, not system) messages after the
//!   reader's `readSeq` that others sent. It is read from counters (the conversation's countable
//!   messages, and how many of them each participant has read or sent), which the store moves
//!   in the same transaction as the message, the recall, the delete and the read: so reading it
//!   costs the same whatever the history. The total leaves out muted conversations.
//! - Sending a message marks its conversation read up to it, for its sender.
//! - A read position only moves forward, and never past the conversation's last seq.
//! - A new message un-hides a hidden conversation (the store does it in the send transaction).

use std::collections::HashMap;
use std::sync::Arc;

use super::budget::{Budget, REPLY_BUDGET, view_estimate};
use super::ports::Events;
use super::receipts::Receipts;
use crate::error::{Error, Result};
use crate::model::{
    ConversationId, ConversationPatch, ConversationRef, ConversationState, ConversationView, Event, Group, GroupId,
    Identity, Message, MessageId, Peer, User, UserId, now_ms,
};
use crate::store::Store;

/// Largest page of the conversation list.
const MAX_PAGE: i64 = 100;
/// Longest draft, in characters.
const MAX_DRAFT: usize = 5000;

/// The conversation domain's operations.
pub struct Conversations {
    pub(super) store: Arc<dyn Store>,
    events: Arc<dyn Events>,
    receipts: Arc<Receipts>,
}

impl Conversations {
    /// Wires the conversation domain; group reads go to `receipts`.
    pub fn new(store: Arc<dyn Store>, events: Arc<dyn Events>, receipts: Arc<Receipts>) -> Self {
        Conversations { store, events, receipts }
    }

    /// Completes states with their peers and last messages, in three queries whatever the count.
    pub(super) async fn views(&self, who: &Identity, states: Vec<ConversationState>) -> Result<Vec<ConversationView>> {
        let peer_of = |s: &ConversationState| s.conversation_id.parse().and_then(|c| c.peer_of(who.user_id));
        let user_ids: Vec<UserId> = states.iter().filter_map(peer_of).collect();
        let group_ids: Vec<GroupId> = states.iter().filter_map(|s| s.group_id).collect();
        let message_ids: Vec<MessageId> = states.iter().filter_map(|s| s.last_message_id).collect();
        let users: HashMap<UserId, User> =
            self.store.users_by_ids(&user_ids).await?.into_iter().map(|u| (u.id, u.public())).collect();
        let groups: HashMap<GroupId, Group> =
            self.store.groups_by_ids(&group_ids).await?.into_iter().map(|g| (g.id, g)).collect();
        let mut messages: HashMap<MessageId, Message> =
            self.store.messages_by_ids(&message_ids).await?.into_iter().map(|m| (m.id, m)).collect();
        Ok(states
            .into_iter()
            .map(|state| {
                let peer = match state.group_id {
                    Some(g) => groups.get(&g).cloned().map(Peer::Group),
                    None => peer_of(&state).and_then(|u| users.get(&u).cloned()).map(Peer::User),
                };
                let last_message = state.last_message_id.and_then(|id| messages.remove(&id));
                ConversationView { state, peer, last_message }
            })
            .collect())
    }

    async fn state(&self, who: &Identity, conversation_id: &ConversationId) -> Result<ConversationState> {
        conversation_id.parse().ok_or(Error::NotFound)?;
        self.store.conversation_states(who.user_id, Some(conversation_id)).await?.pop().ok_or(Error::NotFound)
    }

    async fn view(&self, who: &Identity, conversation_id: &ConversationId) -> Result<ConversationView> {
        let state = self.state(who, conversation_id).await?;
        Ok(self.views(who, vec![state]).await?.remove(0))
    }

    /// The caller's visible conversations, pinned first, then by latest activity; the unread
    /// total over all unmuted conversations; and the cursor of the next page.
    pub async fn list(
        &self,
        who: &Identity,
        cursor: Option<i64>,
        limit: Option<i64>,
    ) -> Result<(Vec<ConversationView>, i64, Option<i64>)> {
        let limit = limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::validation("limit", format!("limit must be between 1 and {MAX_PAGE}")));
        }
        let offset = cursor.unwrap_or(0);
        let states = self.store.conversation_states(who.user_id, None).await?;
        let total_unread = states.iter().filter(|s| !s.muted).map(|s| s.unread).sum();
        let mut visible: Vec<ConversationState> = states.into_iter().filter(|s| !s.hidden).collect();
        visible.sort_by(|a, b| {
            b.pinned
                .cmp(&a.pinned)
                .then(b.updated_at.cmp(&a.updated_at))
                .then_with(|| a.conversation_id.cmp(&b.conversation_id))
        });
        let total = visible.len() as i64;
        let page: Vec<ConversationState> =
            visible.into_iter().skip(offset.max(0) as usize).take(limit as usize).collect();
        let mut views = self.views(who, page).await?;
        // Within the byte budget too: last messages can be long. The cursor then points at
        // the first conversation left out.
        let mut budget = Budget::new(REPLY_BUDGET);
        let fit = views.iter().take_while(|view| budget.admit(view_estimate(view))).count();
        views.truncate(fit);
        let shown = offset.max(0) + fit as i64;
        let next = (shown < total).then_some(shown);
        Ok((views, total_unread, next))
    }

    /// The caller's views of `ids`, in that order; those the caller does not take part in are
    /// left out. Four queries whatever their number.
    pub async fn infos(&self, who: &Identity, ids: &[ConversationId]) -> Result<Vec<ConversationView>> {
        let states = self.store.conversation_states_in(who.user_id, ids).await?;
        let mut views: HashMap<ConversationId, ConversationView> =
            self.views(who, states).await?.into_iter().map(|v| (v.state.conversation_id.clone(), v)).collect();
        Ok(ids.iter().filter_map(|id| views.remove(id)).collect())
    }

    /// One conversation.
    pub async fn info(&self, who: &Identity, conversation_id: &ConversationId) -> Result<ConversationView> {
        self.view(who, conversation_id).await
    }

    /// Changes the caller's pin, mute, draft or hidden flag.
    pub async fn update(
        &self,
        who: &Identity,
        conversation_id: &ConversationId,
        mut patch: ConversationPatch,
    ) -> Result<ConversationView> {
        self.state(who, conversation_id).await?;
        patch.draft = patch.draft.map(checked_draft).transpose()?;
        self.store.update_conversation_state(conversation_id, who.user_id, &patch, now_ms()).await?;
        let view = self.view(who, conversation_id).await?;
        self.events.publish(Event::ConversationUpdated {
            user_id: who.user_id,
            view: Box::new(view.clone()),
            skip_session: who.session,
        });
        Ok(view)
    }

    /// Moves the caller's read position forward to `seq` (capped at the last seq). In a
    /// one-to-one conversation the peer is told (a read receipt); in a group the senders of
    /// what was read are told how many have read it, debounced ([`Receipts`]).
    pub async fn read(&self, who: &Identity, conversation_id: &ConversationId, seq: i64) -> Result<ConversationView> {
        if seq < 0 {
            return Err(Error::validation("seq", "seq must not be negative"));
        }
        let before = self.state(who, conversation_id).await?;
        self.store.mark_read(conversation_id, who.user_id, seq, now_ms()).await?;
        let view = self.view(who, conversation_id).await?;
        if view.state.read_seq != before.read_seq {
            self.events.publish(Event::ConversationUpdated {
                user_id: who.user_id,
                view: Box::new(view.clone()),
                skip_session: who.session,
            });
            match conversation_id.parse() {
                Some(ConversationRef::Group(group_id)) => {
                    self.receipts.read(group_id, before.read_seq, view.state.read_seq);
                }
                Some(single) => {
                    if let Some(peer) = single.peer_of(who.user_id) {
                        self.events.publish(Event::MessageRead {
                            conversation_id: conversation_id.clone(),
                            user_id: who.user_id,
                            seq: view.state.read_seq,
                            recipients: vec![peer],
                        });
                    }
                }
                None => {}
            }
        }
        Ok(view)
    }

    /// The caller's devices received a one-to-one conversation up to `seq` (capped at the last
    /// seq): the peer is told (a delivered receipt) when that moved it forward.
    pub async fn delivered(&self, who: &Identity, conversation_id: &ConversationId, seq: i64) -> Result<()> {
        let Some(single @ ConversationRef::Single(..)) = conversation_id.parse() else {
            return Err(Error::validation("conversationId", "delivered receipts are for one-to-one conversations"));
        };
        let peer = single.peer_of(who.user_id).ok_or(Error::NotFound)?;
        if seq < 0 {
            return Err(Error::validation("seq", "seq must not be negative"));
        }
        // The last seq only grows, so capping by the one read here never goes past it.
        let seq = seq.min(self.state(who, conversation_id).await?.last_seq);
        if self.store.mark_delivered(conversation_id, who.user_id, seq).await? {
            self.events.publish(Event::MessageDelivered {
                conversation_id: conversation_id.clone(),
                user_id: who.user_id,
                seq,
                recipients: vec![peer],
            });
        }
        Ok(())
    }

    /// The unread total (unmuted conversations) and each conversation with unread messages.
    pub async fn unread(&self, who: &Identity) -> Result<(i64, Vec<(ConversationId, i64)>)> {
        let states = self.store.conversation_states(who.user_id, None).await?;
        let total = states.iter().filter(|s| !s.muted).map(|s| s.unread).sum();
        let per = states.into_iter().filter(|s| s.unread > 0).map(|s| (s.conversation_id, s.unread)).collect();
        Ok((total, per))
    }
}

fn checked_draft(draft: String) -> Result<String> {
    if draft.chars().count() > MAX_DRAFT {
        return Err(Error::validation("draft", format!("draft must be at most {MAX_DRAFT} characters")));
    }
    if draft.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(Error::validation("draft", "draft must not contain control characters"));
    }
    Ok(draft)
}

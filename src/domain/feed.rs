//! The per-user change feed, as sync answers it: for each thing of the user's own state that
//! changed after the device's feed position, its state now. A device that was away learns that
//! it left a group (or was removed, or the group was dismissed), that it joined one, that a
//! group's info changed, that a conversation was read, pinned or given a draft on another
//! device, that it deleted a message for itself, and its own profile.
//!
//! Its cost follows the changes since the position, not the user's conversations: one query for
//! the entries, then one per family of what they name.

use std::collections::{HashMap, HashSet};

use super::budget::{Budget, SYNC_FEED_BUDGET, view_estimate};
use super::conversation::Conversations;
use crate::error::Result;
use crate::model::{ConversationId, ConversationView, FeedKind, Group, GroupId, Identity, Message, MessageId, User};

/// Feed entries read per sync at most.
const FEED_PAGE: i64 = 100;
/// What a group or profile entry takes on the wire at most, besides its texts.
const ENTRY_OVERHEAD: usize = 512;

/// The state now of something that changed.
#[derive(Debug, Clone)]
pub enum Fed {
    /// The user's state of a conversation.
    Conversation(Box<ConversationView>),
    /// A group the user is a member of.
    Group(Group),
    /// A group the user is no longer in: left, removed, or dismissed.
    Left(GroupId),
    /// The user's own profile.
    Profile(User),
    /// A message the user deleted for themselves.
    Hidden(Message),
}

/// A page of the feed.
#[derive(Debug, Clone)]
pub struct FeedPage {
    /// What changed, each with the position of its latest entry, in position order.
    pub items: Vec<(i64, Fed)>,
    /// The position the device holds once it has applied the page.
    pub pos: i64,
    /// More entries follow.
    pub has_more: bool,
}

impl Conversations {
    /// What changed in the caller's own state after feed position `after`.
    pub async fn feed(&self, who: &Identity, after: i64) -> Result<FeedPage> {
        let (entries, mut has_more) = self.store.feed_after(who.user_id, after, FEED_PAGE).await?;
        // Only the latest entry of each subject matters: the answer is its state now.
        let mut latest: HashMap<(FeedKind, &str), i64> = HashMap::new();
        for entry in &entries {
            latest.insert((entry.kind, entry.subject.as_str()), entry.pos);
        }
        let subjects = |kind: FeedKind| latest.keys().filter(move |(k, _)| *k == kind).map(|(_, s)| *s);
        let conversation_ids: Vec<ConversationId> =
            subjects(FeedKind::Conversation).map(|s| ConversationId(s.to_owned())).collect();
        let group_ids: Vec<GroupId> = subjects(FeedKind::Group).filter_map(|s| s.parse().ok()).collect();
        let mut fed: Vec<(i64, Fed)> = Vec::with_capacity(latest.len());
        let states = self.store.conversation_states_in(who.user_id, &conversation_ids).await?;
        for view in self.views(who, states).await? {
            let pos = latest.get(&(FeedKind::Conversation, view.state.conversation_id.as_str())).copied();
            fed.extend(pos.map(|pos| (pos, Fed::Conversation(Box::new(view)))));
        }
        if !group_ids.is_empty() {
            let mine: HashSet<GroupId> = self.store.group_ids_of(who.user_id).await?.into_iter().collect();
            let groups: HashMap<GroupId, Group> =
                self.store.groups_by_ids(&group_ids).await?.into_iter().map(|g| (g.id, g)).collect();
            for id in group_ids {
                let pos = latest[&(FeedKind::Group, id.to_string().as_str())];
                match groups.get(&id) {
                    Some(group) if mine.contains(&id) => fed.push((pos, Fed::Group(group.clone()))),
                    _ => fed.push((pos, Fed::Left(id))),
                }
            }
        }
        let hidden: Vec<MessageId> = subjects(FeedKind::Hidden).filter_map(|s| s.parse().ok()).map(MessageId).collect();
        for message in self.store.messages_by_ids(&hidden).await? {
            if let Some(&pos) = latest.get(&(FeedKind::Hidden, message.id.to_string().as_str())) {
                fed.push((pos, Fed::Hidden(message)));
            }
        }
        if let Some(&pos) = latest.get(&(FeedKind::Profile, who.user_id.to_string().as_str())) {
            fed.extend(self.store.user_by_id(who.user_id).await?.map(|user| (pos, Fed::Profile(user))));
        }
        fed.sort_by_key(|(pos, _)| *pos);
        // Within the byte budget: a page that stops early says so, and its position covers
        // exactly the entries it answers.
        let mut budget = Budget::new(SYNC_FEED_BUDGET);
        let fit = fed.iter().take_while(|(_, item)| budget.admit(size(item))).count();
        let pos = match fed.get(fit).map(|(next, _)| *next) {
            Some(next) => {
                has_more = true;
                fed.truncate(fit);
                entries.iter().map(|e| e.pos).filter(|p| *p < next).max().unwrap_or(after)
            }
            None => entries.last().map_or(after, |e| e.pos),
        };
        Ok(FeedPage { items: fed, pos, has_more })
    }
}

fn size(item: &Fed) -> usize {
    match item {
        Fed::Conversation(view) => view_estimate(view),
        Fed::Group(group) => {
            ENTRY_OVERHEAD + 2 * (group.name.len() + group.avatar.len() + group.intro.len() + group.notice.len())
        }
        Fed::Left(_) | Fed::Hidden(_) => ENTRY_OVERHEAD,
        Fed::Profile(user) => {
            let p = &user.profile;
            ENTRY_OVERHEAD + 2 * (user.username.len() + p.nickname.len() + p.avatar.len() + p.signature.len())
        }
    }
}

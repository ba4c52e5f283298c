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

/// What a feed entry names, parsed from its stored kind and subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Conversation(ConversationId),
    Group(GroupId),
    Hidden(MessageId),
    /// The user's own profile: the feed is theirs, so its subject names no one else.
    Profile,
}

impl Subject {
    fn of(kind: FeedKind, subject: &str) -> Option<Subject> {
        Some(match kind {
            FeedKind::Conversation => Subject::Conversation(ConversationId(subject.to_owned())),
            FeedKind::Group => Subject::Group(subject.parse().ok()?),
            FeedKind::Hidden => Subject::Hidden(subject.parse().ok()?),
            FeedKind::Profile => Subject::Profile,
        })
    }
}

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
        let latest: HashMap<Subject, i64> =
            entries.iter().filter_map(|e| Some((Subject::of(e.kind, &e.subject)?, e.pos))).collect();
        let mut conversation_ids = Vec::new();
        let mut group_ids = Vec::new();
        let mut hidden = Vec::new();
        for subject in latest.keys() {
            match subject {
                Subject::Conversation(id) => conversation_ids.push(id.clone()),
                Subject::Group(id) => group_ids.push(*id),
                Subject::Hidden(id) => hidden.push(*id),
                Subject::Profile => {}
            }
        }
        let pos_of = |subject: Subject| latest.get(&subject).copied();
        let mut fed: Vec<(i64, Fed)> = Vec::with_capacity(latest.len());
        for view in self.infos(who, &conversation_ids).await? {
            let pos = pos_of(Subject::Conversation(view.state.conversation_id.clone()));
            fed.extend(pos.map(|pos| (pos, Fed::Conversation(Box::new(view)))));
        }
        if !group_ids.is_empty() {
            let mine: HashSet<GroupId> = self.store.group_ids_of(who.user_id).await?.into_iter().collect();
            let groups: HashMap<GroupId, Group> =
                self.store.groups_by_ids(&group_ids).await?.into_iter().map(|g| (g.id, g)).collect();
            for id in group_ids {
                let Some(pos) = pos_of(Subject::Group(id)) else { continue };
                match groups.get(&id) {
                    Some(group) if mine.contains(&id) => fed.push((pos, Fed::Group(group.clone()))),
                    _ => fed.push((pos, Fed::Left(id))),
                }
            }
        }
        for message in self.store.messages_by_ids(&hidden).await? {
            fed.extend(pos_of(Subject::Hidden(message.id)).map(|pos| (pos, Fed::Hidden(message))));
        }
        if let Some(pos) = pos_of(Subject::Profile) {
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

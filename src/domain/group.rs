//! The group domain: creation, membership, roles, info, mutes and dismissal.
//!
//! Invariants:
//! - Every route checks the caller's role in the group before it changes or reveals anything.
//!   A non-member may see an open group's info and join it, and nothing else (`forbidden`).
//!   A dismissed group, an unknown id and a malformed id are all `not_found`, to everyone.
//! - `member_count` never exceeds `max_members`, under any concurrency: the store adds members
//!   with a conditional update inside the transaction that inserts them.
//! - Every change is published as an event to every member (and to those it removes), and
//!   recorded as a `system` message in the group's conversation, so history shows it.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::message::Messages;
use super::ports::Events;
use super::text::{checked_text, checked_url};
use crate::error::{Error, Result};
use crate::model::{
    Event, Group, GroupId, GroupPatch, Identity, JoinPolicy, Member, MemberAction, MemberChange, NewGroup, Role,
    Standing, UserId, now_ms,
};
use crate::store::Store;

/// Largest page of members.
const MAX_MEMBER_PAGE: i64 = 200;

/// The group domain's operations.
pub struct Groups {
    store: Arc<dyn Store>,
    events: Arc<dyn Events>,
    timeline: Arc<Messages>,
    max_members_cap: i64,
}

/// The content of a `system` message: `{event, userIds, by, ...extra}`.
fn record(event: &str, user_ids: &[UserId], by: UserId, extra: Value) -> Value {
    let mut content = json!({
        "event": event,
        "userIds": user_ids.iter().map(|id| id.to_string()).collect::<Vec<_>>(),
        "by": by.to_string(),
    });
    if let (Value::Object(content), Value::Object(extra)) = (&mut content, extra) {
        content.extend(extra);
    }
    content
}

fn checked_name(name: String) -> Result<String> {
    let name = checked_text("name", name, 64)?;
    if name.is_empty() {
        return Err(Error::validation("name", "name must not be empty"));
    }
    Ok(name)
}

/// Distinct ids, without `except`.
fn distinct(ids: &[UserId], except: Option<UserId>) -> Vec<UserId> {
    ids.iter().copied().filter(|id| Some(*id) != except).collect::<BTreeSet<_>>().into_iter().collect()
}

impl Groups {
    /// Wires the group domain; `max_members_cap` bounds every group's `maxMembers`.
    pub fn new(store: Arc<dyn Store>, events: Arc<dyn Events>, timeline: Arc<Messages>, max_members_cap: i64) -> Self {
        Groups { store, events, timeline, max_members_cap }
    }

    /// The server's cap on `maxMembers`, also the default.
    pub fn max_members_cap(&self) -> i64 {
        self.max_members_cap
    }

    /// The group and the caller's standing in it; `not_found` for a dismissed or unknown group.
    async fn load(&self, who: &Identity, group_id: GroupId) -> Result<(Group, Option<Standing>)> {
        let (group, standing) = self.store.group_with_standing(group_id, who.user_id).await?.ok_or(Error::NotFound)?;
        Ok((group, standing))
    }

    /// Loads the group and checks the caller holds at least `min`.
    async fn load_as(&self, who: &Identity, group_id: GroupId, min: Role) -> Result<(Group, Role)> {
        match self.load(who, group_id).await? {
            (group, Some(s)) if s.role >= min => Ok((group, s.role)),
            _ => Err(Error::Forbidden),
        }
    }

    async fn check_users(&self, ids: &[UserId]) -> Result<()> {
        let found = self.store.existing_users(ids).await?;
        if found.len() != ids.len() {
            let missing = ids.iter().find(|id| !found.contains(id)).map(|id| id.to_string()).unwrap_or_default();
            return Err(Error::validation("members", format!("no user has id {missing}")));
        }
        Ok(())
    }

    /// Tells every member (and `also`) of a change, and records it in the group's history.
    async fn announce(
        &self,
        group: Group,
        change: Option<MemberChange>,
        also: &[UserId],
        by: UserId,
        history: Value,
        creator: Option<UserId>,
    ) -> Result<Group> {
        let mut recipients = self.store.member_ids(group.id).await?;
        recipients.extend_from_slice(also);
        let (mut joined, left) = match &change {
            Some(c) if matches!(c.action, MemberAction::Joined | MemberAction::Invited) => (c.user_ids.clone(), vec![]),
            Some(c) if matches!(c.action, MemberAction::Left | MemberAction::Kicked) => (vec![], c.user_ids.clone()),
            _ => (vec![], vec![]),
        };
        joined.extend(creator);
        self.events.publish(Event::GroupChanged { group: group.clone(), change, recipients, joined, left });
        self.timeline.append_system(group.id, by, history).await?;
        Ok(group)
    }

    /// [`Self::announce`] for a membership change, recorded under the change's own name.
    async fn announce_change(&self, group: Group, change: MemberChange, also: &[UserId]) -> Result<Group> {
        let history = record(change.action.as_str(), &change.user_ids, change.by, json!({}));
        let by = change.by;
        self.announce(group, Some(change), also, by, history, None).await
    }

    /// Creates a group owned by the caller, with `members` in it at once.
    pub async fn create(&self, who: &Identity, mut new: NewGroup, members: &[UserId]) -> Result<Group> {
        new.name = checked_name(new.name)?;
        new.avatar = checked_url("avatar", new.avatar)?;
        new.intro = checked_text("intro", new.intro, 512)?;
        if !(2..=self.max_members_cap).contains(&new.max_members) {
            return Err(Error::validation(
                "maxMembers",
                format!("maxMembers must be between 2 and {}", self.max_members_cap),
            ));
        }
        let members = distinct(members, Some(who.user_id));
        if members.len() as i64 + 1 > new.max_members {
            return Err(Error::validation("members", "more members than maxMembers allows"));
        }
        self.check_users(&members).await?;
        let group = self.store.create_group(&new, who.user_id, &members, now_ms()).await?;
        let history = record("created", &members, who.user_id, json!({"name": group.name}));
        let change = (!members.is_empty()).then_some(MemberChange {
            action: MemberAction::Invited,
            user_ids: members,
            by: who.user_id,
        });
        self.announce(group, change, &[], who.user_id, history, Some(who.user_id)).await
    }

    /// The caller joins an open group. Joining a group one is in already changes nothing.
    pub async fn join(&self, who: &Identity, group_id: GroupId) -> Result<Group> {
        let (group, standing) = self.load(who, group_id).await?;
        if standing.is_some() {
            return Ok(group);
        }
        if group.join_policy != JoinPolicy::Open {
            return Err(Error::Forbidden);
        }
        let group = self.store.add_members(group_id, &[who.user_id], now_ms()).await?;
        let change = MemberChange { action: MemberAction::Joined, user_ids: vec![who.user_id], by: who.user_id };
        self.announce_change(group, change, &[]).await
    }

    /// The caller leaves. The owner must transfer ownership or dismiss the group instead.
    pub async fn quit(&self, who: &Identity, group_id: GroupId) -> Result<()> {
        let (_, standing) = self.load(who, group_id).await?;
        match standing {
            None => Err(Error::Forbidden),
            Some(s) if s.role == Role::Owner => Err(Error::Forbidden),
            Some(_) => {
                let group = self.store.remove_members(group_id, &[who.user_id], now_ms()).await?;
                let change = MemberChange { action: MemberAction::Left, user_ids: vec![who.user_id], by: who.user_id };
                self.announce_change(group, change, &[who.user_id]).await?;
                Ok(())
            }
        }
    }

    /// An owner or admin adds users; those already in are skipped.
    pub async fn invite(&self, who: &Identity, group_id: GroupId, members: &[UserId]) -> Result<Group> {
        let (group, _) = self.load_as(who, group_id, Role::Admin).await?;
        let members = distinct(members, None);
        if members.is_empty() {
            return Err(Error::validation("members", "members must name at least one user"));
        }
        self.check_users(&members).await?;
        let current = self.store.standings(group_id, &members).await?;
        let new: Vec<UserId> = members.into_iter().filter(|id| !current.contains_key(id)).collect();
        if new.is_empty() {
            return Ok(group);
        }
        let group = self.store.add_members(group_id, &new, now_ms()).await?;
        let change = MemberChange { action: MemberAction::Invited, user_ids: new, by: who.user_id };
        self.announce_change(group, change, &[]).await
    }

    /// Removes members: the owner may remove anyone else, an admin plain members only.
    pub async fn kick(&self, who: &Identity, group_id: GroupId, members: &[UserId]) -> Result<Group> {
        let (_, my_role) = self.load_as(who, group_id, Role::Admin).await?;
        let members = distinct(members, None);
        if members.is_empty() {
            return Err(Error::validation("members", "members must name at least one user"));
        }
        let standings = self.store.standings(group_id, &members).await?;
        for &id in &members {
            let Some(target) = standings.get(&id) else {
                return Err(Error::validation("members", format!("user {id} is not a member")));
            };
            if id == who.user_id || target.role >= my_role {
                return Err(Error::Forbidden);
            }
        }
        let group = self.store.remove_members(group_id, &members, now_ms()).await?;
        let change = MemberChange { action: MemberAction::Kicked, user_ids: members.clone(), by: who.user_id };
        self.announce_change(group, change, &members).await
    }

    /// An owner or admin changes the group's info.
    pub async fn update(&self, who: &Identity, group_id: GroupId, mut patch: GroupPatch) -> Result<Group> {
        self.load_as(who, group_id, Role::Admin).await?;
        patch.name = patch.name.map(checked_name).transpose()?;
        patch.avatar = patch.avatar.map(|a| checked_url("avatar", a)).transpose()?;
        patch.intro = patch.intro.map(|i| checked_text("intro", i, 512)).transpose()?;
        patch.notice = patch.notice.map(|n| checked_text("notice", n, 2048)).transpose()?;
        let fields: Vec<&str> = [
            ("name", patch.name.is_some()),
            ("avatar", patch.avatar.is_some()),
            ("intro", patch.intro.is_some()),
            ("notice", patch.notice.is_some()),
            ("joinPolicy", patch.join_policy.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        let group = self.store.update_group(group_id, &patch, now_ms()).await?;
        let event = if patch.name.is_some() { "renamed" } else { "updated" };
        let history = record(event, &[], who.user_id, json!({"fields": fields, "name": group.name}));
        self.announce(group, None, &[], who.user_id, history, None).await
    }

    /// The owner makes a member an admin or an admin a member.
    pub async fn set_role(&self, who: &Identity, group_id: GroupId, user_id: UserId, role: Role) -> Result<Group> {
        self.load_as(who, group_id, Role::Owner).await?;
        if role == Role::Owner {
            return Err(Error::validation(
                "role",
                "role must be admin or member; ownership moves with /group/room/transfer",
            ));
        }
        let target =
            self.store.standing(group_id, user_id).await?.ok_or_else(|| Error::validation("userId", "not a member"))?;
        if target.role == Role::Owner {
            return Err(Error::Forbidden);
        }
        let group = self.store.set_role(group_id, user_id, role, now_ms()).await?;
        let change = MemberChange { action: MemberAction::Role, user_ids: vec![user_id], by: who.user_id };
        self.announce_change(group, change, &[]).await
    }

    /// The owner hands ownership to a member and becomes an admin.
    pub async fn transfer(&self, who: &Identity, group_id: GroupId, user_id: UserId) -> Result<Group> {
        self.load_as(who, group_id, Role::Owner).await?;
        if user_id == who.user_id {
            return Err(Error::validation("userId", "the owner already owns the group"));
        }
        self.store.standing(group_id, user_id).await?.ok_or_else(|| Error::validation("userId", "not a member"))?;
        let group = self.store.transfer(group_id, who.user_id, user_id, now_ms()).await?;
        let change = MemberChange { action: MemberAction::Role, user_ids: vec![user_id, who.user_id], by: who.user_id };
        self.announce_change(group, change, &[]).await
    }

    /// The owner dismisses the group; from then on it is `not_found`.
    pub async fn dismiss(&self, who: &Identity, group_id: GroupId) -> Result<()> {
        self.load_as(who, group_id, Role::Owner).await?;
        let recipients = self.store.member_ids(group_id).await?;
        // Recorded first: members keep the group's history, ending with its dismissal.
        self.timeline.append_system(group_id, who.user_id, record("dismissed", &[], who.user_id, json!({}))).await?;
        self.store.dismiss(group_id, now_ms()).await?;
        self.events.publish(Event::GroupDismissed { group_id, by: who.user_id, recipients });
        Ok(())
    }

    /// An owner or admin mutes one member, or with no user the whole group, until `until`
    /// (Unix ms; 0 or a past time unmutes). Owners and admins are not silenced by a group mute;
    /// an admin may mute plain members only.
    pub async fn mute(&self, who: &Identity, group_id: GroupId, user_id: Option<UserId>, until: i64) -> Result<Group> {
        let (_, my_role) = self.load_as(who, group_id, Role::Admin).await?;
        if until < 0 {
            return Err(Error::validation("until", "until must be a time in ms, or 0 to unmute"));
        }
        let now = now_ms();
        let (group, user_ids) = match user_id {
            Some(user_id) => {
                let target = self
                    .store
                    .standing(group_id, user_id)
                    .await?
                    .ok_or_else(|| Error::validation("userId", "not a member"))?;
                if user_id == who.user_id || target.role >= my_role {
                    return Err(Error::Forbidden);
                }
                (self.store.mute_member(group_id, user_id, until, now).await?, vec![user_id])
            }
            None => (self.store.mute_group(group_id, until, now).await?, vec![]),
        };
        let history = record("muted", &user_ids, who.user_id, json!({"until": until}));
        let change = MemberChange { action: MemberAction::Muted, user_ids, by: who.user_id };
        self.announce(group, Some(change), &[], who.user_id, history, None).await
    }

    /// A group's info and the caller's role (`None` for a non-member of an open group; an
    /// invite-only group's info is for members only).
    pub async fn info(&self, who: &Identity, group_id: GroupId) -> Result<(Group, Option<Role>)> {
        let (group, standing) = self.load(who, group_id).await?;
        if standing.is_none() && group.join_policy == JoinPolicy::Invite {
            return Err(Error::Forbidden);
        }
        Ok((group, standing.map(|s| s.role)))
    }

    /// The caller's groups, most recently changed first.
    pub async fn list(&self, who: &Identity) -> Result<Vec<Group>> {
        self.store.groups_of(who.user_id).await
    }

    /// A page of members, by user id, for members only.
    pub async fn members(
        &self,
        who: &Identity,
        group_id: GroupId,
        after: Option<UserId>,
        limit: Option<i64>,
    ) -> Result<(Vec<Member>, Option<UserId>)> {
        let limit = limit.unwrap_or(50);
        if !(1..=MAX_MEMBER_PAGE).contains(&limit) {
            return Err(Error::validation("limit", format!("limit must be between 1 and {MAX_MEMBER_PAGE}")));
        }
        self.load_as(who, group_id, Role::Member).await?;
        let mut rows = self.store.members(group_id, after, limit + 1).await?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|m| m.user.id)
        } else {
            None
        };
        Ok((rows, next))
    }
}

//! Groups and their members.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Group, GroupId, GroupPatch, Member, NewGroup, Role, Standing, UserId};

/// Where groups live.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates a group with `owner` as owner and `members` as plain members.
    async fn create_group(&self, new: &NewGroup, owner: UserId, members: &[UserId], now: i64) -> Result<Group>;
    /// A group that is not dismissed, with `user_id`'s standing in it if a member: one read.
    async fn group_with_standing(
        &self,
        group_id: GroupId,
        user_id: UserId,
    ) -> Result<Option<(Group, Option<Standing>)>>;
    /// A user's standing in a group, if a member.
    async fn standing(&self, group_id: GroupId, user_id: UserId) -> Result<Option<Standing>>;
    /// The standings of those of `user_ids` who are members, in one query.
    async fn standings(&self, group_id: GroupId, user_ids: &[UserId]) -> Result<HashMap<UserId, Standing>>;
    /// Every member's user id.
    async fn member_ids(&self, group_id: GroupId) -> Result<Vec<UserId>>;
    /// Adds plain members (skipping those already in) within the cap, atomically:
    /// `GroupFull` if they do not all fit.
    async fn add_members(&self, group_id: GroupId, user_ids: &[UserId], now: i64) -> Result<Group>;
    /// Removes members (never the owner).
    async fn remove_members(&self, group_id: GroupId, user_ids: &[UserId], now: i64) -> Result<Group>;
    /// Applies an info change.
    async fn update_group(&self, group_id: GroupId, patch: &GroupPatch, now: i64) -> Result<Group>;
    /// Sets a member's role.
    async fn set_role(&self, group_id: GroupId, user_id: UserId, role: Role, now: i64) -> Result<Group>;
    /// Makes `to` the owner and `from` an admin.
    async fn transfer(&self, group_id: GroupId, from: UserId, to: UserId, now: i64) -> Result<Group>;
    /// Marks the group dismissed.
    async fn dismiss(&self, group_id: GroupId, now: i64) -> Result<()>;
    /// Mutes the whole group until `until`.
    async fn mute_group(&self, group_id: GroupId, until: i64, now: i64) -> Result<Group>;
    /// Mutes one member until `until`.
    async fn mute_member(&self, group_id: GroupId, user_id: UserId, until: i64, now: i64) -> Result<Group>;
    /// The ids of the (not dismissed) groups a user is in.
    async fn group_ids_of(&self, user_id: UserId) -> Result<Vec<GroupId>>;
    /// [`GroupStore::group_ids_of`] of many users, as `(user, group)` pairs, in a few queries
    /// whatever their number: the periodic revalidation of every live session's groups.
    async fn group_ids_of_users(&self, users: &[UserId]) -> Result<Vec<(UserId, GroupId)>>;
    /// The groups a user is in, most recently changed first.
    async fn groups_of(&self, user_id: UserId) -> Result<Vec<Group>>;
    /// Members with user id above `after`, by user id.
    async fn members(&self, group_id: GroupId, after: Option<UserId>, limit: i64) -> Result<Vec<Member>>;
    /// Groups by id, dismissed ones included (old conversations still name them).
    async fn groups_by_ids(&self, ids: &[GroupId]) -> Result<Vec<Group>>;
}

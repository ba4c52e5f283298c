//! The group routes: creation, membership, roles, info, mutes and dismissal.

use serde::{Deserialize, Serialize};

use super::users::UserInfo;
use super::wire::{Done, de_int, de_loose_id, de_opt_int};
use super::{Api, Ctx, Request};
use crate::error::{Error, Result};
use crate::model::{Group, GroupId, GroupPatch, JoinPolicy, Member, NewGroup, Role, UserId};

/// A group id as sent; malformed ids name no group.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct LooseGroupId(#[serde(deserialize_with = "de_loose_id")] Option<GroupId>);

impl LooseGroupId {
    /// The id, or `not_found` for one that names nothing.
    pub fn get(&self) -> Result<GroupId, Error> {
        self.0.ok_or(Error::NotFound)
    }
}

/// `group` on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    /// Group id.
    pub id: GroupId,
    /// Name.
    pub name: String,
    /// Avatar URL.
    pub avatar: String,
    /// Intro.
    pub intro: String,
    /// Announcement.
    pub notice: String,
    /// Owner's user id.
    pub owner_id: UserId,
    /// `open` or `invite`.
    pub join_policy: &'static str,
    /// Members now.
    pub member_count: i64,
    /// Member cap.
    pub max_members: i64,
    /// Whole-group mute end (0: none).
    pub muted_until: i64,
    /// Created.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

impl From<Group> for GroupInfo {
    fn from(g: Group) -> Self {
        GroupInfo {
            id: g.id,
            name: g.name,
            avatar: g.avatar,
            intro: g.intro,
            notice: g.notice,
            owner_id: g.owner_id,
            join_policy: g.join_policy.as_str(),
            member_count: g.member_count,
            max_members: g.max_members,
            muted_until: g.muted_until,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

fn join_policy(s: Option<String>) -> Result<Option<JoinPolicy>, Error> {
    s.map(|p| JoinPolicy::parse(&p).ok_or_else(|| Error::validation("joinPolicy", "joinPolicy must be open or invite")))
        .transpose()
}

/// `POST /group/room/add`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateGroup {
    /// Name.
    pub name: String,
    /// Avatar URL.
    #[serde(default)]
    pub avatar: String,
    /// Intro.
    #[serde(default)]
    pub intro: String,
    /// Users who join at once.
    #[serde(default)]
    pub members: Vec<UserId>,
    /// `open` (default) or `invite`.
    #[serde(default)]
    pub join_policy: Option<String>,
    /// Member cap (default: the server's cap).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub max_members: Option<i64>,
}

impl CreateGroup {
    /// The join policy, `open` by default.
    pub fn policy(&self) -> Result<JoinPolicy, Error> {
        Ok(join_policy(self.join_policy.clone())?.unwrap_or(JoinPolicy::Open))
    }
}

/// `{groupId}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupRef {
    /// The group.
    pub group_id: LooseGroupId,
}

/// `{groupId, members}` of invite and kick.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupUsers {
    /// The group.
    pub group_id: LooseGroupId,
    /// The users.
    pub members: Vec<UserId>,
}

/// `POST /group/room/update`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateGroup {
    /// The group.
    pub group_id: LooseGroupId,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New avatar.
    #[serde(default)]
    pub avatar: Option<String>,
    /// New intro.
    #[serde(default)]
    pub intro: Option<String>,
    /// New notice.
    #[serde(default)]
    pub notice: Option<String>,
    /// New join policy.
    #[serde(default)]
    pub join_policy: Option<String>,
}

impl UpdateGroup {
    /// The domain patch.
    pub fn into_patch(self) -> Result<GroupPatch, Error> {
        Ok(GroupPatch {
            join_policy: join_policy(self.join_policy)?,
            name: self.name,
            avatar: self.avatar,
            intro: self.intro,
            notice: self.notice,
        })
    }
}

/// `POST /group/room/role`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetRole {
    /// The group.
    pub group_id: LooseGroupId,
    /// The member.
    pub user_id: UserId,
    /// `admin` or `member`.
    pub role: String,
}

impl SetRole {
    /// The role named.
    pub fn role(&self) -> Result<Role, Error> {
        Role::parse(&self.role).ok_or_else(|| Error::validation("role", "role must be admin or member"))
    }
}

/// `{groupId, userId}` of transfer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupUser {
    /// The group.
    pub group_id: LooseGroupId,
    /// The member.
    pub user_id: UserId,
}

/// `POST /group/room/mute`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mute {
    /// The group.
    pub group_id: LooseGroupId,
    /// The member; absent mutes the whole group.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// Until when (ms); 0 unmutes.
    #[serde(deserialize_with = "de_int")]
    pub until: i64,
}

/// `GET /group/room/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MembersQuery {
    /// The group.
    pub group_id: LooseGroupId,
    /// `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<UserId>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

/// `{group}`.
#[derive(Debug, Serialize)]
pub struct GroupReply {
    /// The group.
    pub group: GroupInfo,
}

/// `{group, myRole}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfoReply {
    /// The group.
    pub group: GroupInfo,
    /// The caller's role, null for a non-member.
    pub my_role: Option<&'static str>,
}

/// `{groups}`.
#[derive(Debug, Serialize)]
pub struct GroupListReply {
    /// The caller's groups.
    pub groups: Vec<GroupInfo>,
}

/// One member on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    /// The member's user id.
    pub user_id: UserId,
    /// Public userinfo.
    pub user: UserInfo,
    /// `owner`, `admin` or `member`.
    pub role: &'static str,
    /// Joined.
    pub joined_at: i64,
    /// Personal mute end (0: none).
    pub muted_until: i64,
}

impl From<Member> for MemberInfo {
    fn from(m: Member) -> Self {
        MemberInfo {
            user_id: m.user.id,
            role: m.role.as_str(),
            joined_at: m.joined_at,
            muted_until: m.muted_until,
            user: m.user.into(),
        }
    }
}

/// `{members, nextCursor}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersReply {
    /// By user id.
    pub members: Vec<MemberInfo>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

impl Request for GroupRef {
    fn probe(self) {
        let _ = self.group_id.get();
    }
}
impl Request for GroupUsers {}
impl Request for GroupUser {}
impl Request for Mute {}
impl Request for MembersQuery {}

impl Request for CreateGroup {
    fn probe(self) {
        let _ = self.policy();
    }
}

impl Request for UpdateGroup {
    fn probe(self) {
        let _ = self.into_patch();
    }
}

impl Request for SetRole {
    fn probe(self) {
        let _ = (self.role(), self.group_id.get());
    }
}

fn group(group: Group) -> GroupReply {
    GroupReply { group: group.into() }
}

/// `POST /group/room/add`: creates a group.
pub(super) async fn create(api: &Api, cx: &Ctx<'_>, req: CreateGroup) -> Result<GroupReply> {
    let groups = &api.domain.groups;
    let new = NewGroup {
        join_policy: req.policy()?,
        name: req.name,
        avatar: req.avatar,
        intro: req.intro,
        max_members: req.max_members.unwrap_or_else(|| groups.max_members_cap()),
    };
    let (who, avatar) = (cx.who()?, new.avatar.clone());
    Ok(group(api.with_avatar(who, Some(&avatar), groups.create(who, new, &req.members)).await?))
}

/// `POST /group/room/join`.
pub(super) async fn join(api: &Api, cx: &Ctx<'_>, req: GroupRef) -> Result<GroupReply> {
    Ok(group(api.domain.groups.join(cx.who()?, req.group_id.get()?).await?))
}

/// `POST /group/room/quit`.
pub(super) async fn quit(api: &Api, cx: &Ctx<'_>, req: GroupRef) -> Result<Done> {
    api.domain.groups.quit(cx.who()?, req.group_id.get()?).await?;
    Ok(Done {})
}

/// `POST /group/room/invite`.
pub(super) async fn invite(api: &Api, cx: &Ctx<'_>, req: GroupUsers) -> Result<GroupReply> {
    Ok(group(api.domain.groups.invite(cx.who()?, req.group_id.get()?, &req.members).await?))
}

/// `POST /group/room/kick`.
pub(super) async fn kick(api: &Api, cx: &Ctx<'_>, req: GroupUsers) -> Result<GroupReply> {
    Ok(group(api.domain.groups.kick(cx.who()?, req.group_id.get()?, &req.members).await?))
}

/// `POST /group/room/update`.
pub(super) async fn update(api: &Api, cx: &Ctx<'_>, req: UpdateGroup) -> Result<GroupReply> {
    let (id, who) = (req.group_id.get()?, cx.who()?);
    let patch = req.into_patch()?;
    let avatar = patch.avatar.clone();
    Ok(group(api.with_avatar(who, avatar.as_deref(), api.domain.groups.update(who, id, patch)).await?))
}

/// `POST /group/room/role`.
pub(super) async fn role(api: &Api, cx: &Ctx<'_>, req: SetRole) -> Result<GroupReply> {
    Ok(group(api.domain.groups.set_role(cx.who()?, req.group_id.get()?, req.user_id, req.role()?).await?))
}

/// `POST /group/room/transfer`.
pub(super) async fn transfer(api: &Api, cx: &Ctx<'_>, req: GroupUser) -> Result<GroupReply> {
    Ok(group(api.domain.groups.transfer(cx.who()?, req.group_id.get()?, req.user_id).await?))
}

/// `POST /group/room/dismiss`.
pub(super) async fn dismiss(api: &Api, cx: &Ctx<'_>, req: GroupRef) -> Result<Done> {
    api.domain.groups.dismiss(cx.who()?, req.group_id.get()?).await?;
    Ok(Done {})
}

/// `POST /group/room/mute`.
pub(super) async fn mute(api: &Api, cx: &Ctx<'_>, req: Mute) -> Result<GroupReply> {
    Ok(group(api.domain.groups.mute(cx.who()?, req.group_id.get()?, req.user_id, req.until).await?))
}

/// `GET /group/room/info`.
pub(super) async fn info(api: &Api, cx: &Ctx<'_>, req: GroupRef) -> Result<GroupInfoReply> {
    let (g, role) = api.domain.groups.info(cx.who()?, req.group_id.get()?).await?;
    Ok(GroupInfoReply { group: g.into(), my_role: role.map(|r| r.as_str()) })
}

/// `GET /group/room/list`.
pub(super) async fn list(api: &Api, cx: &Ctx<'_>, _: super::wire::Empty) -> Result<GroupListReply> {
    let list = api.domain.groups.list(cx.who()?).await?;
    Ok(GroupListReply { groups: list.into_iter().map(Into::into).collect() })
}

/// `GET /group/room/members`.
pub(super) async fn members(api: &Api, cx: &Ctx<'_>, req: MembersQuery) -> Result<MembersReply> {
    let (members, next) = api.domain.groups.members(cx.who()?, req.group_id.get()?, req.cursor, req.limit).await?;
    Ok(MembersReply {
        members: members.into_iter().map(Into::into).collect(),
        next_cursor: next.map(|c| c.to_string()),
    })
}

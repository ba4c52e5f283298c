//! Groups: their info, members, roles and standing.

use super::ids::{GroupId, UserId};
use super::user::User;

/// Who may join without an invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPolicy {
    /// Anyone may join.
    Open,
    /// Only an owner or admin can add members.
    Invite,
}

impl JoinPolicy {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JoinPolicy::Open => "open",
            JoinPolicy::Invite => "invite",
        }
    }

    /// Parses the stored and wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(JoinPolicy::Open),
            "invite" => Some(JoinPolicy::Invite),
            _ => None,
        }
    }
}

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// A plain member.
    Member,
    /// May invite, kick members, update info and mute.
    Admin,
    /// The one owner: everything, and only they transfer, promote and dismiss.
    Owner,
}

impl Role {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Parses the stored and wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// What a member-list push says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    /// Joined by themselves.
    Joined,
    /// Left by themselves.
    Left,
    /// Removed by an owner or admin.
    Kicked,
    /// Added by an owner or admin (or at creation).
    Invited,
    /// Role changed (including a transfer of ownership).
    Role,
    /// Muted or unmuted (empty `userIds` for the whole group).
    Muted,
}

impl MemberAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberAction::Joined => "joined",
            MemberAction::Left => "left",
            MemberAction::Kicked => "kicked",
            MemberAction::Invited => "invited",
            MemberAction::Role => "role",
            MemberAction::Muted => "muted",
        }
    }
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Unique id.
    pub id: GroupId,
    /// Name.
    pub name: String,
    /// Avatar URL or empty.
    pub avatar: String,
    /// What it is about.
    pub intro: String,
    /// The announcement.
    pub notice: String,
    /// The owner.
    pub owner_id: UserId,
    /// Join policy.
    pub join_policy: JoinPolicy,
    /// Current members.
    pub member_count: i64,
    /// Member cap.
    pub max_members: i64,
    /// Whole-group mute: plain members cannot send before this time (0: not muted).
    pub muted_until: i64,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// A member with their user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user (public view).
    pub user: User,
    /// Role.
    pub role: Role,
    /// Join time.
    pub joined_at: i64,
    /// This member cannot send before this time (0: not muted).
    pub muted_until: i64,
}

/// The caller's standing in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Role.
    pub role: Role,
    /// Personal mute.
    pub muted_until: i64,
}

/// A new group's fields.
#[derive(Debug, Clone)]
pub struct NewGroup {
    /// Name.
    pub name: String,
    /// Avatar URL.
    pub avatar: String,
    /// Intro.
    pub intro: String,
    /// Join policy.
    pub join_policy: JoinPolicy,
    /// Member cap.
    pub max_members: i64,
}

/// A change to a group's info; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    /// New name.
    pub name: Option<String>,
    /// New avatar.
    pub avatar: Option<String>,
    /// New intro.
    pub intro: Option<String>,
    /// New notice.
    pub notice: Option<String>,
    /// New join policy.
    pub join_policy: Option<JoinPolicy>,
}

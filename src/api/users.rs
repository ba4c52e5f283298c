//! The user routes: accounts, profiles, presence and login history.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::wire::{Done, Empty, de_nullable, de_opt_int};
use super::{Api, Ctx, Request};
use crate::error::{Error, Result};
use crate::model::{Gender, LoginId, LoginRecord, Lookup, ProfilePatch, User, UserId};

/// `userinfo` on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// User id.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Display name.
    pub nickname: String,
    /// Avatar URL.
    pub avatar: String,
    /// `unknown`, `male`, `female` or `other`.
    pub gender: &'static str,
    /// `YYYY-MM-DD`, only in the owner's own view.
    pub birthday: Option<String>,
    /// Age in years.
    pub age: Option<i64>,
    /// Status line.
    pub signature: String,
    /// Registration time.
    pub created_at: i64,
}

impl From<User> for UserInfo {
    fn from(u: User) -> Self {
        UserInfo {
            id: u.id,
            username: u.username,
            nickname: u.profile.nickname,
            avatar: u.profile.avatar,
            gender: u.profile.gender.as_str(),
            birthday: u.profile.birthday,
            age: u.profile.age,
            signature: u.profile.signature,
            created_at: u.created_at,
        }
    }
}

/// `{username, password}` of register and login.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `{token, userinfo}`.
#[derive(Debug, Serialize)]
pub struct AuthReply {
    /// Bearer token.
    pub token: String,
    /// The user.
    pub userinfo: UserInfo,
}

/// `{username}` of changePassword.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotPassword {
    /// Whose password to reset.
    pub username: String,
}

/// `{callback}`.
#[derive(Debug, Serialize)]
pub struct CallbackReply {
    /// Where the reset secret is used.
    pub callback: String,
}

/// `{resetToken, password}` of resetPassword.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResetPassword {
    /// The secret from the notification.
    pub reset_token: String,
    /// The new password.
    pub password: String,
}

/// `{token}` of /user/auth.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthToken {
    /// The bearer token.
    pub token: String,
}

/// `{id?, username?}` of GET /user/info.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoQuery {
    /// Another user's id.
    #[serde(default)]
    pub id: Option<UserId>,
    /// Another user's username.
    #[serde(default)]
    pub username: Option<String>,
}

/// `{userinfo}`.
#[derive(Debug, Serialize)]
pub struct UserInfoReply {
    /// The user.
    pub userinfo: UserInfo,
}

/// `{userinfo: {...}}` of POST /user/info.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoUpdate {
    /// The fields to change.
    pub userinfo: UserInfoPatch,
}

/// The changeable part of `userinfo`. Read-only fields a client echoes back are accepted and
/// ignored when unchanged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserInfoPatch {
    /// Ignored.
    #[serde(default, rename = "id")]
    _id: Option<Value>,
    /// Ignored.
    #[serde(default, rename = "createdAt")]
    _created_at: Option<Value>,
    /// Must equal the current username if present.
    #[serde(default)]
    pub username: Option<String>,
    /// Refused if present.
    #[serde(default)]
    pub password: Option<Value>,
    /// New nickname.
    #[serde(default)]
    pub nickname: Option<String>,
    /// New avatar URL.
    #[serde(default)]
    pub avatar: Option<String>,
    /// New gender.
    #[serde(default)]
    pub gender: Option<String>,
    /// New birthday, or null to clear.
    #[serde(default, deserialize_with = "de_nullable")]
    pub birthday: Option<Option<String>>,
    /// New age, or null to clear.
    #[serde(default, deserialize_with = "de_nullable")]
    pub age: Option<Option<i64>>,
    /// New signature.
    #[serde(default)]
    pub signature: Option<String>,
}

impl UserInfoPatch {
    /// The domain patch; the gender string must name a gender.
    pub fn into_patch(self) -> Result<(Option<String>, ProfilePatch), Error> {
        if self.password.is_some() {
            return Err(Error::validation("password", "the password is changed through /user/changePassword"));
        }
        let gender = self
            .gender
            .map(|g| {
                Gender::parse(&g)
                    .ok_or_else(|| Error::validation("gender", "gender must be unknown, male, female or other"))
            })
            .transpose()?;
        Ok((
            self.username,
            ProfilePatch {
                nickname: self.nickname,
                avatar: self.avatar,
                gender,
                birthday: self.birthday,
                age: self.age,
                signature: self.signature,
            },
        ))
    }
}

/// `{cursor?, limit?}` of /user/loginLog.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginLogQuery {
    /// `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<LoginId>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

/// One login-log entry on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginLogEntry {
    /// Entry id.
    pub id: LoginId,
    /// When.
    pub at: i64,
    /// Client address.
    pub ip: String,
    /// User agent or device.
    pub user_agent: String,
    /// `ws` or `http`.
    pub transport: String,
    /// Whether it succeeded.
    pub success: bool,
}

impl From<LoginRecord> for LoginLogEntry {
    fn from(r: LoginRecord) -> Self {
        LoginLogEntry {
            id: r.id,
            at: r.at,
            ip: r.ip,
            user_agent: r.user_agent,
            transport: r.transport,
            success: r.success,
        }
    }
}

/// `{logs, nextCursor}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginLogReply {
    /// Newest first.
    pub logs: Vec<LoginLogEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /user/online {ids}`: ids as a list, or over HTTP as one comma-separated parameter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineQuery {
    /// The users asked about.
    #[serde(deserialize_with = "de_id_list")]
    pub ids: Vec<UserId>,
}

fn de_id_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<UserId>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().parse().map_err(|_| serde::de::Error::custom("not an id")))
            .collect(),
        other => Vec::<UserId>::deserialize(other).map_err(serde::de::Error::custom),
    }
}

/// `{online: {id: bool}}`.
#[derive(Debug, Serialize)]
pub struct OnlineReply {
    /// Whether each user asked about has a live session on any node.
    pub online: BTreeMap<String, bool>,
}

impl Request for Credentials {}
impl Request for ForgotPassword {}
impl Request for ResetPassword {}
impl Request for AuthToken {}
impl Request for InfoQuery {}
impl Request for LoginLogQuery {}
impl Request for OnlineQuery {}
impl Request for Empty {}

impl Request for InfoUpdate {
    fn probe(self) {
        let _ = self.userinfo.into_patch();
    }
}

/// `POST /user/register`.
pub(super) async fn register(api: &Api, cx: &Ctx<'_>, req: Credentials) -> Result<AuthReply> {
    let (token, identity, user) = api.domain.users.register(&req.username, req.password, cx.origin()).await?;
    cx.bind(identity);
    Ok(AuthReply { token, userinfo: user.into() })
}

/// `POST /user/login`.
pub(super) async fn login(api: &Api, cx: &Ctx<'_>, req: Credentials) -> Result<AuthReply> {
    let (token, identity, user) = api.domain.users.login(&req.username, req.password, cx.origin()).await?;
    cx.bind(identity);
    Ok(AuthReply { token, userinfo: user.into() })
}

/// `/user/auth` (socket only): binds the session to a token.
pub(super) async fn auth(api: &Api, cx: &Ctx<'_>, req: AuthToken) -> Result<UserInfoReply> {
    let identity = api.domain.users.authenticate(&req.token).await?;
    let user = api.domain.users.info(&identity, Lookup::Me).await?;
    cx.bind(identity);
    Ok(UserInfoReply { userinfo: user.into() })
}

/// `POST /user/changePassword`: starts a reset.
pub(super) async fn change_password(api: &Api, _: &Ctx<'_>, req: ForgotPassword) -> Result<CallbackReply> {
    Ok(CallbackReply { callback: api.domain.users.forgot_password(&req.username).await? })
}

/// `POST /user/resetPassword`.
pub(super) async fn reset_password(api: &Api, _: &Ctx<'_>, req: ResetPassword) -> Result<Done> {
    api.domain.users.reset_password(&req.reset_token, req.password).await?;
    Ok(Done {})
}

/// `GET /user/info`.
pub(super) async fn info(api: &Api, cx: &Ctx<'_>, req: InfoQuery) -> Result<UserInfoReply> {
    let lookup = match (req.id, req.username) {
        (Some(id), _) => Lookup::Id(id),
        (None, Some(name)) => Lookup::Username(name),
        (None, None) => Lookup::Me,
    };
    Ok(UserInfoReply { userinfo: api.domain.users.info(cx.who()?, lookup).await?.into() })
}

/// `POST /user/info`.
pub(super) async fn update_info(api: &Api, cx: &Ctx<'_>, req: InfoUpdate) -> Result<UserInfoReply> {
    let who = cx.who()?;
    let (username, patch) = req.userinfo.into_patch()?;
    if let Some(username) = username {
        let me = api.domain.users.info(who, Lookup::Me).await?;
        if me.username != username {
            return Err(Error::validation("username", "the username cannot be changed"));
        }
    }
    let avatar = patch.avatar.clone();
    let user = api.with_avatar(who, avatar.as_deref(), api.domain.users.update_profile(who, patch)).await?;
    Ok(UserInfoReply { userinfo: user.into() })
}

/// `GET /user/online`.
pub(super) async fn online(api: &Api, _: &Ctx<'_>, req: OnlineQuery) -> Result<OnlineReply> {
    if req.ids.len() > 200 {
        return Err(Error::validation("ids", "ask about at most 200 users at once"));
    }
    let online = api.domain.presence.online(&req.ids).await.map_err(|err| {
        tracing::warn!(error = %err, "presence lookup failed");
        Error::Unavailable
    })?;
    Ok(OnlineReply { online: req.ids.iter().map(|id| id.to_string()).zip(online).collect() })
}

/// `{ticket, expiresAt}` of /user/ticket.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketReply {
    /// Opens one socket as `GET /ws?ticket=…`.
    pub ticket: String,
    /// When it stops working, Unix ms (30 s from now).
    pub expires_at: i64,
}

/// `POST /user/ticket`: a single-use socket ticket for the caller's token.
pub(super) async fn ticket(api: &Api, cx: &Ctx<'_>, _: IgnoredAny) -> Result<TicketReply> {
    let (ticket, expires_at) = api.domain.users.issue_ticket(cx.who()?).await?;
    Ok(TicketReply { ticket, expires_at })
}

/// `POST /user/logout`.
pub(super) async fn logout(api: &Api, cx: &Ctx<'_>, _: IgnoredAny) -> Result<Done> {
    api.domain.users.logout(cx.who()?).await?;
    Ok(Done {})
}

/// `GET /user/loginLog`.
pub(super) async fn login_log(api: &Api, cx: &Ctx<'_>, req: LoginLogQuery) -> Result<LoginLogReply> {
    let (rows, next) = api.domain.users.login_log(cx.who()?, req.cursor, req.limit).await?;
    Ok(LoginLogReply { logs: rows.into_iter().map(Into::into).collect(), next_cursor: next.map(|c| c.to_string()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::wire::parse;

    #[test]
    fn field_errors_name_the_field() {
        let err = parse::<Credentials>(serde_json::json!({"username":"a"})).unwrap_err();
        assert_eq!(err.reason(), "validation.password");
        let err = parse::<Credentials>(serde_json::json!({"username":5,"password":"x"})).unwrap_err();
        assert_eq!(err.reason(), "validation.username");
    }
}

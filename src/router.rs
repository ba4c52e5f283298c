//! The one router: every route, whichever transport it came over.
//!
//! Transports decode a frame into `(route, method, data)`, say who is calling, and get back a
//! JSON value or an [`Error`]. The router parses the route's request type from `proto`, calls
//! the domain, and shapes the reply. It is the only place that knows both wire types and the
//! domain.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

use crate::conversation::Conversations;
use crate::events::Presence;
use crate::group::{Groups, NewGroup};
use crate::limits::Limits;
use crate::media::{Download, Media};
use crate::message::{Messages, Outgoing};
use crate::proto::{
    self, AuthReply, CallbackReply, GroupInfoReply, GroupListReply, GroupReply, LoginLogReply, MembersReply,
    UserInfoReply,
};
use crate::store::FileMeta;
use crate::user::{Identity, Lookup, Origin, Users};

/// How the caller is authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials.
    Anonymous,
    /// A bearer token not yet checked (HTTP: checked only by routes that need it).
    Token(String),
    /// A session already bound to a user (WebSocket).
    Session(Identity),
}

/// Who is calling, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Credentials.
    pub auth: Auth,
    /// Address, user agent, transport.
    pub origin: Origin,
}

/// The HTTP method, or none for a socket frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// HTTP GET, query parameters.
    Get,
    /// HTTP POST, a body.
    Post,
    /// A socket frame: where a path has both forms, `data` decides.
    Socket,
}

/// A route's result.
#[derive(Debug)]
pub struct Outcome {
    /// The reply's `data`.
    pub data: Value,
    /// Set when the call authenticated the caller (login, register, auth): a socket binds to it.
    pub bind: Option<Identity>,
}

/// The router.
pub struct Router {
    users: Users,
    groups: Groups,
    messages: Arc<Messages>,
    conversations: Conversations,
    media: Media,
    presence: Arc<dyn Presence>,
    limits: Arc<Limits>,
}

fn reply(data: impl Serialize) -> Result<Outcome> {
    Ok(Outcome { data: serde_json::to_value(data).map_err(Error::internal)?, bind: None })
}

fn post(method: Method) -> Result<()> {
    if method == Method::Get { Err(Error::MethodNotAllowed) } else { Ok(()) }
}

fn get(method: Method) -> Result<()> {
    if method == Method::Post { Err(Error::MethodNotAllowed) } else { Ok(()) }
}

impl Router {
    /// Builds the router over the domain services.
    pub fn new(
        users: Users,
        groups: Groups,
        messages: Arc<Messages>,
        conversations: Conversations,
        media: Media,
        presence: Arc<dyn Presence>,
        limits: Arc<Limits>,
    ) -> Self {
        Router { users, groups, messages, conversations, media, presence, limits }
    }

    /// `POST /file/upload`: streams `body` into storage. Answers `{fileId, url, size, mime, sha256}`.
    pub async fn upload<S, E>(&self, caller: &Caller, body: S) -> Result<Value>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let who = self.identity(caller).await?;
        let meta = self.media.upload(&who, body).await?;
        let reply = proto::UploadReply {
            url: format!("/file/{}", meta.id),
            file_id: meta.id,
            size: meta.size,
            mime: meta.mime,
            sha256: meta.sha256,
        };
        serde_json::to_value(reply).map_err(Error::internal)
    }

    /// `GET /file/{fileId}`: the file's metadata, for any logged-in caller.
    pub async fn file(&self, caller: &Caller, id: &str) -> Result<FileMeta> {
        self.identity(caller).await?;
        self.media.meta(id).await
    }

    /// The bytes of a file [`Router::file`] found, or a range of them.
    pub async fn download(&self, meta: FileMeta, range: Option<std::ops::Range<u64>>) -> Result<Download> {
        self.media.download(meta, range).await
    }

    /// Checks a bearer token (used by transports at the handshake).
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        self.users.authenticate(token).await
    }

    async fn identity(&self, caller: &Caller) -> Result<Identity> {
        match &caller.auth {
            Auth::Anonymous => Err(Error::AuthRequired),
            Auth::Token(token) => self.users.authenticate(token).await,
            Auth::Session(identity) => Ok(identity.clone()),
        }
    }

    /// Serves one request.
    pub async fn dispatch(&self, caller: &Caller, method: Method, route: &str, data: Value) -> Result<Outcome> {
        let (session, user) = match &caller.auth {
            Auth::Session(identity) => (identity.session, Some(identity.user_id)),
            _ => (None, None),
        };
        self.limits.request(session, user, caller.origin.ip.parse().ok())?;
        match route {
            "/user/register" => {
                post(method)?;
                let req: proto::Credentials = proto::parse(data)?;
                let (token, identity, user) =
                    self.users.register(&req.username, req.password, caller.origin.clone()).await?;
                let mut out = reply(AuthReply { token, userinfo: user.into() })?;
                out.bind = Some(identity);
                Ok(out)
            }
            "/user/login" => {
                post(method)?;
                let req: proto::Credentials = proto::parse(data)?;
                let (token, identity, user) =
                    self.users.login(&req.username, req.password, caller.origin.clone()).await?;
                let mut out = reply(AuthReply { token, userinfo: user.into() })?;
                out.bind = Some(identity);
                Ok(out)
            }
            "/user/auth" => {
                if method != Method::Socket {
                    return Err(Error::SocketOnly);
                }
                let req: proto::AuthToken = proto::parse(data)?;
                let identity = self.users.authenticate(&req.token).await?;
                let user = self.users.info(&identity, Lookup::Me).await?;
                let mut out = reply(UserInfoReply { userinfo: user.into() })?;
                out.bind = Some(identity);
                Ok(out)
            }
            "/user/changePassword" => {
                post(method)?;
                let req: proto::ForgotPassword = proto::parse(data)?;
                reply(CallbackReply { callback: self.users.forgot_password(&req.username).await? })
            }
            "/user/resetPassword" => {
                post(method)?;
                let req: proto::ResetPassword = proto::parse(data)?;
                self.users.reset_password(&req.reset_token, req.password).await?;
                reply(serde_json::json!({}))
            }
            "/user/info" => {
                let is_post = match method {
                    Method::Socket => data.get("userinfo").is_some(),
                    m => m == Method::Post,
                };
                let who = self.identity(caller).await?;
                let user = if is_post {
                    let req: proto::InfoUpdate = proto::parse(data)?;
                    let (username, patch) = req.userinfo.into_patch()?;
                    if let Some(username) = username {
                        let me = self.users.info(&who, Lookup::Me).await?;
                        if me.username != username {
                            return Err(Error::validation("username", "the username cannot be changed"));
                        }
                    }
                    self.users.update_profile(&who, patch).await?
                } else {
                    let req: proto::InfoQuery = proto::parse(data)?;
                    let lookup = match (req.id, req.username) {
                        (Some(id), _) => Lookup::Id(id),
                        (None, Some(name)) => Lookup::Username(name),
                        (None, None) => Lookup::Me,
                    };
                    self.users.info(&who, lookup).await?
                };
                reply(UserInfoReply { userinfo: user.into() })
            }
            "/user/online" => {
                get(method)?;
                self.identity(caller).await?;
                let req: proto::OnlineQuery = proto::parse(data)?;
                if req.ids.len() > 200 {
                    return Err(Error::validation("ids", "ask about at most 200 users at once"));
                }
                let online = self.presence.online(&req.ids).await.map_err(|err| {
                    tracing::warn!(error = %err, "presence lookup failed");
                    Error::Unavailable
                })?;
                reply(proto::OnlineReply { online: req.ids.iter().map(|id| id.to_string()).zip(online).collect() })
            }
            "/user/logout" => {
                post(method)?;
                let who = self.identity(caller).await?;
                self.users.logout(&who).await?;
                reply(serde_json::json!({}))
            }
            "/user/loginLog" => {
                get(method)?;
                let who = self.identity(caller).await?;
                let req: proto::LoginLogQuery = proto::parse(data)?;
                let (rows, next) = self.users.login_log(&who, req.cursor, req.limit).await?;
                reply(LoginLogReply {
                    logs: rows.into_iter().map(Into::into).collect(),
                    next_cursor: next.map(|c| c.to_string()),
                })
            }
            route if route.starts_with("/group/room/") => self.group_route(caller, method, route, data).await,
            route if route.starts_with("/message/") || route.starts_with("/conversation/") => {
                self.chat_route(caller, method, route, data).await
            }
            _ => Err(Error::UnknownRoute),
        }
    }

    async fn group_route(&self, caller: &Caller, method: Method, route: &str, data: Value) -> Result<Outcome> {
        let groups = &self.groups;
        let group = |g| reply(GroupReply { group: proto::GroupInfo::from(g) });
        match route {
            "/group/room/info" | "/group/room/list" | "/group/room/members" => get(method)?,
            "/group/room/add"
            | "/group/room/join"
            | "/group/room/quit"
            | "/group/room/invite"
            | "/group/room/kick"
            | "/group/room/update"
            | "/group/room/role"
            | "/group/room/transfer"
            | "/group/room/dismiss"
            | "/group/room/mute" => post(method)?,
            _ => return Err(Error::UnknownRoute),
        }
        let who = self.identity(caller).await?;
        match route {
            "/group/room/add" => {
                let req: proto::CreateGroup = proto::parse(data)?;
                let new = NewGroup {
                    join_policy: req.policy()?,
                    name: req.name,
                    avatar: req.avatar,
                    intro: req.intro,
                    max_members: req.max_members.unwrap_or_else(|| groups.max_members_cap()),
                };
                group(groups.create(&who, new, &req.members).await?)
            }
            "/group/room/join" => {
                let req: proto::GroupRef = proto::parse(data)?;
                group(groups.join(&who, req.group_id.get()?).await?)
            }
            "/group/room/quit" => {
                let req: proto::GroupRef = proto::parse(data)?;
                groups.quit(&who, req.group_id.get()?).await?;
                reply(serde_json::json!({}))
            }
            "/group/room/invite" => {
                let req: proto::GroupUsers = proto::parse(data)?;
                group(groups.invite(&who, req.group_id.get()?, &req.members).await?)
            }
            "/group/room/kick" => {
                let req: proto::GroupUsers = proto::parse(data)?;
                group(groups.kick(&who, req.group_id.get()?, &req.members).await?)
            }
            "/group/room/update" => {
                let req: proto::UpdateGroup = proto::parse(data)?;
                let id = req.group_id.get()?;
                group(groups.update(&who, id, req.into_patch()?).await?)
            }
            "/group/room/role" => {
                let req: proto::SetRole = proto::parse(data)?;
                group(groups.set_role(&who, req.group_id.get()?, req.user_id, req.role()?).await?)
            }
            "/group/room/transfer" => {
                let req: proto::GroupUser = proto::parse(data)?;
                group(groups.transfer(&who, req.group_id.get()?, req.user_id).await?)
            }
            "/group/room/dismiss" => {
                let req: proto::GroupRef = proto::parse(data)?;
                groups.dismiss(&who, req.group_id.get()?).await?;
                reply(serde_json::json!({}))
            }
            "/group/room/mute" => {
                let req: proto::Mute = proto::parse(data)?;
                group(groups.mute(&who, req.group_id.get()?, req.user_id, req.until).await?)
            }
            "/group/room/info" => {
                let req: proto::GroupRef = proto::parse(data)?;
                let (g, role) = groups.info(&who, req.group_id.get()?).await?;
                reply(GroupInfoReply { group: g.into(), my_role: role.map(|r| r.as_str()) })
            }
            "/group/room/list" => {
                proto::parse::<proto::Empty>(data)?;
                let list = groups.list(&who).await?;
                reply(GroupListReply { groups: list.into_iter().map(Into::into).collect() })
            }
            _ => {
                let req: proto::MembersQuery = proto::parse(data)?;
                let (members, next) = groups.members(&who, req.group_id.get()?, req.cursor, req.limit).await?;
                reply(MembersReply {
                    members: members.into_iter().map(Into::into).collect(),
                    next_cursor: next.map(|c| c.to_string()),
                })
            }
        }
    }

    async fn chat_route(&self, caller: &Caller, method: Method, route: &str, data: Value) -> Result<Outcome> {
        match route {
            "/message/history"
            | "/message/readers"
            | "/conversation/list"
            | "/conversation/info"
            | "/conversation/unread" => get(method)?,
            "/message/send"
            | "/message/sync"
            | "/message/recall"
            | "/message/typing"
            | "/conversation/update"
            | "/conversation/read" => post(method)?,
            _ => return Err(Error::UnknownRoute),
        }
        let who = self.identity(caller).await?;
        let (messages, conversations) = (&self.messages, &self.conversations);
        match route {
            "/message/send" => {
                let req: proto::SendMessage = proto::parse(data)?;
                let chat_type = req.chat_type()?;
                let out = Outgoing {
                    chat_type,
                    to: req.to.ok_or(Error::NotFound)?,
                    kind: req.kind,
                    content: req.content,
                    client_msg_id: req.client_msg_id,
                };
                reply(proto::MessageReply { message: messages.send(&who, out).await?.into() })
            }
            "/message/history" => {
                let req: proto::HistoryQuery = proto::parse(data)?;
                let (page, has_more) =
                    messages.history(&who, &req.conversation_id, req.before_seq, req.after_seq, req.limit).await?;
                reply(proto::HistoryReply { messages: page.into_iter().map(Into::into).collect(), has_more })
            }
            "/message/sync" => {
                let req: proto::SyncRequest = proto::parse(data)?;
                let known: HashMap<String, i64> =
                    req.conversations.into_iter().map(|k| (k.conversation_id, k.seq)).collect();
                let (synced, has_more) = messages.sync(&who, &known).await?;
                let mut out = Vec::with_capacity(synced.len());
                for conversation in synced {
                    let view = conversations.info(&who, &conversation.conversation_id).await?;
                    out.push(proto::SyncedInfo {
                        conversation: view.into(),
                        messages: conversation.messages.into_iter().map(Into::into).collect(),
                        has_more: conversation.has_more,
                    });
                }
                reply(proto::SyncReply { conversations: out, has_more })
            }
            "/message/recall" => {
                let req: proto::MessageRef = proto::parse(data)?;
                let message = messages.recall(&who, req.message_id.ok_or(Error::NotFound)?).await?;
                reply(proto::MessageReply { message: message.into() })
            }
            "/message/typing" => {
                let req: proto::ConversationRef = proto::parse(data)?;
                messages.typing(&who, &req.conversation_id).await?;
                reply(serde_json::json!({}))
            }
            "/message/readers" => {
                let req: proto::MessageRef = proto::parse(data)?;
                let readers = messages.readers(&who, req.message_id.ok_or(Error::NotFound)?).await?;
                reply(proto::ReadersReply { count: readers.len(), user_ids: readers })
            }
            "/conversation/list" => {
                let req: proto::ConversationListQuery = proto::parse(data)?;
                let (views, total_unread, next) = conversations.list(&who, req.cursor, req.limit).await?;
                reply(proto::ConversationListReply {
                    conversations: views.into_iter().map(Into::into).collect(),
                    total_unread,
                    next_cursor: next.map(|c| c.to_string()),
                })
            }
            "/conversation/info" => {
                let req: proto::ConversationRef = proto::parse(data)?;
                reply(proto::ConversationReply {
                    conversation: conversations.info(&who, &req.conversation_id).await?.into(),
                })
            }
            "/conversation/update" => {
                let req: proto::ConversationUpdate = proto::parse(data)?;
                let view = conversations.update(&who, &req.conversation_id, req.patch()).await?;
                reply(proto::ConversationReply { conversation: view.into() })
            }
            "/conversation/read" => {
                let req: proto::ReadRequest = proto::parse(data)?;
                let view = conversations.read(&who, &req.conversation_id, req.seq).await?;
                reply(proto::ConversationReply { conversation: view.into() })
            }
            _ => {
                proto::parse::<proto::Empty>(data)?;
                let (total, per) = conversations.unread(&who).await?;
                reply(proto::UnreadReply {
                    total,
                    conversations: per
                        .into_iter()
                        .map(|(conversation_id, unread)| proto::UnreadEntry { conversation_id, unread })
                        .collect(),
                })
            }
        }
    }
}

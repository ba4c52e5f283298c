//! The wire contract: frames, their two encodings, and the request and reply shapes of every
//! route. Documented for people in `proto-docs/`.
//!
//! Invariants:
//! - A text frame is JSON and a binary frame is MessagePack (maps with field names); a reply
//!   uses the encoding of its request.
//! - Ids are strings on the wire; times are integer Unix milliseconds.
//! - A push is encoded at most once per format, however many sessions receive it
//!   ([`Push`] caches its encodings).

use std::borrow::Cow;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::conversation::{ConversationPatch, ConversationView, Peer};
use crate::error::Error;
use crate::group::{Group, GroupPatch, JoinPolicy, Member, Role};
use crate::message::{ChatType, Message};
use crate::user::{Gender, LoginRecord, ProfilePatch, User};

/// A frame encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON in text frames.
    Json,
    /// MessagePack in binary frames.
    MsgPack,
}

/// An encoded frame, ready for a socket or an HTTP body. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Payload {
    /// JSON text.
    Text(Utf8Bytes),
    /// MessagePack bytes.
    Binary(Bytes),
}

impl Payload {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Text(t) => t.as_bytes(),
            Payload::Binary(b) => b,
        }
    }
}

/// A request id chosen by the client and echoed in the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

/// A decoded client frame.
#[derive(Debug)]
pub enum Incoming {
    /// `{"type":"req","id":..,"route":..,"data":..}`
    Request {
        /// Echoed in the reply.
        id: RequestId,
        /// The route path, such as `/user/login`.
        route: String,
        /// The route's arguments (an empty object when absent).
        data: Value,
    },
    /// `{"type":"ping"}`, answered with `{"type":"pong"}`.
    Ping,
}

/// A frame that could not be turned into [`Incoming`], with the request id if one was readable.
#[derive(Debug)]
pub struct BadFrame {
    /// The request id, when the frame had a readable one.
    pub id: Option<RequestId>,
    /// What was wrong.
    pub error: Error,
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    route: Option<Value>,
    #[serde(default)]
    data: Option<Value>,
}

/// Decodes one client frame.
pub fn decode(bytes: &[u8], format: Format) -> Result<Incoming, BadFrame> {
    let raw: RawFrame = match format {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Format::MsgPack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
    }
    .map_err(|e| BadFrame { id: None, error: Error::MalformedFrame(e) })?;
    let id = raw
        .id
        .map(serde_json::from_value::<RequestId>)
        .transpose()
        .map_err(|_| BadFrame { id: None, error: Error::MalformedFrame("id must be a string or an integer".into()) })?;
    match raw.kind.as_str() {
        "ping" => Ok(Incoming::Ping),
        "req" => {
            let bad = |msg: &str| BadFrame { id: id.clone(), error: Error::MalformedFrame(msg.into()) };
            let Some(id) = id.clone() else {
                return Err(bad("a request needs an id"));
            };
            let Some(Value::String(route)) = raw.route else {
                return Err(bad("a request needs a route string"));
            };
            let data = match raw.data {
                None | Some(Value::Null) => Value::Object(Default::default()),
                Some(obj @ Value::Object(_)) => obj,
                Some(_) => return Err(bad("data must be an object")),
            };
            Ok(Incoming::Request { id, route, data })
        }
        _ => Err(BadFrame { id, error: Error::UnknownFrameType }),
    }
}

/// The reply frame; over HTTP the same object without `type` and `id`.
#[derive(Debug, Serialize)]
pub struct Reply<'a> {
    /// Always `"res"` on the socket; absent over HTTP.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The request id; absent over HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a RequestId>,
    /// 0 on success, 1 on failure.
    pub code: u8,
    /// For people.
    pub message: String,
    /// The route's result, or null on failure.
    pub data: Option<Value>,
    /// The wire reason, on failure only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<std::borrow::Cow<'static, str>>,
    /// With `rate_limited`: milliseconds before a retry may succeed.
    #[serde(rename = "retryAfter", skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl<'a> Reply<'a> {
    /// Builds the reply to a request, successful or not.
    pub fn new(id: Option<&'a RequestId>, socket: bool, result: Result<Value, Error>) -> Self {
        let kind = socket.then_some("res");
        match result {
            Ok(data) => {
                Reply { kind, id, code: 0, message: "ok".into(), data: Some(data), error: None, retry_after: None }
            }
            Err(err) => Reply {
                kind,
                id,
                code: 1,
                message: err.public_message(),
                data: None,
                error: Some(err.reason()),
                retry_after: match err {
                    Error::RateLimited { retry_after_ms } => Some(retry_after_ms),
                    _ => None,
                },
            },
        }
    }
}

/// Encodes any frame in `format`.
pub fn encode<T: Serialize>(frame: &T, format: Format) -> Payload {
    match format {
        // Serializing our own types to JSON cannot fail: their maps have string keys.
        Format::Json => Payload::Text(serde_json::to_string(frame).unwrap_or_default().into()),
        Format::MsgPack => Payload::Binary(rmp_serde::to_vec_named(frame).unwrap_or_default().into()),
    }
}

/// `{"type":"pong"}`.
pub fn pong(format: Format) -> Payload {
    #[derive(Serialize)]
    struct Pong {
        #[serde(rename = "type")]
        kind: &'static str,
    }
    encode(&Pong { kind: "pong" }, format)
}

/// A server push, encoded lazily and at most once per format.
#[derive(Debug)]
pub struct Push {
    event: Cow<'static, str>,
    data: Value,
    json: OnceLock<Payload>,
    msgpack: OnceLock<Payload>,
}

#[derive(Serialize)]
struct PushFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'a str,
    data: &'a Value,
}

impl Push {
    /// A push of `event` with `data`, to be shared among recipients.
    pub fn new(event: &'static str, data: impl Serialize) -> Push {
        Push {
            event: Cow::Borrowed(event),
            data: serde_json::to_value(data).unwrap_or(Value::Null),
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
        }
    }

    /// A push read back from its JSON frame (as another node sent it); the JSON encoding is
    /// the frame itself, so only MessagePack sessions cost an encode.
    pub fn from_json_frame(frame: String) -> Option<Push> {
        #[derive(Deserialize)]
        struct Frame {
            event: String,
            data: Value,
        }
        let parsed: Frame = serde_json::from_str(&frame).ok()?;
        let json = OnceLock::new();
        let _ = json.set(Payload::Text(frame.into()));
        Some(Push { event: Cow::Owned(parsed.event), data: parsed.data, json, msgpack: OnceLock::new() })
    }

    /// The JSON frame's text.
    pub fn json_text(&self) -> String {
        match self.payload(Format::Json) {
            Payload::Text(text) => text.as_str().to_owned(),
            Payload::Binary(_) => String::new(),
        }
    }

    /// The push in `format`, encoded on first use.
    pub fn payload(&self, format: Format) -> Payload {
        let cell = match format {
            Format::Json => &self.json,
            Format::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| encode(&PushFrame { kind: "push", event: &self.event, data: &self.data }, format)).clone()
    }
}

/// Event names of pushes.
pub mod event {
    /// The session was ended by logout or password reset; `{reason}`.
    pub const SESSION_KICKED: &str = "session.kicked";
    /// The session is authenticated; `{userId, node, pingInterval, pongTimeout}`.
    pub const SESSION_READY: &str = "session.ready";
    /// A group's info or counts changed; `{group}`.
    pub const GROUP_UPDATED: &str = "group.updated";
    /// A group's membership changed; `{groupId, action, userIds, by}`.
    pub const GROUP_MEMBER: &str = "group.member";
    /// A group was dismissed; `{groupId, by}`.
    pub const GROUP_DISMISSED: &str = "group.dismissed";
    /// A new message; `{message}`.
    pub const MESSAGE_NEW: &str = "message.new";
    /// A message was recalled; `{conversationId, messageId, seq}`.
    pub const MESSAGE_RECALLED: &str = "message.recalled";
    /// The peer read up to a seq; `{conversationId, userId, seq}`.
    pub const MESSAGE_READ: &str = "message.read";
    /// Someone is typing; `{conversationId, userId}`.
    pub const TYPING: &str = "typing";
    /// The caller's own view of a conversation changed; `{conversation}`.
    pub const CONVERSATION_UPDATED: &str = "conversation.updated";
}

/// Parses a route's `data` into its request type. A failure names the offending field by its
/// own name (the last segment of its path), as domain validation does.
pub fn parse<T: DeserializeOwned>(data: Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(data).map_err(|err| {
        let inner = err.inner().to_string();
        // serde reports a missing or unknown field on its parent; name the field itself.
        let named = inner
            .split('`')
            .nth(1)
            .filter(|_| inner.starts_with("missing field") || inner.starts_with("unknown field"));
        let field = match named {
            Some(name) => name.to_owned(),
            None => err
                .path()
                .iter()
                .filter_map(|seg| match seg {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                })
                .next_back()
                .unwrap_or_else(|| "data".to_owned()),
        };
        Error::validation(field, inner)
    })
}

/// Serializes an id as a string.
pub fn id_str<S: Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// Reads an id sent as a string (or, leniently, as an integer).
pub fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Int(i64),
        Str(String),
    }
    match Id::deserialize(d)? {
        Id::Int(i) => Ok(i),
        Id::Str(s) => s.parse().map_err(|_| serde::de::Error::custom("not an id")),
    }
}

/// Serializes ids as strings.
fn ids_str<S: Serializer>(ids: &[i64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ids.iter().map(|id| id.to_string()))
}

/// Reads a list of ids, each a string or an integer.
fn de_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "de_id")] i64);
    Ok(Vec::<Wrap>::deserialize(d)?.into_iter().map(|w| w.0).collect())
}

/// Reads an id that, when malformed, names nothing: the route answers `not_found`, exactly as
/// for an unknown id, rather than a validation error that would tell the two apart.
fn de_loose_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|id| *id > 0))
}

fn de_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "de_id")] i64);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

/// Reads an integer sent as a number or, as HTTP query strings do, as a string.
fn de_opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    de_opt_id(d)
}

/// Distinguishes an absent field (outer `None`) from an explicit null (`Some(None)`).
fn de_nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

// ---- user routes ----

/// `userinfo` on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// User id.
    #[serde(serialize_with = "id_str")]
    pub id: i64,
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
    #[serde(default, deserialize_with = "de_opt_id")]
    pub id: Option<i64>,
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
    #[serde(default, deserialize_with = "de_opt_id")]
    pub cursor: Option<i64>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

/// One login-log entry on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginLogEntry {
    /// Entry id.
    #[serde(serialize_with = "id_str")]
    pub id: i64,
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
    pub ids: Vec<i64>,
}

fn de_id_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().parse().map_err(|_| serde::de::Error::custom("not an id")))
            .collect(),
        other => de_ids(other).map_err(serde::de::Error::custom),
    }
}

/// `{online: {id: bool}}`.
#[derive(Debug, Serialize)]
pub struct OnlineReply {
    /// Whether each user asked about has a live session on any node.
    pub online: std::collections::BTreeMap<String, bool>,
}

/// `session.ready`: sent when a session authenticates.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionReady {
    /// The user the session is bound to.
    #[serde(serialize_with = "id_str")]
    pub user_id: i64,
    /// The node holding the session.
    pub node: String,
    /// The server pings this often, in ms.
    pub ping_interval: u64,
    /// A socket silent this long after a ping is closed, in ms.
    pub pong_timeout: u64,
}

/// `{reason}` of `session.kicked`.
#[derive(Debug, Serialize)]
pub struct Kicked {
    /// `logout` or `password_reset`.
    pub reason: &'static str,
}

/// A request with no fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

// ---- group routes ----

/// A group id as sent; malformed ids name no group.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct GroupId(#[serde(deserialize_with = "de_loose_id")] Option<i64>);

impl GroupId {
    /// The id, or `not_found` for one that names nothing.
    pub fn get(&self) -> Result<i64, Error> {
        self.0.ok_or(Error::NotFound)
    }
}

/// `group` on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    /// Group id.
    #[serde(serialize_with = "id_str")]
    pub id: i64,
    /// Name.
    pub name: String,
    /// Avatar URL.
    pub avatar: String,
    /// Intro.
    pub intro: String,
    /// Announcement.
    pub notice: String,
    /// Owner's user id.
    #[serde(serialize_with = "id_str")]
    pub owner_id: i64,
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
    #[serde(default, deserialize_with = "de_ids")]
    pub members: Vec<i64>,
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
    pub group_id: GroupId,
}

/// `{groupId, members}` of invite and kick.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupUsers {
    /// The group.
    pub group_id: GroupId,
    /// The users.
    #[serde(deserialize_with = "de_ids")]
    pub members: Vec<i64>,
}

/// `POST /group/room/update`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateGroup {
    /// The group.
    pub group_id: GroupId,
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
    pub group_id: GroupId,
    /// The member.
    #[serde(deserialize_with = "de_id")]
    pub user_id: i64,
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
    pub group_id: GroupId,
    /// The member.
    #[serde(deserialize_with = "de_id")]
    pub user_id: i64,
}

/// `POST /group/room/mute`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mute {
    /// The group.
    pub group_id: GroupId,
    /// The member; absent mutes the whole group.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub user_id: Option<i64>,
    /// Until when (ms); 0 unmutes.
    #[serde(deserialize_with = "de_id")]
    pub until: i64,
}

/// `GET /group/room/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MembersQuery {
    /// The group.
    pub group_id: GroupId,
    /// `nextCursor` of the previous page.
    #[serde(default, deserialize_with = "de_opt_id")]
    pub cursor: Option<i64>,
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
    #[serde(serialize_with = "id_str")]
    pub user_id: i64,
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

/// `group.member` push.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    /// The group.
    #[serde(serialize_with = "id_str")]
    pub group_id: i64,
    /// `joined`, `left`, `kicked`, `invited`, `role` or `muted`.
    pub action: &'static str,
    /// Whom it concerns (empty for a whole-group mute).
    #[serde(serialize_with = "ids_str")]
    pub user_ids: Vec<i64>,
    /// Who did it.
    #[serde(serialize_with = "id_str")]
    pub by: i64,
}

/// `group.dismissed` push.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDismissed {
    /// The group.
    #[serde(serialize_with = "id_str")]
    pub group_id: i64,
    /// The owner.
    #[serde(serialize_with = "id_str")]
    pub by: i64,
}

// ---- messages and conversations ----

/// `message` on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageInfo {
    /// Message id.
    #[serde(serialize_with = "id_str")]
    pub id: i64,
    /// Its conversation.
    pub conversation_id: String,
    /// Position in the conversation.
    pub seq: i64,
    /// `single` or `group`.
    pub chat_type: &'static str,
    /// Sender.
    #[serde(serialize_with = "id_str")]
    pub from: i64,
    /// Peer user or group.
    #[serde(serialize_with = "id_str")]
    pub to: i64,
    /// Kind.
    pub kind: String,
    /// Content.
    pub content: Value,
    /// The sender's idempotency key.
    pub client_msg_id: String,
    /// Stored at.
    pub sent_at: i64,
    /// `normal` or `recalled`.
    pub status: &'static str,
}

impl From<Message> for MessageInfo {
    fn from(m: Message) -> Self {
        MessageInfo {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            chat_type: m.chat_type.as_str(),
            from: m.from,
            to: m.to,
            kind: m.kind,
            content: m.content,
            client_msg_id: m.client_msg_id,
            sent_at: m.sent_at,
            status: m.status.as_str(),
        }
    }
}

/// `{message}`.
#[derive(Debug, Serialize)]
pub struct MessageReply {
    /// The message.
    pub message: MessageInfo,
}

/// `POST /message/send`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SendMessage {
    /// `single` or `group`.
    pub chat_type: String,
    /// The peer user or the group.
    #[serde(deserialize_with = "de_loose_id")]
    pub to: Option<i64>,
    /// Kind.
    pub kind: String,
    /// Content object.
    pub content: Value,
    /// Idempotency key.
    pub client_msg_id: String,
}

impl SendMessage {
    /// The chat type named.
    pub fn chat_type(&self) -> Result<ChatType, Error> {
        ChatType::parse(&self.chat_type)
            .ok_or_else(|| Error::validation("chatType", "chatType must be single or group"))
    }
}

/// `GET /message/history`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HistoryQuery {
    /// The conversation.
    pub conversation_id: String,
    /// Messages before this seq.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub before_seq: Option<i64>,
    /// Messages after this seq.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub after_seq: Option<i64>,
    /// Page size, 1 to 100 (default 50).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

/// `{messages, hasMore}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReply {
    /// Ascending by seq.
    pub messages: Vec<MessageInfo>,
    /// More in the direction asked.
    pub has_more: bool,
}

/// One `{conversationId, seq}` a client already has.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KnownSeq {
    /// The conversation.
    pub conversation_id: String,
    /// The last seq the client holds.
    #[serde(deserialize_with = "de_id")]
    pub seq: i64,
}

/// `POST /message/sync`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// What the client has; unlisted conversations count as seq 0.
    #[serde(default)]
    pub conversations: Vec<KnownSeq>,
}

/// One conversation in a sync answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncedInfo {
    /// Its state.
    pub conversation: ConversationInfo,
    /// Messages after the known seq, ascending.
    pub messages: Vec<MessageInfo>,
    /// More messages follow: page with history.
    pub has_more: bool,
}

/// `{conversations, hasMore}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReply {
    /// Conversations with news.
    pub conversations: Vec<SyncedInfo>,
    /// Other conversations have news too: call again with the seqs now known.
    pub has_more: bool,
}

/// `{messageId}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MessageRef {
    /// The message; malformed ids name nothing.
    #[serde(deserialize_with = "de_loose_id")]
    pub message_id: Option<i64>,
}

/// `{conversationId}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConversationRef {
    /// The conversation.
    pub conversation_id: String,
}

/// `{count, userIds}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadersReply {
    /// How many have read it.
    pub count: usize,
    /// Who, by id.
    #[serde(serialize_with = "ids_str")]
    pub user_ids: Vec<i64>,
}

/// A conversation's peer: a user or a group.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PeerInfo {
    /// The other user.
    User(UserInfo),
    /// The group.
    Group(GroupInfo),
}

/// `conversation` on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationInfo {
    /// Id.
    pub conversation_id: String,
    /// `single` or `group`.
    pub chat_type: &'static str,
    /// The other user or the group; null if gone.
    pub peer: Option<PeerInfo>,
    /// The newest message.
    pub last_message: Option<MessageInfo>,
    /// Its seq.
    pub last_seq: i64,
    /// The caller's read position.
    pub read_seq: i64,
    /// Unread messages from others.
    pub unread: i64,
    /// Pinned.
    pub pinned: bool,
    /// Muted.
    pub muted: bool,
    /// Draft.
    pub draft: String,
    /// Hidden.
    pub hidden: bool,
    /// Latest activity.
    pub updated_at: i64,
}

impl From<ConversationView> for ConversationInfo {
    fn from(v: ConversationView) -> Self {
        let s = v.state;
        ConversationInfo {
            conversation_id: s.conversation_id,
            chat_type: s.chat_type.as_str(),
            peer: v.peer.map(|p| match p {
                Peer::User(u) => PeerInfo::User(u.into()),
                Peer::Group(g) => PeerInfo::Group(g.into()),
            }),
            last_message: v.last_message.map(Into::into),
            last_seq: s.last_seq,
            read_seq: s.read_seq,
            unread: s.unread,
            pinned: s.pinned,
            muted: s.muted,
            draft: s.draft,
            hidden: s.hidden,
            updated_at: s.updated_at,
        }
    }
}

/// `{conversation}`.
#[derive(Debug, Serialize)]
pub struct ConversationReply {
    /// The conversation.
    pub conversation: ConversationInfo,
}

/// `GET /conversation/list`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationListQuery {
    /// `nextCursor` of the previous page.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub cursor: Option<i64>,
    /// Page size, 1 to 100 (default 50).
    #[serde(default, deserialize_with = "de_opt_int")]
    pub limit: Option<i64>,
}

/// `{conversations, totalUnread, nextCursor}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationListReply {
    /// Pinned first, then by latest activity.
    pub conversations: Vec<ConversationInfo>,
    /// Unread over every unmuted conversation.
    pub total_unread: i64,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Reads a flag sent as a boolean or, from a query string, as `"true"`/`"false"`.
fn de_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(_) => Err(serde::de::Error::custom("expected a boolean")),
    }
}

/// `POST /conversation/update`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConversationUpdate {
    /// The conversation.
    pub conversation_id: String,
    /// Pin.
    #[serde(default, deserialize_with = "de_opt_bool")]
    pub pinned: Option<bool>,
    /// Mute.
    #[serde(default, deserialize_with = "de_opt_bool")]
    pub muted: Option<bool>,
    /// Draft.
    #[serde(default)]
    pub draft: Option<String>,
    /// Hide.
    #[serde(default, deserialize_with = "de_opt_bool")]
    pub hidden: Option<bool>,
}

impl ConversationUpdate {
    /// The domain patch.
    pub fn patch(&self) -> ConversationPatch {
        ConversationPatch { pinned: self.pinned, muted: self.muted, draft: self.draft.clone(), hidden: self.hidden }
    }
}

/// `POST /conversation/read`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReadRequest {
    /// The conversation.
    pub conversation_id: String,
    /// Read up to here.
    #[serde(deserialize_with = "de_id")]
    pub seq: i64,
}

/// One entry of `/conversation/unread`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreadEntry {
    /// The conversation.
    pub conversation_id: String,
    /// Its unread count.
    pub unread: i64,
}

/// `{total, conversations}`.
#[derive(Debug, Serialize)]
pub struct UnreadReply {
    /// Over unmuted conversations.
    pub total: i64,
    /// Conversations with unread messages.
    pub conversations: Vec<UnreadEntry>,
}

/// `message.recalled` push.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recalled {
    /// The conversation.
    pub conversation_id: String,
    /// The message.
    #[serde(serialize_with = "id_str")]
    pub message_id: i64,
    /// Its seq.
    pub seq: i64,
}

/// `message.read` push.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceipt {
    /// The conversation.
    pub conversation_id: String,
    /// Who read.
    #[serde(serialize_with = "id_str")]
    pub user_id: i64,
    /// Up to which seq.
    pub seq: i64,
}

/// `typing` push.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingInfo {
    /// The conversation.
    pub conversation_id: String,
    /// Who types.
    #[serde(serialize_with = "id_str")]
    pub user_id: i64,
}

/// `{fileId, url, size, mime, sha256}` of an upload.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadReply {
    /// The file's id.
    pub file_id: String,
    /// Where it is served: `/file/{fileId}`.
    pub url: String,
    /// Bytes.
    pub size: i64,
    /// Sniffed type.
    pub mime: String,
    /// Hex SHA-256.
    pub sha256: String,
}

/// Parses `data` as the request of every route, with the checks each route applies after
/// parsing: what the fuzz targets (fuzz/) and the property tests run. Any error is a fine
/// answer; a panic is a bug.
#[cfg(any(test, fuzzing))]
pub fn parse_every_request(data: &Value) {
    macro_rules! parse_each {
        ($($t:ty),* $(,)?) => { $( let _ = parse::<$t>(data.clone()); )* };
    }
    parse_each!(
        Credentials,
        ForgotPassword,
        ResetPassword,
        AuthToken,
        InfoQuery,
        LoginLogQuery,
        OnlineQuery,
        Empty,
        GroupUsers,
        GroupUser,
        Mute,
        MembersQuery,
        HistoryQuery,
        SyncRequest,
        MessageRef,
        ConversationRef,
        ConversationListQuery,
        ReadRequest,
    );
    if let Ok(r) = parse::<InfoUpdate>(data.clone()) {
        let _ = r.userinfo.into_patch();
    }
    if let Ok(r) = parse::<GroupRef>(data.clone()) {
        let _ = r.group_id.get();
    }
    if let Ok(r) = parse::<CreateGroup>(data.clone()) {
        let _ = r.policy();
    }
    if let Ok(r) = parse::<UpdateGroup>(data.clone()) {
        let _ = r.into_patch();
    }
    if let Ok(r) = parse::<SetRole>(data.clone()) {
        let _ = (r.role(), r.group_id.get());
    }
    if let Ok(r) = parse::<ConversationUpdate>(data.clone()) {
        let _ = r.patch();
    }
    if let Ok(r) = parse::<SendMessage>(data.clone()) {
        let _ = r.chat_type();
        let _ = crate::message::validate_content(&r.kind, r.content, 5000);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// JSON values of every shape, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            prop_oneof![Just("text"), Just("image"), Just("single"), Just("group"), Just("admin"), Just("/file/ab")]
                .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        ".{0,8}",
                        Just("kind".to_owned()),
                        Just("content".to_owned()),
                        Just("text".to_owned()),
                        Just("groupId".to_owned()),
                        Just("userinfo".to_owned()),
                        Just("conversations".to_owned()),
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// A bounded fuzz run in the test suite: no bytes, in either encoding, make decoding or
        /// any route's parsing panic.
        #[test]
        fn no_input_panics(bytes in prop::collection::vec(any::<u8>(), 0..256), data in any_json()) {
            for format in [Format::Json, Format::MsgPack] {
                if let Ok(Incoming::Request { data, .. }) = decode(&bytes, format) {
                    parse_every_request(&data);
                }
            }
            parse_every_request(&data);
            let frame = serde_json::json!({"type": "req", "id": 1, "route": "/x", "data": data});
            let _ = decode(frame.to_string().as_bytes(), Format::Json);
        }

        /// Requests survive the trip through either encoding unchanged.
        #[test]
        fn requests_round_trip(int_id in any::<i64>(), str_id in "[a-z0-9-]{1,16}", use_str in any::<bool>(),
                               route in "/[a-z]{1,8}/[a-zA-Z]{1,10}", data in prop::collection::btree_map("[a-z]{1,6}", any_json(), 0..5)) {
            let id = if use_str { Value::from(str_id) } else { Value::from(int_id) };
            let data = Value::Object(data.into_iter().collect());
            let frame = serde_json::json!({"type": "req", "id": id, "route": route, "data": data});
            let packed = rmp_serde::to_vec_named(&frame).unwrap();
            for (bytes, format) in [(frame.to_string().into_bytes(), Format::Json), (packed, Format::MsgPack)] {
                let Ok(Incoming::Request { id: got_id, route: got_route, data: got_data }) = decode(&bytes, format) else {
                    panic!("{format:?} did not decode {frame}");
                };
                prop_assert_eq!(serde_json::to_value(&got_id).unwrap(), id.clone());
                prop_assert_eq!(&got_route, &route);
                prop_assert_eq!(&got_data, &data);
            }
        }

        /// Replies and pushes read back as what was sent, in JSON and MessagePack alike.
        #[test]
        fn replies_and_pushes_round_trip(id in any::<i64>(), data in prop::collection::btree_map("[a-z]{1,6}", any_json(), 0..5)) {
            let data = Value::Object(data.into_iter().collect());
            let request_id = RequestId::Int(id);
            let reply = Reply::new(Some(&request_id), true, Ok(data.clone()));
            let Payload::Text(text) = encode(&reply, Format::Json) else { panic!("JSON is text") };
            let Payload::Binary(bytes) = encode(&reply, Format::MsgPack) else { panic!("MessagePack is binary") };
            let from_json: Value = serde_json::from_str(&text).unwrap();
            let from_msgpack: Value = rmp_serde::from_slice(&bytes).unwrap();
            prop_assert_eq!(&from_json, &from_msgpack);
            prop_assert_eq!(&from_json["id"], &Value::from(id));
            prop_assert_eq!(&from_json["data"], &data);
            let push = Push::new("typing", &data);
            let Payload::Text(text) = push.payload(Format::Json) else { panic!("JSON is text") };
            let Payload::Binary(bytes) = push.payload(Format::MsgPack) else { panic!("MessagePack is binary") };
            let from_json: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&from_json, &rmp_serde::from_slice::<Value>(&bytes).unwrap());
            prop_assert_eq!(&from_json["data"], &data);
            let relayed = Push::from_json_frame(text.to_string()).unwrap();
            let Payload::Binary(again) = relayed.payload(Format::MsgPack) else { panic!("MessagePack is binary") };
            prop_assert_eq!(again, bytes);
        }
    }

    #[test]
    fn decodes_requests_in_both_formats() {
        let json = br#"{"type":"req","id":7,"route":"/user/login","data":{"username":"a"}}"#;
        let Incoming::Request { id, route, data } = decode(json, Format::Json).unwrap() else { panic!() };
        assert_eq!(id, RequestId::Int(7));
        assert_eq!(route, "/user/login");
        let packed =
            rmp_serde::to_vec_named(&serde_json::json!({"type":"req","id":"x","route":"/r","data":data})).unwrap();
        let Incoming::Request { id, .. } = decode(&packed, Format::MsgPack).unwrap() else { panic!() };
        assert_eq!(id, RequestId::Str("x".into()));
    }

    #[test]
    fn bad_frames_are_typed() {
        let reason = |b: &[u8]| decode(b, Format::Json).unwrap_err().error.reason();
        assert_eq!(reason(b"{nope"), "frame.malformed");
        assert_eq!(reason(br#"{"type":"zap","id":1}"#), "frame.unknown_type");
        assert_eq!(reason(br#"{"type":"req","id":1}"#), "frame.malformed");
        assert_eq!(reason(br#"{"type":"req","id":[1],"route":"/x"}"#), "frame.malformed");
        assert_eq!(decode(br#"{"type":"req","id":1,"data":5}"#, Format::Json).unwrap_err().id, Some(RequestId::Int(1)));
    }

    #[test]
    fn field_errors_name_the_field() {
        let err = parse::<Credentials>(serde_json::json!({"username":"a"})).unwrap_err();
        assert_eq!(err.reason(), "validation.password");
        let err = parse::<Credentials>(serde_json::json!({"username":5,"password":"x"})).unwrap_err();
        assert_eq!(err.reason(), "validation.username");
    }

    /// Every MessagePack example in proto-docs/frames.md decodes to its JSON twin.
    #[test]
    fn documented_frames_are_true() {
        let doc = include_str!("../proto-docs/frames.md");
        let blocks: Vec<&str> = doc.split("```").collect();
        let mut pairs = 0;
        for (i, block) in blocks.iter().enumerate() {
            let Some(json) = block.strip_prefix("json\n") else {
                continue;
            };
            let hex = blocks[i + 2].strip_prefix("msgpack-hex\n").expect("a msgpack-hex block follows each json block");
            let bytes: Vec<u8> = hex.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
            let from_json: Value = serde_json::from_str(json).unwrap();
            let from_msgpack: Value = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(from_json, from_msgpack);
            pairs += 1;
        }
        assert_eq!(pairs, 6, "one pair per frame kind");
    }

    /// Every reason the error enum can produce is in the catalogue, with its status.
    #[test]
    fn error_catalogue_is_complete() {
        let doc = include_str!("../proto-docs/errors.md");
        let all = [
            Error::AuthRequired,
            Error::InvalidCredentials,
            Error::TokenInvalid,
            Error::ResetTokenInvalid,
            Error::validation("x", "x"),
            Error::UserExists,
            Error::GroupFull,
            Error::NotFound,
            Error::Forbidden,
            Error::Muted,
            Error::FileTooLarge { max_bytes: 1 },
            Error::RateLimited { retry_after_ms: 1 },
            Error::MalformedFrame(String::new()),
            Error::UnknownFrameType,
            Error::UnknownRoute,
            Error::MethodNotAllowed,
            Error::SocketOnly,
            Error::Unavailable,
            Error::internal(anyhow::anyhow!("x")),
        ];
        // A new variant fails to compile here until it is listed above (and so documented).
        let _listed = |e: &Error| match e {
            Error::AuthRequired
            | Error::InvalidCredentials
            | Error::TokenInvalid
            | Error::ResetTokenInvalid
            | Error::Validation { .. }
            | Error::UserExists
            | Error::GroupFull
            | Error::NotFound
            | Error::Forbidden
            | Error::Muted
            | Error::FileTooLarge { .. }
            | Error::RateLimited { .. }
            | Error::MalformedFrame(_)
            | Error::UnknownFrameType
            | Error::UnknownRoute
            | Error::MethodNotAllowed
            | Error::SocketOnly
            | Error::Unavailable
            | Error::Internal(_) => (),
        };
        for err in all {
            let reason = err.reason().replace("validation.x", "validation.<field>");
            let row = format!("| `{reason}` | {} |", err.status());
            assert!(doc.contains(&row), "errors.md lacks {row}");
        }
    }

    #[test]
    fn push_is_encoded_once_per_format() {
        let push = Push::new("x", Kicked { reason: "logout" });
        let a = push.payload(Format::Json);
        let b = push.payload(Format::Json);
        assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
    }
}

//! The route table: every route, once. Dispatch, the HTTP method mapping, the metrics labels,
//! the fuzzing of every request type and the documentation checks all come from [`ROUTES`].
//!
//! Adding a route is one row here and its handler in the family's module; the contract tests
//! then fail until `proto-docs/routes.md` and the SDK's `chatgate.d.ts` list it.

use std::collections::HashMap;
use std::sync::LazyLock;

use futures::future::BoxFuture;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::conversations::{self, *};
use super::groups::{self, *};
use super::media::{self, LinkReply, LinkRequest};
use super::messages::{self, *};
use super::sync::{self, SyncReply, SyncRequest};
use super::users::{self, *};
use super::wire::{Done, Empty};
use super::{Api, Ctx, Method, Request};
use crate::error::{Error, Result};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the route authenticates (login, register) or needs no one.
    Anyone,
    /// A logged-in user: over HTTP a valid token, over the socket a bound session.
    User,
}

/// Which rate limits a request of a route counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The caller's buckets: per session and per user over the socket, per address over HTTP.
    Client,
    /// The caller's buckets, and the login-attempt buckets of the username and the address,
    /// checked before any password is hashed.
    Login,
}

/// Where a route is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// Over the socket and over HTTP.
    Also,
    /// Over the socket only; HTTP answers `route.socket_only`.
    Only,
    /// Over HTTP, and over the socket when the frame's `data` has this field: for a path with a
    /// GET and a POST row, which a socket frame (it has no method) must choose between.
    When(&'static str),
}

/// How a socket request of a route is ordered among its session's other requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Not at all: it reads, or changes nothing ordered.
    Free,
    /// In the session's log order: it checks concurrently with the session's other requests,
    /// takes effect (a message or change is queued for the log's writer) after the earlier
    /// ones did, and is answered after them. Through [`super::Ctx::turn`].
    Log,
    /// After the session's earlier request with the same value of this field has been
    /// answered: for changes outside the log (a conversation's settings, a group).
    Key(&'static str),
}

/// Serves one call: parses `data` as the route's request, runs the handler, returns its reply.
pub type Handler = for<'a> fn(&'a Api, &'a Ctx<'a>, Value) -> BoxFuture<'a, Result<Value>>;

/// How a route is served.
#[derive(Clone, Copy)]
pub enum Serve {
    /// By dispatch: a request in, a reply out.
    Call {
        /// The handler.
        handler: Handler,
        /// Parses `data` as the request and runs the checks its handler runs after parsing;
        /// what the fuzz targets and property tests drive.
        probe: fn(Value),
    },
    /// By the HTTP layer itself, streaming a body (uploads and downloads).
    Stream,
}

/// One row of the table.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path.
    pub path: &'static str,
    /// Where it is served.
    pub socket: Socket,
    /// Who may call it.
    pub access: Access,
    /// Its rate-limit class.
    pub limit: Limit,
    /// Its order among a session's requests.
    pub order: Order,
    /// Its request type.
    pub request: &'static str,
    /// Its reply type.
    pub response: &'static str,
    /// How it is served.
    pub serve: Serve,
}

macro_rules! route {
    ($method:ident $path:literal, $access:ident, $limit:ident, $order:expr, $req:ty => $res:ty, $handler:path $(, $socket:expr)?) => {
        Route {
            method: Method::$method,
            path: $path,
            socket: route!(@socket $($socket)?),
            access: Access::$access,
            limit: Limit::$limit,
            order: $order,
            request: stringify!($req),
            response: stringify!($res),
            serve: Serve::Call {
                handler: |api, cx, data| {
                    Box::pin(async move {
                        let request: $req = super::wire::parse(data)?;
                        let reply: $res = $handler(api, cx, request).await?;
                        serde_json::to_value(reply).map_err(Error::internal)
                    })
                },
                probe: |data| {
                    if let Ok(request) = super::wire::parse::<$req>(data) {
                        Request::probe(request);
                    }
                },
            },
        }
    };
    ($method:ident $path:literal, $access:ident, $limit:ident, $req:ty => $res:ty, $handler:path $(, $socket:expr)?) => {
        route!($method $path, $access, $limit, Order::Free, $req => $res, $handler $(, $socket)?)
    };
    (@socket) => { Socket::Also };
    (@socket $socket:expr) => { $socket };
}

/// Every route.
pub static ROUTES: &[Route] = &[
    route!(Post "/user/register", Anyone, Client, Credentials => AuthReply, users::register),
    route!(Post "/user/login", Anyone, Login, Credentials => AuthReply, users::login),
    route!(Post "/user/auth", Anyone, Client, AuthToken => UserInfoReply, users::auth, Socket::Only),
    route!(Post "/user/changePassword", Anyone, Client, ForgotPassword => CallbackReply, users::change_password),
    route!(Post "/user/resetPassword", Anyone, Client, ResetPassword => Done, users::reset_password),
    route!(Get "/user/info", User, Client, InfoQuery => UserInfoReply, users::info),
    route!(Post "/user/info", User, Client, InfoUpdate => UserInfoReply, users::update_info, Socket::When("userinfo")),
    route!(Get "/user/online", User, Client, OnlineQuery => OnlineReply, users::online),
    route!(Post "/user/logout", User, Client, IgnoredAny => Done, users::logout),
    route!(Post "/user/ticket", User, Client, IgnoredAny => TicketReply, users::ticket),
    route!(Get "/user/loginLog", User, Client, LoginLogQuery => LoginLogReply, users::login_log),
    route!(Post "/group/room/add", User, Client, CreateGroup => GroupReply, groups::create),
    route!(Post "/group/room/join", User, Client, Order::Key("groupId"), GroupRef => GroupReply, groups::join),
    route!(Post "/group/room/quit", User, Client, Order::Key("groupId"), GroupRef => Done, groups::quit),
    route!(Post "/group/room/invite", User, Client, Order::Key("groupId"), GroupUsers => GroupReply, groups::invite),
    route!(Post "/group/room/kick", User, Client, Order::Key("groupId"), GroupUsers => GroupReply, groups::kick),
    route!(Post "/group/room/update", User, Client, Order::Key("groupId"), UpdateGroup => GroupReply, groups::update),
    route!(Post "/group/room/role", User, Client, Order::Key("groupId"), SetRole => GroupReply, groups::role),
    route!(Post "/group/room/transfer", User, Client, Order::Key("groupId"), GroupUser => GroupReply, groups::transfer),
    route!(Post "/group/room/dismiss", User, Client, Order::Key("groupId"), GroupRef => Done, groups::dismiss),
    route!(Post "/group/room/mute", User, Client, Order::Key("groupId"), Mute => GroupReply, groups::mute),
    route!(Get "/group/room/info", User, Client, GroupRef => GroupInfoReply, groups::info),
    route!(Get "/group/room/list", User, Client, Empty => GroupListReply, groups::list),
    route!(Get "/group/room/members", User, Client, MembersQuery => MembersReply, groups::members),
    route!(Post "/message/send", User, Client, Order::Log, SendMessage => MessageReply, messages::send),
    route!(Get "/message/history", User, Client, HistoryQuery => HistoryReply, messages::history),
    route!(Get "/message/mentions", User, Client, MentionsQuery => HistoryReply, messages::mentions),
    route!(Post "/message/sync", User, Client, SyncRequest => SyncReply, sync::sync),
    route!(Post "/message/recall", User, Client, Order::Log, MessageRef => ChangeReply, messages::recall),
    route!(Post "/message/delete", User, Client, Order::Log, MessageRef => ChangeReply, messages::delete),
    route!(Post "/message/edit", User, Client, Order::Log, EditMessage => ChangeReply, messages::edit),
    route!(Post "/message/react", User, Client, Order::Log, ReactMessage => ChangeReply, messages::react),
    route!(Post "/message/unreact", User, Client, Order::Log, ReactMessage => ChangeReply, messages::unreact),
    route!(Post "/message/hide", User, Client, Order::Key("messageId"), MessageRef => MessageReply, messages::hide),
    route!(Get "/message/versions", User, Client, MessageRef => VersionsReply, messages::versions),
    route!(Post "/message/typing", User, Client, ConversationArg => Done, messages::typing),
    route!(Get "/message/readers", User, Client, ReadersQuery => ReadersReply, messages::readers),
    route!(Get "/message/reactors", User, Client, ReactorsQuery => ReactorsReply, messages::reactors),
    route!(Get "/conversation/list", User, Client, ConversationListQuery => ConversationListReply, conversations::list),
    route!(Get "/conversation/info", User, Client, ConversationArg => ConversationReply, conversations::info),
    route!(Post "/conversation/update", User, Client, Order::Key("conversationId"), ConversationUpdate => ConversationReply, conversations::update),
    route!(Post "/conversation/read", User, Client, Order::Key("conversationId"), ReadRequest => ConversationReply, conversations::read),
    route!(Post "/conversation/delivered", User, Client, Order::Key("conversationId"), DeliveredRequest => Done, conversations::delivered),
    route!(Get "/conversation/unread", User, Client, Empty => UnreadReply, conversations::unread),
    route!(Post "/file/link", User, Client, LinkRequest => LinkReply, media::link),
    Route {
        method: Method::Post,
        path: "/file/upload",
        socket: Socket::Also,
        access: Access::User,
        limit: Limit::Client,
        order: Order::Free,
        request: "a raw body or a multipart form",
        response: "UploadReply",
        serve: Serve::Stream,
    },
    Route {
        method: Method::Get,
        path: "/file/{fileId}",
        socket: Socket::Also,
        access: Access::User,
        limit: Limit::Client,
        order: Order::Free,
        request: "an optional Range header",
        response: "the file's bytes",
        serve: Serve::Stream,
    },
];

/// The rows dispatch serves, by path.
static BY_PATH: LazyLock<HashMap<&'static str, Vec<&'static Route>>> = LazyLock::new(|| {
    let mut by_path: HashMap<&'static str, Vec<&'static Route>> = HashMap::new();
    for route in ROUTES.iter().filter(|r| matches!(r.serve, Serve::Call { .. })) {
        by_path.entry(route.path).or_default().push(route);
    }
    by_path
});

/// The row serving `path` by `method`; for a socket frame, the row its `data` picks.
pub fn find(method: Method, path: &str, data: &Value) -> Result<&'static Route> {
    let rows = BY_PATH.get(path).ok_or(Error::UnknownRoute)?;
    match method {
        Method::Socket => rows
            .iter()
            .find(|r| matches!(r.socket, Socket::When(field) if data.get(field).is_some()))
            .or_else(|| rows.iter().find(|r| !matches!(r.socket, Socket::When(_))))
            .copied()
            .ok_or(Error::UnknownRoute),
        http => {
            if rows.iter().any(|r| r.socket == Socket::Only) {
                return Err(Error::SocketOnly);
            }
            rows.iter().find(|r| r.method == http).copied().ok_or(Error::MethodNotAllowed)
        }
    }
}

/// How a socket request for `path` with `data` is ordered: as its route says, and not at all
/// when no route serves it (it fails at once).
pub fn order_of(path: &str, data: &Value) -> Order {
    find(Method::Socket, path, data).map_or(Order::Free, |route| route.order)
}

/// The metrics label of a request for `path`: its row's path, or `unknown` for anything the
/// table lacks, so that clients cannot grow the label set.
pub fn label(path: &str) -> &'static str {
    BY_PATH.get_key_value(path).map_or("unknown", |(path, _)| path)
}

/// Parses `data` as the request of every route, with the checks each handler applies after
/// parsing: what the fuzz targets (fuzz/) and the property tests run. Any error is a fine
/// answer; a panic is a bug.
pub fn parse_every_request(data: &Value) {
    for route in ROUTES {
        if let Serve::Call { probe, .. } = route.serve {
            probe(data.clone());
        }
    }
}

impl Request for IgnoredAny {}

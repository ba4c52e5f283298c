//! The API: the route table, dispatch, the wire types of every route family, frames and their
//! encodings, and pushes. Documented for people in `proto-docs/`.
//!
//! Transports hand a call in as `(caller, method, path, data)` and get a JSON value or an
//! [`Error`] back; [`routes::ROUTES`] says which handler serves it. Handlers parse their request
//! type, call the domain and shape the reply. This is the only layer that knows both wire types
//! and the domain.
//!
//! Invariants:
//! - Ids are strings on the wire; times are integer Unix milliseconds.
//! - A push is encoded at most once per format, however many sessions receive it
//!   ([`push::Push`] caches its encodings).
//! - Cheap checks come first: the rate limits, then the route, then the token, then parsing.

pub mod conversations;
pub mod frame;
pub mod groups;
pub mod media;
pub mod messages;
pub mod push;
pub mod routes;
pub mod sync;
pub mod users;
pub mod views;
pub mod wire;

#[cfg(test)]
mod contract;

use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use routes::{Order, ROUTES, label as route_label, order_of, parse_every_request};

use crate::domain::Domain;
/// The most bytes one reply carries: pages of messages and conversations stop there.
pub use crate::domain::budget::REPLY_BUDGET;
use crate::error::{Error, Result};
use crate::model::turn::FREE;
use crate::model::{Identity, Origin, SessionId, Turn};

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
    /// The call's turn in its session's log order ([`routes::Order::Log`]); none over HTTP.
    pub turn: Option<Arc<Turn>>,
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

/// A route's request type.
pub trait Request: DeserializeOwned {
    /// Runs the checks its handler applies after parsing, for the fuzz targets; none by default.
    fn probe(self) {}
}

/// What a handler knows of its call.
pub struct Ctx<'a> {
    caller: &'a Caller,
    who: Option<Identity>,
    bound: OnceLock<Identity>,
}

impl Ctx<'_> {
    /// The authenticated caller of a route that needs one.
    pub fn who(&self) -> Result<&Identity> {
        self.who.as_ref().ok_or(Error::AuthRequired)
    }

    /// Where the call came from.
    pub fn origin(&self) -> Origin {
        self.caller.origin.clone()
    }

    /// The call's turn in its session's order: a change takes effect after `wait` and lets the
    /// next one go with `pass`.
    pub fn turn(&self) -> &Turn {
        self.caller.turn.as_deref().unwrap_or(&FREE)
    }

    /// Binds the calling socket to `identity` once the reply is sent (login, register, auth).
    pub fn bind(&self, identity: Identity) {
        let _ = self.bound.set(identity);
    }
}

/// The API over the domain.
pub struct Api {
    domain: Domain,
}

impl Api {
    /// The API over `domain`.
    pub fn new(domain: Domain) -> Self {
        Api { domain }
    }

    /// Serves one call.
    pub async fn dispatch(&self, caller: &Caller, method: Method, path: &str, data: Value) -> Result<Outcome> {
        let (session, user) = match &caller.auth {
            Auth::Session(identity) => (identity.session, Some(identity.user_id)),
            _ => (None, None),
        };
        self.domain.limits.request(session, user, caller.origin.ip.parse().ok())?;
        let route = routes::find(method, path, &data)?;
        match route.limit {
            routes::Limit::Client => {}
            routes::Limit::Login => {
                if let Some(username) = data.get("username").and_then(Value::as_str) {
                    self.domain.limits.login(username, &caller.origin.ip)?;
                }
            }
        }
        let routes::Serve::Call { handler, .. } = route.serve else {
            return Err(Error::UnknownRoute);
        };
        let who = match route.access {
            routes::Access::Anyone => None,
            routes::Access::User => Some(self.identity(caller).await?),
        };
        // A socket's frames were charged to their user above; an HTTP call only now that its
        // token names one.
        if let (Auth::Token(_), Some(who)) = (&caller.auth, &who) {
            self.domain.limits.user_request(who.user_id)?;
        }
        let cx = Ctx { caller, who, bound: OnceLock::new() };
        let data = handler(self, &cx, data).await?;
        Ok(Outcome { data, bind: cx.bound.into_inner() })
    }

    /// Checks a bearer token (used by transports at the handshake).
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        self.domain.users.authenticate(token).await
    }

    /// Spends a socket ticket (used by the WebSocket handshake), once the address's bucket is
    /// charged: each attempt costs a database write.
    pub async fn redeem_ticket(&self, ticket: &str, origin: &Origin) -> Result<Identity> {
        self.domain.limits.request(None, None, origin.ip.parse().ok())?;
        self.domain.users.redeem_ticket(ticket).await
    }

    /// Whether a session that was just refused for its rate has been refused too often.
    pub fn abusive(&self, session: SessionId) -> bool {
        self.domain.limits.abusive(session)
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ready(&self) -> bool {
        self.domain.ready().await
    }

    async fn identity(&self, caller: &Caller) -> Result<Identity> {
        match &caller.auth {
            Auth::Anonymous => Err(Error::AuthRequired),
            Auth::Token(token) => self.domain.users.authenticate(token).await,
            Auth::Session(identity) => Ok(identity.clone()),
        }
    }
}

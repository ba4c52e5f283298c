//! The WebSocket transport: the handshake at `GET /ws`, then one session per socket
//! ([`session`]).
//!
//! A client authenticates at the handshake with `Authorization: Bearer`, or (a browser, which
//! cannot set that header) with `?ticket=` from `/user/ticket`, or later with `/user/auth`.
//! A `?token=` is refused: long-lived tokens never go in URLs.
//!
//! Close codes: 1001 server shutting down; 1007 invalid UTF-8; 1008 slow consumer, rate abuse
//! or authentication timeout; 1009 frame too large; 1002 protocol error; 4001 kicked (logout,
//! password reset, token expiry or the session limit, after a `session.kicked` push).

mod session;

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::proxy::Peer;
use super::{App, bearer, client_ip, http, user_agent};
use crate::api::REPLY_BUDGET;
use crate::api::frame::Format;
use crate::error::Error;
use crate::model::{Origin, Transport};

/// Bytes of a session's read buffer.
const READ_BUFFER: usize = 2048;

/// The tungstenite settings for a gateway: a 2 KiB read buffer instead of 128 KiB, a small
/// write buffer that batches frames until the flush, and every size bounded. The write buffer
/// may grow to hold the largest reply the server makes (replies are paged by bytes, within
/// [`REPLY_BUDGET`]) twice over, with pushes around it: a reply is never the reason a socket
/// fails.
///
/// The read buffer is allocated for every session, idle ones included, and is most of an idle
/// session's memory; chat frames are mostly far under 2 KiB, and a larger one (up to the frame
/// limit) is read in 2 KiB steps.
fn socket_config(max_frame: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(16 * 1024 + 2 * (REPLY_BUDGET + max_frame))
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame))
}

/// `GET /ws`: checks the handshake and the token, answers 101 and starts the session.
pub async fn upgrade(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<Peer>, mut req: Request) -> Response {
    let headers = req.headers();
    let has = |name: header::HeaderName, needle: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case(needle))))
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return (StatusCode::UPGRADE_REQUIRED, [(header::UPGRADE, "websocket")], "WebSocket upgrade required")
            .into_response();
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return (StatusCode::BAD_REQUEST, [(header::SEC_WEBSOCKET_VERSION, "13")], "unsupported WebSocket version")
            .into_response();
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return (StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key").into_response();
    };
    // Cross-site WebSocket hijacking: a browser always sends Origin, and only listed origins
    // pass, matched exactly. Clients that are not browsers send none and are let through.
    if let (Some(allowed), Some(origin)) = (&app.allowed_origins, headers.get(header::ORIGIN)) {
        let origin = origin.to_str().unwrap_or_default();
        if !allowed.iter().any(|a| a == origin) {
            return http::respond(Format::Json, Err(Error::Forbidden));
        }
    }
    // Refuse, rather than fall over, when the node is full.
    let Some(slot) = ConnectionSlot::take(&app) else {
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], "this node is full").into_response();
    };
    let accept = derive_accept_key(key.as_bytes());

    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(req.uri().query().unwrap_or_default()).unwrap_or_default();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let format = match param("format").as_deref() {
        None | Some("json") => Format::Json,
        Some("msgpack") => Format::MsgPack,
        Some(_) => {
            return http::respond(Format::Json, Err(Error::validation("format", "format must be json or msgpack")));
        }
    };
    if param("token").is_some() {
        return http::respond(Format::Json, Err(super::token_in_url()));
    }
    let origin = Origin {
        ip: client_ip(&app, peer, headers).to_string(),
        user_agent: user_agent(headers),
        transport: Transport::Ws,
    };
    // Browsers cannot set a header on the handshake: they bring a single-use ticket.
    let identity = match (bearer(headers), param("ticket")) {
        (Some(token), _) => app.api.authenticate(&token).await.map(Some),
        (None, Some(ticket)) => app.api.redeem_ticket(&ticket, &origin).await.map(Some),
        (None, None) => Ok(None),
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(err) => return http::respond(Format::Json, Err(err)),
    };

    let on_upgrade = hyper::upgrade::on(&mut req);
    let tracker = app.sessions.clone();
    tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = socket_config(app.config.max_frame_bytes);
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                session::run(ws, app, format, identity, origin).await;
                drop(slot);
            }
            Err(err) => tracing::debug!(error = %err, "upgrade failed"),
        }
    });

    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// One of the node's `--max-connections` places, given back when dropped.
struct ConnectionSlot(Arc<App>);

impl ConnectionSlot {
    fn take(app: &Arc<App>) -> Option<ConnectionSlot> {
        let taken = app.connections.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if taken >= app.config.max_connections {
            app.connections.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            return None;
        }
        Some(ConnectionSlot(app.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

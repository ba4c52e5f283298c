//! The WebSocket transport: the handshake at `GET /ws` and the session loop.
//!
//! One task per socket owns the socket. It reads frames, hands each request to a task of its own
//! (at most `session_inflight` at once), and writes whatever its outbound queue holds: every
//! ready frame is fed, then the socket is flushed once, so a burst costs one syscall, not one per
//! frame. Replies, pongs and pushes all travel through that one bounded queue.
//!
//! Close codes: 1001 server shutting down; 1007 invalid UTF-8; 1008 slow consumer; 1009 frame
//! too large; 1002 protocol error; 4001 kicked (logout or password reset, after a
//! `session.kicked` push).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use super::{bearer, user_agent};
use crate::App;
use crate::error::Error;
use crate::events::KickReason;
use crate::proto::{self, BadFrame, Format, Incoming, Kicked, Payload, Push, Reply};
use crate::registry::{Ending, Session};
use crate::router::{Auth, Caller, Method};
use crate::user::{Identity, Origin, Transport};

/// Bytes of a session's read buffer.
const READ_BUFFER: usize = 2048;

/// Frames written per flush at most, so one busy session cannot hold its task forever.
const MAX_BATCH: usize = 256;
/// Capacity of the write batch a quiet session keeps.
const BATCH_KEEP: usize = 8;

/// The tungstenite settings for a gateway: a 2 KiB read buffer instead of 128 KiB, a small
/// write buffer that batches frames until the flush, and every size bounded.
///
/// The read buffer is allocated for every session, idle ones included, and is most of an idle
/// session's memory; chat frames are mostly far under 2 KiB, and a larger one (up to the frame
/// limit) is read in 2 KiB steps.
fn socket_config(max_frame: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(16 * 1024 + 2 * max_frame)
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame))
}

/// `GET /ws`: checks the handshake and the token, answers 101 and starts the session.
pub async fn upgrade(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
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
            return super::http::respond(Format::Json, Err(Error::Forbidden));
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
            return super::http::respond(
                Format::Json,
                Err(Error::validation("format", "format must be json or msgpack")),
            );
        }
    };
    let identity = match bearer(headers).or_else(|| param("token")) {
        Some(token) => match app.router.authenticate(&token).await {
            Ok(identity) => Some(identity),
            Err(err) => return super::http::respond(Format::Json, Err(err)),
        },
        None => None,
    };
    let origin = Origin { ip: peer.ip().to_string(), user_agent: user_agent(headers), transport: Transport::Ws };

    let on_upgrade = hyper::upgrade::on(&mut req);
    let tracker = app.sessions.clone();
    tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = socket_config(app.config.max_frame_bytes);
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                run_session(ws, app, format, identity, origin).await;
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

/// Tells a session it is authenticated, and how the server keeps it alive.
fn announce_ready(app: &App, session: &crate::registry::Session, user_id: i64) {
    let ready = proto::SessionReady {
        user_id,
        node: app.gateway.node().to_owned(),
        ping_interval: app.config.ping_interval().as_millis() as u64,
        pong_timeout: app.config.ping_timeout().as_millis() as u64,
    };
    session.send(Push::new(proto::event::SESSION_READY, ready).payload(session.format));
}

/// When the session's watchdog must next look at it: the silence limit after the last frame;
/// for an anonymous socket, the end of its grace period; for a bound one, its token's expiry.
fn next_deadline(
    session: &crate::registry::Session,
    last_heard: Instant,
    silence: Duration,
    opened: Instant,
    grace: Duration,
) -> Instant {
    let reap = last_heard + silence;
    match session.identity() {
        None => reap.min(opened + grace),
        Some(identity) => {
            let left = Duration::from_millis((identity.expires_at - crate::now_ms()).max(0) as u64);
            reap.min(Instant::now() + left)
        }
    }
}

fn close(code: CloseCode, reason: &'static str) -> Option<CloseFrame> {
    Some(CloseFrame { code, reason: reason.into() })
}

fn message(payload: Payload) -> Message {
    match payload {
        Payload::Text(text) => Message::Text(text),
        Payload::Binary(bytes) => Message::Binary(bytes),
    }
}

async fn run_session<S>(
    mut ws: WebSocketStream<S>,
    app: Arc<App>,
    format: Format,
    identity: Option<Identity>,
    origin: Origin,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let session = app.registry.open(format, app.config.outbound_queue, app.config.outbound_queue_bytes);
    let mut batch = VecDeque::new();
    if let Some(identity) = identity {
        let user_id = identity.user_id;
        app.gateway.bind(&session, identity).await;
        announce_ready(&app, &session, user_id);
    }
    let inflight = Arc::new(Semaphore::new(app.config.session_inflight));
    let ping_every = app.config.ping_interval();
    let silence_limit = ping_every + app.config.ping_timeout();
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    let opened = last_heard;
    let grace = Duration::from_secs(app.config.auth_grace_secs);
    let watchdog = tokio::time::sleep_until(next_deadline(&session, last_heard, silence_limit, opened, grace));
    tokio::pin!(watchdog);

    // Created once: a fresh future per turn of the loop would lock and register anew each
    // time, on the path every delivery takes.
    let shutdown = app.shutdown.cancelled();
    tokio::pin!(shutdown);
    let ending = session.ending();
    tokio::pin!(ending);

    let farewell: Option<CloseFrame> = loop {
        // Ordered so that a turn woken by frames polls nothing else: the shutdown future,
        // registered once, wakes the task when it fires, and is looked at on a quiet turn.
        let turn = tokio::select! {
            biased;
            why = &mut ending => Turn::End(why),
            () = session.queued() => {
                // A peer that stops reading blocks this write; it must not also block the
                // session's end, a shutdown, or the reaping of a dead peer.
                // (The timeout costs no timer when the write is ready at once, as it nearly
                // always is: it polls the write first.)
                tokio::select! {
                    biased;
                    written = tokio::time::timeout(silence_limit, write_ready(&mut ws, &session, &mut batch)) => match written {
                        Ok(Ok(written)) => {
                            app.metrics.frames_out.inc_by(written);
                            continue;
                        }
                        Ok(Err(_)) | Err(_) => break None,
                    },
                    why = &mut ending => Turn::End(why),
                    _ = &mut shutdown => Turn::Shutdown,
                }
            }
            _ = &mut shutdown => Turn::Shutdown,
            frame = ws.next() => {
                let Some(frame) = frame else { break None };
                last_heard = Instant::now();
                app.metrics.frames_in.inc();
                let (bytes, frame_format) = match frame {
                    Ok(Message::Text(text)) => (text.into(), Format::Json),
                    Ok(Message::Binary(bytes)) => (bytes, Format::MsgPack),
                    Ok(Message::Close(_)) => break None,
                    Ok(_) => continue,
                    Err(tungstenite::Error::Capacity(_)) => break close(CloseCode::Size, "frame too large"),
                    Err(tungstenite::Error::Utf8(_)) => break close(CloseCode::Invalid, "invalid UTF-8 in a text frame"),
                    Err(tungstenite::Error::Protocol(_)) => break close(CloseCode::Protocol, "protocol error"),
                    Err(_) => break None,
                };
                match proto::decode(&bytes, frame_format) {
                    Ok(Incoming::Ping) => {
                        session.send(proto::pong(frame_format));
                    }
                    Ok(Incoming::Request { id, route, data }) => {
                        let Ok(permit) = inflight.clone().acquire_owned().await else { break None };
                        let caller = Caller {
                            auth: session.identity().map_or(Auth::Anonymous, Auth::Session),
                            origin: origin.clone(),
                        };
                        let (app, session) = (app.clone(), session.clone());
                        tokio::spawn(async move {
                            let started = Instant::now();
                            let result = app.router.dispatch(&caller, Method::Socket, &route, data).await;
                            app.metrics.observe(route_label(&route, &result), started.elapsed().as_secs_f64());
                            if matches!(result, Err(Error::RateLimited { .. })) && app.limits.abusive(session.id) {
                                session.end(Ending::Abuse);
                            }
                            let result = match result {
                                Ok(outcome) => {
                                    if let Some(identity) = outcome.bind {
                                        let user_id = identity.user_id;
                                        app.gateway.bind(&session, identity).await;
                                        announce_ready(&app, &session, user_id);
                                    }
                                    Ok(outcome.data)
                                }
                                Err(err) => Err(err),
                            };
                            session.send(encode_reply(Some(&id), result, frame_format));
                            drop(permit);
                        });
                    }
                    Err(BadFrame { id, error }) => {
                        session.send(encode_reply(id.as_ref(), Err(error), frame_format));
                    }
                }
                continue;
            }
            _ = ping.tick() => {
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
                continue;
            }
            () = &mut watchdog => Turn::Watchdog,
        };
        match turn {
            Turn::Shutdown => {
                let _ = tokio::time::timeout(
                    INFLIGHT_GRACE,
                    finish_inflight(&mut ws, &session, &mut batch, &inflight, app.config.session_inflight),
                )
                .await;
                break close(CloseCode::Away, "server shutting down");
            }
            Turn::End(why) => {
                break match why {
                    // A peer that does not read would block any further write: close at once.
                    Ending::SlowConsumer => close(CloseCode::Policy, "slow consumer: outbound queue full"),
                    Ending::Abuse => {
                        // The answers it already earned go out first, within the grace.
                        let drain =
                            finish_inflight(&mut ws, &session, &mut batch, &inflight, app.config.session_inflight);
                        let _ = tokio::time::timeout(INFLIGHT_GRACE, drain).await;
                        close(CloseCode::Policy, "rate limit exceeded")
                    }
                    Ending::Kicked(reason) => {
                        // The request that caused the kick (a logout) gets its reply first.
                        let farewell = async {
                            finish_inflight(&mut ws, &session, &mut batch, &inflight, app.config.session_inflight)
                                .await;
                            let push = Push::new(proto::event::SESSION_KICKED, Kicked { reason: reason.as_str() });
                            let _ = ws.send(message(push.payload(format))).await;
                        };
                        let _ = tokio::time::timeout(INFLIGHT_GRACE, farewell).await;
                        close(CloseCode::Library(4001), reason.as_str())
                    }
                };
            }
            Turn::Watchdog => {
                // Frames do not reset the timer (that would cost on every frame); it fires at
                // the old deadline and looks at what has happened since.
                let now = Instant::now();
                if now >= last_heard + silence_limit {
                    break None;
                }
                match session.identity() {
                    None if now >= opened + grace => break close(CloseCode::Policy, "authentication timeout"),
                    Some(identity) if identity.expires_at <= crate::now_ms() => {
                        let push = Push::new(
                            proto::event::SESSION_KICKED,
                            Kicked { reason: KickReason::TokenExpired.as_str() },
                        );
                        let _ = ws.send(message(push.payload(format))).await;
                        break close(CloseCode::Library(4001), "token expired");
                    }
                    _ => watchdog.as_mut().reset(next_deadline(&session, last_heard, silence_limit, opened, grace)),
                }
            }
        }
    };

    app.gateway.close(&session);
    if let Some(frame) = farewell {
        let handshake = async {
            if ws.close(Some(frame)).await.is_ok() {
                // Until the peer's own close: a socket closed with unread input is reset, and a
                // reset can make the peer drop the replies it has not read yet.
                while let Some(Ok(_)) = ws.next().await {}
            }
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, handshake).await;
    }
}

/// How long a closing session waits for the peer to answer its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The route label of a request's latency: unknown paths share one label, so that clients
/// cannot grow the metrics without bound.
pub fn route_label<'a, T>(route: &'a str, result: &Result<T, Error>) -> &'a str {
    match result {
        Err(Error::UnknownRoute) => "other",
        _ => route,
    }
}

fn encode_reply(id: Option<&proto::RequestId>, result: Result<serde_json::Value, Error>, format: Format) -> Payload {
    if let Err(Error::Internal(err)) = &result {
        tracing::error!(error = ?err, "request failed");
    }
    proto::encode(&Reply::new(id, true, result), format)
}

/// What ended a turn of a session's loop that is not a frame or a write.
enum Turn {
    /// The server is shutting down.
    Shutdown,
    /// The session was asked to end.
    End(Ending),
    /// The watchdog's deadline passed: silence, the grace period, or the token's expiry.
    Watchdog,
}

/// How long a closing session waits for its in-flight requests to answer.
const INFLIGHT_GRACE: Duration = Duration::from_secs(5);

/// Waits (bounded) until no request of this session is in flight, then writes their replies.
async fn finish_inflight<S>(
    ws: &mut WebSocketStream<S>,
    session: &Session,
    batch: &mut VecDeque<Payload>,
    inflight: &Semaphore,
    permits: usize,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(INFLIGHT_GRACE, inflight.acquire_many(permits as u32)).await;
    let _ = write_ready(ws, session, batch).await;
}

/// Feeds every frame already queued (up to [`MAX_BATCH`]), then flushes once; returns how many
/// frames went out. Frames taken are in `batch` until fed, so a write cut short by the end of
/// the session loses none that could still go.
async fn write_ready<S>(
    ws: &mut WebSocketStream<S>,
    session: &Session,
    batch: &mut VecDeque<Payload>,
) -> Result<u64, tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if batch.is_empty() {
        session.take_frames(batch, MAX_BATCH);
    }
    let mut fed = 0;
    while let Some(payload) = batch.pop_front() {
        ws.feed(message(payload)).await?;
        fed += 1;
    }
    // A burst's buffer is not kept by a session that goes quiet.
    if batch.capacity() > BATCH_KEEP {
        batch.shrink_to(BATCH_KEEP);
    }
    ws.flush().await?;
    Ok(fed)
}

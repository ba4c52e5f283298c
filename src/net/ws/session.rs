//! One session: a task that owns its socket from the upgrade to the close.
//!
//! It reads frames, hands each request to a task of its own (at most `session_inflight` at
//! once), and writes whatever its outbound queue holds: every ready frame is fed, then the
//! socket is flushed once, so a burst costs one syscall, not one per frame. Replies, pongs and
//! pushes all travel through that one bounded queue.
//!
//! The steps: [`run`] opens the session and binds it to its user if the handshake carried a
//! token ([`Live::open`]), drives the read and write loop ([`Live::drive`]) until something ends
//! it, says why ([`Live::end`]), forgets it, and closes the socket with a handshake
//! ([`goodbye`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::super::App;
use crate::api::frame::{self, BadFrame, Format, Incoming, Payload, Reply, RequestId};
use crate::api::push::{self, SessionReady};
use crate::api::{Auth, Caller, Method, Order, order_of, route_label};
use crate::delivery::{Ending, Session};
use crate::error::Error;
use crate::model::{Identity, KickReason, Origin, Tail, Turn, UserId, now_ms};

/// Frames written per flush at most, so one busy session cannot hold its task forever.
const MAX_BATCH: usize = 256;
/// Capacity of the write batch a quiet session keeps.
const BATCH_KEEP: usize = 8;
/// How long a closing session waits for the peer to answer its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a closing session waits for its in-flight requests to answer.
const INFLIGHT_GRACE: Duration = Duration::from_secs(5);

/// Serves one socket until it closes.
pub(super) async fn run<S>(
    mut ws: WebSocketStream<S>,
    app: Arc<App>,
    format: Format,
    identity: Option<Identity>,
    origin: Origin,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut live = Live::open(app, format, identity, origin).await;
    let farewell = live.drive(&mut ws).await;
    live.app.gateway.close(&live.session);
    goodbye(ws, farewell).await;
}

/// What ended a turn of a session's loop that is not a frame or a write.
enum Stop {
    /// The server is shutting down.
    Shutdown,
    /// The session was asked to end.
    End(Ending),
    /// The watchdog's deadline passed: silence, the grace period, or the token's expiry.
    Watchdog,
}

/// A session being served, and what its loop keeps between turns.
struct Live {
    app: Arc<App>,
    session: Arc<Session>,
    format: Format,
    origin: Origin,
    inflight: Arc<Semaphore>,
    /// Frames taken from the queue and not yet fed to the socket.
    batch: VecDeque<Payload>,
    last_heard: Instant,
    opened: Instant,
    /// Silence allowed before the peer counts as gone: a ping interval and its timeout.
    silence: Duration,
    /// How long the socket may stay anonymous.
    grace: Duration,
    /// The last turn handed out in the log order, and in the order of its replies.
    log_tail: Option<Tail>,
    reply_tail: Option<Tail>,
    /// The last turn handed out for each key of [`Order::Key`] requests still in flight.
    keyed: HashMap<String, Tail>,
}

/// A request's turns in its session's orders; each passes when dropped at the latest.
#[derive(Default)]
struct Place {
    /// Its turn in the log order, which the domain waits for and passes.
    log: Option<Arc<Turn>>,
    /// Its turn to be answered.
    reply: Option<Turn>,
    /// Its turn among the requests with its key, held from start to answer.
    key: Option<Turn>,
}

/// A request read from the socket.
struct Request {
    id: RequestId,
    route: String,
    data: serde_json::Value,
    format: Format,
}

impl Live {
    /// Opens the session and, when the handshake carried a valid token, binds it.
    async fn open(app: Arc<App>, format: Format, identity: Option<Identity>, origin: Origin) -> Live {
        let session = app.registry.open(format, app.config.outbound_queue, app.config.outbound_queue_bytes);
        if let Some(identity) = identity {
            let user_id = identity.user_id;
            if app.gateway.bind(&session, identity).await {
                announce_ready(&app, &session, user_id);
            }
        }
        let now = Instant::now();
        Live {
            inflight: Arc::new(Semaphore::new(app.config.session_inflight)),
            silence: app.config.ping_interval() + app.config.ping_timeout(),
            grace: Duration::from_secs(app.config.auth_grace_secs),
            session,
            format,
            origin,
            batch: VecDeque::new(),
            last_heard: now,
            opened: now,
            log_tail: None,
            reply_tail: None,
            keyed: HashMap::new(),
            app,
        }
    }

    /// Reads and writes until the session ends; returns the close frame to send, if any.
    async fn drive<S>(&mut self, ws: &mut WebSocketStream<S>) -> Option<CloseFrame>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let app = self.app.clone();
        let session = self.session.clone();
        let ping_every = app.config.ping_interval();
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let watchdog = tokio::time::sleep_until(self.deadline());
        tokio::pin!(watchdog);
        // Created once: a fresh future per turn of the loop would lock and register anew each
        // time, on the path every delivery takes.
        let shutdown = app.shutdown.cancelled();
        tokio::pin!(shutdown);
        let ending = session.ending();
        tokio::pin!(ending);
        loop {
            // Ordered so that a turn woken by frames polls nothing else: the shutdown future,
            // registered once, wakes the task when it fires, and is looked at on a quiet turn.
            let stop = tokio::select! {
                biased;
                why = &mut ending => Stop::End(why),
                () = session.queued() => {
                    // A peer that stops reading blocks this write; it must not also block the
                    // session's end, a shutdown, or the reaping of a dead peer. (The timeout
                    // costs no timer when the write is ready at once, as it nearly always is:
                    // it polls the write first.)
                    tokio::select! {
                        biased;
                        written = tokio::time::timeout(self.silence, write_ready(ws, &session, &mut self.batch)) => {
                            match written {
                                Ok(Ok(written)) => {
                                    app.metrics.frames_out.inc_by(written);
                                    continue;
                                }
                                Ok(Err(_)) | Err(_) => return None,
                            }
                        }
                        why = &mut ending => Stop::End(why),
                        _ = &mut shutdown => Stop::Shutdown,
                    }
                }
                _ = &mut shutdown => Stop::Shutdown,
                frame = ws.next() => match self.on_frame(frame).await {
                    Ok(()) => continue,
                    Err(farewell) => return farewell,
                },
                _ = ping.tick() => {
                    if ws.send(Message::Ping(Default::default())).await.is_err() {
                        return None;
                    }
                    continue;
                }
                () = &mut watchdog => Stop::Watchdog,
            };
            if let Stop::Watchdog = stop {
                // Frames do not reset the timer (that would cost on every frame); it fires at
                // the old deadline and looks at what has happened since.
                match self.overdue(ws).await {
                    Some(farewell) => return farewell,
                    None => watchdog.as_mut().reset(self.deadline()),
                }
                continue;
            }
            return self.end(ws, stop).await;
        }
    }

    /// Handles one incoming frame; `Err` ends the session with that close frame (or none).
    async fn on_frame(&mut self, frame: Option<Result<Message, tungstenite::Error>>) -> Result<(), Option<CloseFrame>> {
        let Some(frame) = frame else { return Err(None) };
        self.last_heard = Instant::now();
        self.app.metrics.frames_in.inc();
        let (bytes, format) = match frame {
            Ok(Message::Text(text)) => (text.into(), Format::Json),
            Ok(Message::Binary(bytes)) => (bytes, Format::MsgPack),
            Ok(Message::Close(_)) => return Err(None),
            Ok(_) => return Ok(()),
            Err(tungstenite::Error::Capacity(_)) => return Err(close(CloseCode::Size, "frame too large")),
            Err(tungstenite::Error::Utf8(_)) => return Err(close(CloseCode::Invalid, "invalid UTF-8 in a text frame")),
            Err(tungstenite::Error::Protocol(_)) => return Err(close(CloseCode::Protocol, "protocol error")),
            Err(_) => return Err(None),
        };
        match frame::decode(&bytes, format) {
            Ok(Incoming::Ping) => {
                self.session.send(frame::pong(format));
            }
            Ok(Incoming::Request { id, route, data }) => {
                let Ok(permit) = self.inflight.clone().acquire_owned().await else { return Err(None) };
                let place = self.place(&route, &data);
                let caller = Caller {
                    auth: self.session.identity().map_or(Auth::Anonymous, Auth::Session),
                    origin: self.origin.clone(),
                    turn: place.log.clone(),
                };
                let (app, session) = (self.app.clone(), self.session.clone());
                tokio::spawn(async move {
                    serve_request(&app, &session, caller, place, Request { id, route, data, format }).await;
                    drop(permit);
                });
            }
            Err(BadFrame { id, error }) => {
                self.session.send(encode_reply(id.as_ref(), Err(error), format));
            }
        }
        Ok(())
    }

    /// Where a request goes in this session's order ([`Order`]): a log request takes the next
    /// turn of the log chain and of the reply chain; a keyed one the next turn of its key's.
    fn place(&mut self, route: &str, data: &serde_json::Value) -> Place {
        match order_of(route, data) {
            Order::Free => Place::default(),
            Order::Log => {
                let (log, tail) = Turn::after(self.log_tail.take());
                self.log_tail = Some(tail);
                let (reply, tail) = Turn::after(self.reply_tail.take());
                self.reply_tail = Some(tail);
                Place { log: Some(Arc::new(log)), reply: Some(reply), key: None }
            }
            Order::Key(field) => {
                let key = format!("{field}={}", data.get(field).unwrap_or(&serde_json::Value::Null));
                // Chains whose requests all finished hold no one up: forget them, so the map
                // stays as small as the requests in flight.
                if self.keyed.len() >= self.app.config.session_inflight {
                    self.keyed.retain(|_, tail| !tail.is_done());
                }
                let (turn, tail) = Turn::after(self.keyed.remove(&key));
                self.keyed.insert(key, tail);
                Place { log: None, reply: None, key: Some(turn) }
            }
        }
    }

    /// When the watchdog must next look: the silence limit after the last frame; for an
    /// anonymous socket, the end of its grace period; for a bound one, its token's expiry.
    fn deadline(&self) -> Instant {
        let reap = self.last_heard + self.silence;
        match self.session.identity() {
            None => reap.min(self.opened + self.grace),
            Some(identity) => {
                let left = Duration::from_millis((identity.expires_at - now_ms()).max(0) as u64);
                reap.min(Instant::now() + left)
            }
        }
    }

    /// What the watchdog finds: `Some` ends the session (a silent peer, an anonymous socket
    /// past its grace, an expired token), `None` lets it go on.
    async fn overdue<S>(&mut self, ws: &mut WebSocketStream<S>) -> Option<Option<CloseFrame>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let now = Instant::now();
        if now >= self.last_heard + self.silence {
            return Some(None);
        }
        match self.session.identity() {
            None if now >= self.opened + self.grace => Some(close(CloseCode::Policy, "authentication timeout")),
            Some(identity) if identity.expires_at <= now_ms() => {
                let _ = ws.send(message(push::kicked(KickReason::TokenExpired).payload(self.format))).await;
                Some(close(CloseCode::Library(4001), "token expired"))
            }
            _ => None,
        }
    }

    /// The close frame for a session ended by `stop`, after the replies it already earned.
    async fn end<S>(&mut self, ws: &mut WebSocketStream<S>, stop: Stop) -> Option<CloseFrame>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        match stop {
            Stop::Shutdown => {
                let _ = tokio::time::timeout(INFLIGHT_GRACE, self.finish_inflight(ws)).await;
                close(CloseCode::Away, "server shutting down")
            }
            // A peer that does not read would block any further write: close at once.
            Stop::End(Ending::SlowConsumer) => close(CloseCode::Policy, "slow consumer: outbound queue full"),
            Stop::End(Ending::Unavailable) => {
                let _ = tokio::time::timeout(INFLIGHT_GRACE, self.finish_inflight(ws)).await;
                close(CloseCode::Error, "server could not load the session; reconnect")
            }
            Stop::End(Ending::Abuse) => {
                let _ = tokio::time::timeout(INFLIGHT_GRACE, self.finish_inflight(ws)).await;
                close(CloseCode::Policy, "rate limit exceeded")
            }
            Stop::End(Ending::Kicked(reason)) => {
                // The request that caused the kick (a logout) gets its reply first.
                let format = self.format;
                let farewell = async {
                    self.finish_inflight(ws).await;
                    let _ = ws.send(message(push::kicked(reason).payload(format))).await;
                };
                let _ = tokio::time::timeout(INFLIGHT_GRACE, farewell).await;
                close(CloseCode::Library(4001), reason.as_str())
            }
            Stop::Watchdog => None,
        }
    }

    /// Waits (bounded) until no request of this session is in flight, then writes their replies.
    async fn finish_inflight<S>(&mut self, ws: &mut WebSocketStream<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let permits = self.app.config.session_inflight as u32;
        let _ = tokio::time::timeout(INFLIGHT_GRACE, self.inflight.acquire_many(permits)).await;
        let _ = write_ready(ws, &self.session, &mut self.batch).await;
    }
}

/// Runs one request and queues its reply, each in its turn; a login binds the session first.
async fn serve_request(app: &App, session: &Arc<Session>, caller: Caller, place: Place, request: Request) {
    let Request { id, route, data, format } = request;
    if let Some(key) = &place.key {
        key.wait().await;
    }
    let started = Instant::now();
    let result = app.api.dispatch(&caller, Method::Socket, &route, data).await;
    let failure = result.as_ref().err().map(|e| (e.status(), e.family()));
    app.metrics.observe(route_label(&route), started.elapsed().as_secs_f64(), failure);
    // A request that failed before its turn must not let the later ones overtake the earlier.
    if let Some(log) = &place.log {
        log.wait().await;
        log.pass();
    }
    if matches!(result, Err(Error::RateLimited { .. })) && app.api.abusive(session.id) {
        session.end(Ending::Abuse);
    }
    let result = match result {
        Ok(outcome) => match outcome.bind {
            Some(identity) => {
                let user_id = identity.user_id;
                if app.gateway.bind(session, identity).await {
                    announce_ready(app, session, user_id);
                    Ok(outcome.data)
                } else {
                    Err(Error::Unavailable)
                }
            }
            None => Ok(outcome.data),
        },
        Err(err) => Err(err),
    };
    if let Some(reply) = &place.reply {
        reply.wait().await;
    }
    session.send(encode_reply(Some(&id), result, format));
}

/// Tells a session it is authenticated, and how the server keeps it alive.
fn announce_ready(app: &App, session: &Session, user_id: UserId) {
    let ready = SessionReady {
        user_id,
        node: app.gateway.node().to_owned(),
        ping_interval: app.config.ping_interval().as_millis() as u64,
        pong_timeout: app.config.ping_timeout().as_millis() as u64,
    };
    session.send(push::session_ready(ready).payload(session.format));
}

/// Closes the socket with `farewell`, waiting (bounded) for the peer's own close.
async fn goodbye<S>(mut ws: WebSocketStream<S>, farewell: Option<CloseFrame>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(frame) = farewell else { return };
    let handshake = async {
        if ws.close(Some(frame)).await.is_ok() {
            // Until the peer's own close: a socket closed with unread input is reset, and a
            // reset can make the peer drop the replies it has not read yet.
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, handshake).await;
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

fn encode_reply(id: Option<&RequestId>, result: Result<serde_json::Value, Error>, format: Format) -> Payload {
    if let Err(Error::Internal(err)) = &result {
        tracing::error!(error = ?err, "request failed");
    }
    frame::encode(&Reply::new(id, true, result), format)
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

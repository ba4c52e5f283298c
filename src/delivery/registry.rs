//! The connection registry: user id → that user's live sessions on this node.
//!
//! Invariants:
//! - Every session has a bounded outbound queue (frames and bytes). Nothing ever waits on a
//!   session's queue: a push to a full queue ends that session as a slow consumer instead of
//!   blocking the sender.
//! - The queue costs nothing while empty: a deque behind a mutex, grown on demand and shrunk
//!   back after a burst, instead of a channel whose first block (~1.3 KB) is allocated up front
//!   for every idle session.
//! - No lock is held across an `.await`: the map's shard locks are taken only to copy handles.
//! - A session's life is one ordered sequence, open → bound (to one user at a time) → closed,
//!   kept under the session's own lock, which is held while the map changes. A session that
//!   closes at any point, even while its login is being served, leaves nothing in the map:
//!   binding a closed session is refused.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use dashmap::DashMap;
use futures::task::AtomicWaker;

use crate::api::frame::{Format, Payload};
use crate::model::{Identity, KickReason, SessionId, UserId};

/// Why a session is being closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Its token was revoked; a `session.kicked` push precedes the close.
    Kicked(KickReason),
    /// Its outbound queue overflowed.
    SlowConsumer,
    /// It kept sending past its rate limit.
    Abuse,
    /// The server could not make it whole (its user's groups could not be read): the client
    /// should reconnect, and sync.
    Unavailable,
}

/// One live session, shared by its socket task, its request tasks and the registry.
pub struct Session {
    /// Node-unique session id.
    pub id: SessionId,
    /// Encoding of pushes to this session.
    pub format: Format,
    outbox: Mutex<Outbox>,
    /// Wakes the socket task when the outbox gets a frame or the session is asked to end.
    writer: AtomicWaker,
    max_frames: usize,
    max_bytes: usize,
    phase: Mutex<Phase>,
    ending: OnceLock<Ending>,
}

/// Where a session is in its life.
enum Phase {
    /// Not bound to a user yet.
    Open,
    /// Bound to a user, and in the map under them.
    Bound(Identity),
    /// Closed for good: nothing may bind it again.
    Closed,
}

/// Frames waiting for the socket task.
#[derive(Default)]
struct Outbox {
    frames: VecDeque<Payload>,
    bytes: usize,
}

/// Capacity an emptied outbox keeps; a burst's larger buffer is given back.
const OUTBOX_KEEP: usize = 8;

impl Session {
    /// The user the session is bound to, if any.
    pub fn identity(&self) -> Option<Identity> {
        match &*self.phase() {
            Phase::Bound(identity) => Some(identity.clone()),
            Phase::Open | Phase::Closed => None,
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame without waiting. A queue over its frame or byte budget ends the session
    /// as a slow consumer and answers `false`.
    pub fn send(&self, payload: Payload) -> bool {
        let len = payload.as_bytes().len();
        {
            let mut outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
            if outbox.frames.len() >= self.max_frames || outbox.bytes + len > self.max_bytes {
                drop(outbox);
                self.end(Ending::SlowConsumer);
                return false;
            }
            outbox.bytes += len;
            outbox.frames.push_back(payload);
        }
        self.writer.wake();
        true
    }

    /// Moves up to `max` queued frames into `out`; returns how many.
    pub fn take_frames(&self, out: &mut VecDeque<Payload>, max: usize) -> usize {
        let mut guard = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        let Outbox { frames, bytes } = &mut *guard;
        let n = frames.len().min(max);
        for payload in frames.drain(..n) {
            *bytes -= payload.as_bytes().len();
            out.push_back(payload);
        }
        if frames.is_empty() && frames.capacity() > OUTBOX_KEEP {
            frames.shrink_to(OUTBOX_KEEP);
        }
        n
    }

    /// Ready once a frame is queued (for the socket task, the only reader).
    pub fn poll_queued(&self, cx: &mut Context<'_>) -> Poll<()> {
        let ready = |this: &Self| !this.outbox.lock().unwrap_or_else(|e| e.into_inner()).frames.is_empty();
        if ready(self) {
            return Poll::Ready(());
        }
        self.writer.register(cx.waker());
        // A frame queued between the first look and the registration must not be missed.
        if ready(self) { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Completes once a frame is queued.
    pub async fn queued(&self) {
        std::future::poll_fn(|cx| self.poll_queued(cx)).await
    }

    /// Asks the socket task to close the session; the first reason given wins.
    pub fn end(&self, why: Ending) {
        let _ = self.ending.set(why);
        self.writer.wake();
    }

    /// Completes when the session has been asked to end, with the reason. Polling it is one
    /// atomic load: it sits on the path of every delivery.
    pub async fn ending(&self) -> Ending {
        std::future::poll_fn(|cx| {
            if let Some(why) = self.ending.get() {
                return Poll::Ready(*why);
            }
            self.writer.register(cx.waker());
            self.ending.get().map_or(Poll::Pending, |why| Poll::Ready(*why))
        })
        .await
    }
}

/// What binding a session changed.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The user the session was bound to before, whose entry it left.
    pub previous: Option<UserId>,
}

/// All sessions of this node, by user.
#[derive(Default)]
pub struct Registry {
    users: DashMap<UserId, Vec<Arc<Session>>>,
    next_id: AtomicU64,
}

impl Registry {
    /// Creates a session with an outbound queue of at most `queue` frames and `max_bytes` bytes.
    pub fn open(&self, format: Format, queue: usize, max_bytes: usize) -> Arc<Session> {
        Arc::new(Session {
            id: SessionId(self.next_id.fetch_add(1, Ordering::Relaxed)),
            format,
            outbox: Mutex::default(),
            writer: AtomicWaker::new(),
            max_frames: queue,
            max_bytes,
            phase: Mutex::new(Phase::Open),
            ending: OnceLock::new(),
        })
    }

    /// Binds `session` to `identity` (login on an open socket), moving it off any user it was
    /// bound to before. A closed session is not bound: `None`.
    pub fn bind(&self, session: &Arc<Session>, mut identity: Identity) -> Option<Bound> {
        identity.session = Some(session.id);
        let user_id = identity.user_id;
        let mut phase = session.phase();
        let previous = match std::mem::replace(&mut *phase, Phase::Bound(identity)) {
            Phase::Closed => {
                *phase = Phase::Closed;
                return None;
            }
            Phase::Open => None,
            Phase::Bound(previous) => Some(previous.user_id),
        };
        if let Some(previous) = previous {
            self.remove(previous, session.id);
        }
        self.users.entry(user_id).or_default().push(session.clone());
        Some(Bound { previous })
    }

    /// Closes `session` for good and forgets it; returns the user it was bound to, if any.
    pub fn close(&self, session: &Session) -> Option<UserId> {
        let mut phase = session.phase();
        match std::mem::replace(&mut *phase, Phase::Closed) {
            Phase::Bound(identity) => {
                self.remove(identity.user_id, session.id);
                Some(identity.user_id)
            }
            Phase::Open | Phase::Closed => None,
        }
    }

    /// Removes one session from the map.
    fn remove(&self, user_id: UserId, session_id: SessionId) {
        self.users.remove_if_mut(&user_id, |_, sessions| {
            sessions.retain(|s| s.id != session_id);
            sessions.is_empty()
        });
    }

    /// Whether `user_id` has a live session here, without copying them out.
    pub fn has_sessions(&self, user_id: UserId) -> bool {
        self.users.get(&user_id).is_some_and(|sessions| !sessions.is_empty())
    }

    /// The live sessions of `user_id`, copied out so no lock outlives this call.
    pub fn sessions(&self, user_id: UserId) -> Vec<Arc<Session>> {
        self.users.get(&user_id).map(|s| s.clone()).unwrap_or_default()
    }

    /// Every bound session of this node, copied out.
    pub fn all_sessions(&self) -> Vec<Arc<Session>> {
        self.users.iter().flat_map(|entry| entry.value().clone()).collect()
    }

    /// Calls `f` on each live session of `user_id` without copying them out: the fan-out path.
    /// The map's shard is read-locked meanwhile, so `f` must not block (`Session::send` does
    /// not: it never waits).
    pub fn for_each_session(&self, user_id: UserId, mut f: impl FnMut(&Arc<Session>)) {
        if let Some(sessions) = self.users.get(&user_id) {
            sessions.iter().for_each(&mut f);
        }
    }
}

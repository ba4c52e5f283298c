//! The gateway: turns domain events into pushes and closes for live sessions, on this node
//! and, through the [`Bus`], on the others.
//!
//! Invariants:
//! - A push is built once and encoded at most once per format per node, then shared by every
//!   recipient session (see [`Push`]). Nothing here waits on a session or on the bus.
//! - Local sessions are served first and directly: a Redis outage never stops delivery between
//!   users of one node. Envelopes a node published itself are ignored when they come back.
//! - Every recipient gets each event once: users whose membership the event changes get it on
//!   their user channel, everyone else on the group channel.
//! - This node is subscribed to `u:<user>` while it holds a session of the user, and to
//!   `g:<group>` while it holds a session of any member of the group.
//! - Each node knows which of its online users are in which group, so a group push needs no
//!   member list from the database or in its envelope. A session is told `session.ready` only
//!   once its user's groups are known here: from then on it misses no group push. A membership
//!   change that races the loading of a user's groups makes the loading read them again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::bus::{Bus, group_channel, user_channel};
use super::registry::{Ending, Registry, Session};
use crate::api::push::Push;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::{Audience, GroupId, Identity, KickReason, SessionId, UserId};
use crate::store::Store;

/// What one node tells the others about one event.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Envelope {
    /// The publishing node, which ignores its own envelopes.
    origin: String,
    items: Vec<Item>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum Item {
    /// A push frame (JSON) for these users' sessions.
    Push { frame: String, to: Vec<UserId> },
    /// A push frame (JSON) for the sessions of a group's members, but `except`'s.
    GroupPush { frame: String, group: GroupId, except: Option<UserId> },
    /// End a user's sessions (those of one token, or all).
    Kick { user: UserId, jti: Option<String>, reason: String },
    /// Group membership changed: nodes adjust their channel subscriptions.
    Membership { group: GroupId, added: Vec<UserId>, removed: Vec<UserId> },
}

/// What this node knows of one of its online users.
#[derive(Default)]
struct LocalUser {
    /// Whether this node has told the bus the user is here (and subscribed to their channel).
    online: bool,
    groups: HashSet<GroupId>,
    /// Membership changes applied to this user: loading their groups starts again when one
    /// lands while the database is read.
    changes: u64,
}

/// How often the bus is asked whether it answers, for the `bus_up` gauge.
const BUS_PROBE: Duration = Duration::from_secs(5);

/// How long after a kick a newly bound session of the user has its token checked again: longer
/// than any authentication takes (the database timeout bounds it).
const KICK_RACE: Duration = Duration::from_secs(30);

/// Users whose kicks are remembered at most; past it the oldest are forgotten first.
const KICKS_REMEMBERED: usize = 100_000;

/// Keeps the `bus_up` gauge current while the gateway lives, and revalidates every session
/// every `revalidate` and whenever the bus comes back (what it carried meanwhile is lost).
async fn probe_bus(gateway: std::sync::Weak<Gateway>, revalidate: Duration) {
    let mut every = tokio::time::interval(BUS_PROBE.min(revalidate));
    let mut was_up = true;
    let mut last = Instant::now();
    loop {
        every.tick().await;
        let Some(gateway) = gateway.upgrade() else { return };
        let up = gateway.ready().await;
        if (up && !was_up) || last.elapsed() >= revalidate {
            gateway.revalidate().await;
            last = Instant::now();
        }
        was_up = up;
    }
}

/// Reads of a user's groups tried before giving up, when membership keeps changing meanwhile.
const LOAD_ATTEMPTS: usize = 5;

/// Delivers events to sessions, here and elsewhere.
pub struct Gateway {
    node: String,
    registry: Arc<Registry>,
    pub(super) bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// The groups of each user with a session here.
    user_groups: DashMap<UserId, LocalUser>,
    /// The users with a session here, per group; the group channel is subscribed while any.
    group_members: DashMap<GroupId, HashSet<UserId>>,
    /// Sessions one user may hold here.
    max_sessions_per_user: usize,
    /// Users kicked here lately, and when: a session that binds soon after may have been
    /// authenticated before the kick and missed it.
    recent_kicks: std::sync::Mutex<HashMap<UserId, Instant>>,
}

impl Gateway {
    /// A gateway for node `node`; `inbound` carries the envelopes other nodes send it. From
    /// `config`: the sessions one user may hold here, and how often sessions are revalidated.
    pub fn start(
        node: String,
        registry: Arc<Registry>,
        bus: Arc<dyn Bus>,
        mut inbound: mpsc::Receiver<Bytes>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        config: &Config,
    ) -> Arc<Gateway> {
        let revalidate = Duration::from_secs(config.revalidate_secs);
        let gateway = Arc::new(Gateway {
            node,
            registry,
            bus,
            store,
            metrics,
            user_groups: DashMap::new(),
            group_members: DashMap::new(),
            max_sessions_per_user: config.max_sessions_per_user,
            recent_kicks: std::sync::Mutex::default(),
        });
        let weak = Arc::downgrade(&gateway);
        tokio::spawn(async move {
            while let Some(bytes) = inbound.recv().await {
                let Some(gateway) = weak.upgrade() else { return };
                gateway.receive(&bytes);
            }
        });
        tokio::spawn(probe_bus(Arc::downgrade(&gateway), revalidate));
        gateway
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Binds a session to its user (handshake or login), subscribing the node to the user's
    /// channels when it is their first session here. Returns once the user's groups are known
    /// here, so that every group push from then on reaches the session; `false` when the
    /// session closed first and was not bound, or when the user's groups could not be read:
    /// a session that would silently miss group pushes is ended instead (1011), so its client
    /// reconnects and syncs.
    pub async fn bind(self: &Arc<Self>, session: &Arc<Session>, identity: Identity) -> bool {
        let user_id = identity.user_id;
        let Some(change) = self.registry.bind(session, identity) else { return false };
        match change.previous {
            Some(previous) => self.reconcile(previous),
            None => {
                self.metrics.sessions.inc();
            }
        }
        self.reconcile(user_id);
        if self.load_groups(user_id).await.is_err() {
            session.end(Ending::Unavailable);
            return false;
        }
        if self.kicked_lately(user_id) && !self.still_valid(session).await {
            return false;
        }
        let sessions = self.registry.sessions(user_id);
        if let Some(excess) = sessions.len().checked_sub(self.max_sessions_per_user) {
            // The oldest sessions make room: a new login never fails for being one too many.
            for old in sessions.iter().take(excess) {
                old.end(Ending::Kicked(KickReason::SessionLimit));
            }
        }
        true
    }

    /// Whether `user_id` was kicked here within [`KICK_RACE`].
    fn kicked_lately(&self, user_id: UserId) -> bool {
        let kicks = self.recent_kicks.lock().unwrap_or_else(|e| e.into_inner());
        kicks.get(&user_id).is_some_and(|at| at.elapsed() < KICK_RACE)
    }

    /// Notes a kick of `user_id`, for sessions that bind while it is being processed.
    fn remember_kick(&self, user_id: UserId) {
        let mut kicks = self.recent_kicks.lock().unwrap_or_else(|e| e.into_inner());
        kicks.retain(|_, at| at.elapsed() < KICK_RACE);
        if kicks.len() >= KICKS_REMEMBERED
            && let Some(oldest) = kicks.iter().min_by_key(|(_, at)| **at).map(|(user, _)| *user)
        {
            kicks.remove(&oldest);
        }
        kicks.insert(user_id, Instant::now());
    }

    /// Checks a just-bound session's token against the store again, now that the session is in
    /// the registry where any later kick finds it: one authenticated before a kick it missed
    /// (a logout or a password reset) is ended here. A store error keeps the session: the
    /// check at authentication held.
    async fn still_valid(&self, session: &Session) -> bool {
        let Some(identity) = session.identity() else { return false };
        match self.store.token_state(identity.user_id, &identity.jti).await {
            Ok(Some(state)) if !state.revoked && state.version == identity.version => true,
            Ok(state) => {
                let reason = match state {
                    Some(state) if state.revoked => KickReason::Logout,
                    _ => KickReason::PasswordReset,
                };
                session.end(Ending::Kicked(reason));
                false
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not check a new session's token again");
                true
            }
        }
    }

    /// Checks every live session's token and every online user's groups against the store, in
    /// a few queries: sessions revoked or outdated meanwhile end, and this node's view of who
    /// is in which group is corrected, so that kicks and membership changes the bus lost (a
    /// Redis outage) still take effect within the revalidation bound.
    pub(super) async fn revalidate(&self) {
        self.revalidate_tokens().await;
        self.revalidate_groups().await;
        self.metrics.revalidations.inc();
    }

    /// Reads every online user's groups again and brings this node's view in line. A user
    /// whose membership changed while the store was read (an envelope landed) is left to the
    /// next round; a user corrected here counts as changed, so a load of their groups still
    /// running starts again instead of undoing the correction.
    async fn revalidate_groups(&self) {
        let seen: Vec<(UserId, u64)> =
            self.user_groups.iter().filter(|u| u.online).map(|u| (*u.key(), u.changes)).collect();
        if seen.is_empty() {
            return;
        }
        let users: Vec<UserId> = seen.iter().map(|(user, _)| *user).collect();
        let mut truth: HashMap<UserId, HashSet<GroupId>> = HashMap::new();
        match self.store.group_ids_of_users(&users).await {
            Ok(pairs) => pairs.into_iter().for_each(|(user, group)| {
                truth.entry(user).or_default().insert(group);
            }),
            Err(err) => {
                tracing::warn!(error = %err, "could not revalidate group memberships; trying again later");
                return;
            }
        }
        for (user_id, changes) in seen {
            let Some(mut user) = self.user_groups.get_mut(&user_id) else { continue };
            let groups = truth.remove(&user_id).unwrap_or_default();
            if !user.online || user.changes != changes || user.groups == groups {
                continue;
            }
            user.changes += 1;
            for group in user.groups.difference(&groups).copied().collect::<Vec<_>>() {
                user.groups.remove(&group);
                self.remove_member(group, user_id);
            }
            for group in groups {
                if user.groups.insert(group) {
                    self.add_member(group, user_id);
                }
            }
        }
    }

    async fn revalidate_tokens(&self) {
        let sessions: Vec<(Arc<Session>, Identity)> =
            self.registry.all_sessions().into_iter().filter_map(|s| s.identity().map(|i| (s, i))).collect();
        if sessions.is_empty() {
            return;
        }
        let tokens: Vec<(UserId, Arc<str>)> = sessions.iter().map(|(_, i)| (i.user_id, i.jti.clone())).collect();
        let states = match self.store.token_states(&tokens).await {
            Ok(states) => states,
            Err(err) => {
                tracing::warn!(error = %err, "could not revalidate sessions; trying again later");
                return;
            }
        };
        for ((session, identity), state) in sessions.iter().zip(states) {
            let reason = match state {
                Some(state) if state.revoked => KickReason::Logout,
                Some(state) if state.version == identity.version => continue,
                _ => KickReason::PasswordReset,
            };
            session.end(Ending::Kicked(reason));
        }
    }

    /// Forgets a closing session for good.
    pub fn close(&self, session: &Session) {
        if let Some(user_id) = self.registry.close(session) {
            self.metrics.sessions.dec();
            self.reconcile(user_id);
        }
    }

    /// Brings what this node has told the bus about `user_id` (presence, the user's channel,
    /// their groups) in line with whether the registry holds a session of theirs. Every bind
    /// and close calls it after changing the registry; the user's entry lock orders the calls,
    /// so each online or offline transition is announced exactly once, in order, however
    /// devices race.
    fn reconcile(&self, user_id: UserId) {
        let mut user = self.user_groups.entry(user_id).or_default();
        let here = self.has_sessions(user_id);
        if here != user.online {
            user.online = here;
            if here {
                self.bus.subscribe(user_channel(user_id));
            } else {
                self.bus.unsubscribe(user_channel(user_id));
                for group in std::mem::take(&mut user.groups) {
                    self.remove_member(group, user_id);
                }
            }
            self.bus.set_presence(vec![user_id], here);
            self.metrics.presence_change(here);
        }
        drop(user);
        if !here {
            self.user_groups.remove_if(&user_id, |_, user| !user.online);
        }
    }

    /// Reads an online user's groups and counts them in, unless a membership change for the
    /// user lands meanwhile, in which case it reads them again. `Err` when they could not be
    /// read (logged here).
    async fn load_groups(&self, user_id: UserId) -> Result<(), ()> {
        for _ in 0..LOAD_ATTEMPTS {
            let Some(seen) = self.user_groups.get(&user_id).map(|u| u.changes) else { return Ok(()) };
            let groups = match self.store.group_ids_of(user_id).await {
                Ok(groups) => groups,
                Err(err) => {
                    tracing::error!(%user_id, error = %err, "could not load a user's groups; ending the session");
                    return Err(());
                }
            };
            // The user went offline meanwhile, or is counted in already by the changes.
            let Some(mut user) = self.user_groups.get_mut(&user_id) else { return Ok(()) };
            if !user.online {
                return Ok(());
            }
            if user.changes != seen {
                continue;
            }
            for group in groups {
                if user.groups.insert(group) {
                    self.add_member(group, user_id);
                }
            }
            return Ok(());
        }
        tracing::error!(%user_id, "a user's groups kept changing while loading; ending the session");
        Err(())
    }

    /// Counts `user_id` in `group`'s online members here (a user not online here is skipped).
    /// Called with the user's entry locked, so membership changes of one user apply in order.
    fn add_member(&self, group: GroupId, user_id: UserId) {
        let mut members = self.group_members.entry(group).or_default();
        if members.insert(user_id) && members.len() == 1 {
            self.bus.subscribe(group_channel(group));
        }
    }

    fn remove_member(&self, group: GroupId, user_id: UserId) {
        let emptied = self
            .group_members
            .remove_if_mut(&group, |_, members| {
                members.remove(&user_id);
                members.is_empty()
            })
            .is_some();
        if emptied {
            self.bus.unsubscribe(group_channel(group));
        }
    }

    pub(super) fn apply_membership(&self, group: GroupId, added: &[UserId], removed: &[UserId]) {
        for (&user_id, joins) in added.iter().map(|u| (u, true)).chain(removed.iter().map(|u| (u, false))) {
            let Some(mut user) = self.user_groups.get_mut(&user_id) else { continue };
            user.changes += 1;
            if joins && user.groups.insert(group) {
                self.add_member(group, user_id);
            } else if !joins && user.groups.remove(&group) {
                self.remove_member(group, user_id);
            }
        }
    }

    /// Queues `push` to this node's sessions of `recipients`, but `skip`.
    pub(super) fn deliver(&self, recipients: &[UserId], push: &Push, skip: Option<SessionId>) {
        for &user_id in recipients {
            self.deliver_user(user_id, push, skip);
        }
    }

    /// Queues `push` to this node's sessions of `group`'s members, but `except`'s and `skip`.
    fn deliver_group(&self, group: GroupId, except: Option<UserId>, push: &Push, skip: Option<SessionId>) {
        if let Some(members) = self.group_members.get(&group) {
            for &user_id in members.iter().filter(|u| Some(**u) != except) {
                self.deliver_user(user_id, push, skip);
            }
        }
    }

    fn deliver_user(&self, user_id: UserId, push: &Push, skip: Option<SessionId>) {
        self.registry.for_each_session(user_id, |session| {
            if Some(session.id) != skip {
                if session.send(push.payload(session.format)) {
                    self.metrics.deliveries.inc();
                } else {
                    self.metrics.queue_drops.inc();
                }
            }
        });
    }

    pub(super) fn kick(&self, user_id: UserId, jti: Option<&str>, reason: KickReason) {
        self.remember_kick(user_id);
        for session in self.registry.sessions(user_id) {
            let matches = match (jti, session.identity()) {
                (None, _) => true,
                (Some(jti), Some(identity)) => &*identity.jti == jti,
                (Some(_), None) => false,
            };
            if matches {
                session.end(Ending::Kicked(reason));
            }
        }
    }

    pub(super) fn send(&self, channel: String, items: Vec<Item>) {
        if !self.bus.has_peers() {
            return;
        }
        let envelope = Envelope { origin: self.node.clone(), items };
        match serde_json::to_vec(&envelope) {
            Ok(bytes) => self.bus.publish(channel, bytes.into()),
            Err(err) => tracing::error!(error = %err, "could not encode a bus envelope"),
        }
    }

    /// Delivers `push` to `audience` here, and on the bus: once on the group's channel for a
    /// group, else on each recipient's channel.
    pub(super) fn fan_out(&self, push: Push, audience: &Audience, skip: Option<SessionId>) {
        match audience {
            Audience::Users(users) => {
                self.deliver(users, &push, skip);
                if self.bus.has_peers() {
                    let frame = push.json_text();
                    for &user in users {
                        self.send(user_channel(user), vec![Item::Push { frame: frame.clone(), to: vec![user] }]);
                    }
                }
            }
            &Audience::Group { group_id, except } => {
                self.deliver_group(group_id, except, &push, skip);
                if self.bus.has_peers() {
                    let item = Item::GroupPush { frame: push.json_text(), group: group_id, except };
                    self.send(group_channel(group_id), vec![item]);
                }
            }
        }
    }

    fn receive(&self, bytes: &[u8]) {
        let envelope: Envelope = match serde_json::from_slice(bytes) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(error = %err, "undecodable bus envelope");
                return;
            }
        };
        if envelope.origin == self.node {
            return;
        }
        for item in envelope.items {
            match item {
                Item::Push { frame, to } => match Push::from_json_frame(frame) {
                    Some(push) => self.deliver(&to, &push, None),
                    None => tracing::warn!("bus envelope with an unreadable push"),
                },
                Item::GroupPush { frame, group, except } => match Push::from_json_frame(frame) {
                    Some(push) => self.deliver_group(group, except, &push, None),
                    None => tracing::warn!("bus envelope with an unreadable push"),
                },
                Item::Kick { user, jti, reason } => {
                    if let Some(reason) = KickReason::parse(&reason) {
                        self.kick(user, jti.as_deref(), reason);
                    }
                }
                Item::Membership { group, added, removed } => self.apply_membership(group, &added, &removed),
            }
        }
    }

    /// Whether `user_id` has a session on this node.
    pub(super) fn has_sessions(&self, user_id: UserId) -> bool {
        self.registry.has_sessions(user_id)
    }

    /// Whether the bus reaches the other nodes (`/healthz`); also sets the `bus_up` gauge.
    pub async fn ready(&self) -> bool {
        let up = self.bus.ready().await;
        self.metrics.bus_up.set(i64::from(up));
        up
    }
}

//! The Redis bus: pub/sub over RESP3 pushes, reconnecting and resubscribing by itself, and
//! presence as a hash per user that expires unless refreshed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

use super::{Bus, INBOUND_QUEUE, PRESENCE_TTL};
use crate::metrics::Metrics;
use crate::model::{UserId, now_ms};

/// Envelopes waiting to be published, per node.
const PUBLISH_QUEUE: usize = 65_536;
/// Bytes of envelopes waiting to be published, per node: past it, envelopes are dropped (and
/// counted) rather than held, and the other nodes' clients fill the gap by sync.
const PUBLISH_QUEUE_BYTES: usize = 64 << 20;
/// Subscription changes waiting, per node.
const CONTROL_QUEUE: usize = 65_536;
/// The longest any request-path Redis call may take before it answers an error.
const REDIS_CALL: Duration = Duration::from_secs(2);
/// Most envelopes sent in one Redis pipeline.
const PUBLISH_BATCH: usize = 512;

enum Control {
    Subscribe(String),
    Unsubscribe(String),
    Presence(Vec<UserId>, bool),
}

/// The Redis bus: channels are `chatgate:<channel>`, presence is a hash per user
/// (`chatgate:online:<user>`: node → expiry in ms) that expires unless refreshed.
pub struct RedisBus {
    publish: mpsc::Sender<(String, Bytes)>,
    /// Bytes in `publish` now.
    queued: Arc<AtomicUsize>,
    control: mpsc::Sender<Control>,
    conn: ConnectionManager,
    metrics: Arc<Metrics>,
}

const PREFIX: &str = "chatgate:";

fn presence_key(user: UserId) -> String {
    format!("{PREFIX}online:{user}")
}

impl RedisBus {
    /// Connects to `url` as node `node`; envelopes for this node arrive on the returned receiver.
    pub async fn connect(
        url: &str,
        node: &str,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<(RedisBus, mpsc::Receiver<Bytes>)> {
        let info: redis::ConnectionInfo = url.parse()?;
        let settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let client = redis::Client::open(info)?;
        let (inbound_tx, inbound) = mpsc::channel::<Bytes>(INBOUND_QUEUE);
        let push_metrics = metrics.clone();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(usize::MAX)
            .set_max_delay(Duration::from_secs(2))
            .set_automatic_resubscription()
            .set_push_sender(move |push: redis::PushInfo| {
                match push.kind {
                    redis::PushKind::Message => {
                        if let Some(redis::Value::BulkString(payload)) = push.data.get(1)
                            && inbound_tx.try_send(Bytes::copy_from_slice(payload)).is_err()
                        {
                            push_metrics.bus_dropped.inc();
                        }
                    }
                    redis::PushKind::Disconnection => {
                        push_metrics.redis_reconnects.inc();
                        tracing::warn!("lost the Redis connection; reconnecting and resubscribing");
                    }
                    _ => {}
                }
                Ok::<(), redis::aio::SendError>(())
            });
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let (publish, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let (control, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(publisher(conn.clone(), publish_rx, queued.clone(), metrics.clone()));
        tokio::spawn(controller(conn.clone(), control_rx, node.to_owned()));
        Ok((RedisBus { publish, queued, control, conn, metrics }, inbound))
    }

    fn control(&self, c: Control) {
        if self.control.try_send(c).is_err() {
            self.metrics.bus_dropped.inc();
            tracing::error!("bus control queue full; a subscription change was dropped");
        }
    }
}

/// Publishes what is queued, a pipeline per batch: one round trip for many envelopes.
async fn publisher(
    mut conn: ConnectionManager,
    mut queue: mpsc::Receiver<(String, Bytes)>,
    queued: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        queued.fetch_sub(batch.iter().map(|(_, envelope)| envelope.len()).sum(), Ordering::Relaxed);
        let mut pipe = redis::pipe();
        for (channel, envelope) in &batch {
            pipe.cmd("PUBLISH").arg(format!("{PREFIX}{channel}")).arg(envelope.as_ref()).ignore();
        }
        // Bounded like every other Redis call: during an outage the connection manager would
        // hold the batch until Redis is back, and the queue behind it would only fill.
        let sent = match tokio::time::timeout(REDIS_CALL, pipe.query_async::<()>(&mut conn)).await {
            Ok(result) => result.map_err(|err| err.to_string()),
            Err(_) => Err(format!("no answer within {REDIS_CALL:?}")),
        };
        match sent {
            Ok(()) => {
                metrics.redis_publishes.inc_by(batch.len() as u64);
            }
            Err(err) => {
                metrics.redis_publish_failures.inc_by(batch.len() as u64);
                tracing::warn!(error = %err, dropped = batch.len(), "Redis publish failed; clients will fill the gap by seq");
            }
        }
        batch.clear();
    }
}

/// Applies subscription and presence changes in order, and refreshes this node's presence.
async fn controller(mut conn: ConnectionManager, mut queue: mpsc::Receiver<Control>, node: String) {
    let mut online: HashSet<UserId> = HashSet::new();
    let mut refresh = tokio::time::interval(PRESENCE_TTL / 3);
    loop {
        tokio::select! {
            change = queue.recv() => {
                let Some(change) = change else { return };
                let result = match change {
                    Control::Subscribe(channel) => conn.subscribe(format!("{PREFIX}{channel}")).await,
                    Control::Unsubscribe(channel) => conn.unsubscribe(format!("{PREFIX}{channel}")).await,
                    Control::Presence(users, true) => {
                        online.extend(&users);
                        write_presence(&mut conn, &node, &users).await
                    }
                    Control::Presence(users, false) => {
                        let mut pipe = redis::pipe();
                        for user in users {
                            online.remove(&user);
                            pipe.hdel(presence_key(user), &node).ignore();
                        }
                        pipe.query_async::<()>(&mut conn).await
                    }
                };
                if let Err(err) = result {
                    tracing::warn!(error = %err, "Redis subscription or presence change failed");
                }
            }
            _ = refresh.tick() => {
                let users: Vec<UserId> = online.iter().copied().collect();
                for chunk in users.chunks(1000) {
                    if let Err(err) = write_presence(&mut conn, &node, chunk).await {
                        tracing::warn!(error = %err, "refreshing presence failed");
                        break;
                    }
                }
            }
        }
    }
}

async fn write_presence(conn: &mut ConnectionManager, node: &str, users: &[UserId]) -> redis::RedisResult<()> {
    let expires = now_ms() + PRESENCE_TTL.as_millis() as i64;
    let mut pipe = redis::pipe();
    for &user in users {
        let key = presence_key(user);
        pipe.hset(&key, node, expires).ignore().pexpire(&key, PRESENCE_TTL.as_millis() as i64).ignore();
    }
    pipe.query_async(conn).await
}

#[async_trait]
impl Bus for RedisBus {
    fn publish(&self, channel: String, envelope: Bytes) {
        let len = envelope.len();
        if self.queued.fetch_add(len, Ordering::Relaxed) + len > PUBLISH_QUEUE_BYTES {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.metrics.redis_publish_failures.inc();
            return;
        }
        if self.publish.try_send((channel, envelope)).is_err() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.metrics.redis_publish_failures.inc();
        }
    }

    fn subscribe(&self, channel: String) {
        self.control(Control::Subscribe(channel));
    }

    fn unsubscribe(&self, channel: String) {
        self.control(Control::Unsubscribe(channel));
    }

    fn set_presence(&self, users: Vec<UserId>, online: bool) {
        self.control(Control::Presence(users, online));
    }

    async fn online(&self, users: &[UserId]) -> anyhow::Result<Vec<bool>> {
        let mut pipe = redis::pipe();
        for &user in users {
            pipe.hgetall(presence_key(user));
        }
        let mut conn = self.conn.clone();
        // Bounded whatever the connection manager is doing meanwhile (reconnecting, say).
        let entries: Vec<HashMap<String, i64>> =
            tokio::time::timeout(REDIS_CALL, pipe.query_async(&mut conn))
                .await
                .map_err(|_| anyhow::anyhow!("Redis did not answer within {REDIS_CALL:?}"))??;
        let now = now_ms();
        // A crashed node's entries stay in the hash until it expires, but their own expiry
        // times say they are stale.
        Ok(entries.into_iter().map(|nodes| nodes.values().any(|&expires| expires > now)).collect())
    }

    fn has_peers(&self) -> bool {
        true
    }

    async fn ready(&self) -> bool {
        let mut conn = self.conn.clone();
        tokio::time::timeout(REDIS_CALL, redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

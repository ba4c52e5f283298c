//! chatgate: a real-time chat gateway and IM backend.
//!
//! # Codemap
//!
//! A request travels down this list and its answer back up:
//!
//! - [`transport`]: the edges. [`transport::http`] serves every route as plain HTTP plus
//!   `/healthz` and the `/ws` upgrade; [`transport::ws`] runs one task per socket that reads
//!   frames, hands requests to the router and writes its outbound queue in batches.
//! - [`proto`]: the wire contract. Frame decoding and encoding (JSON text, MessagePack binary),
//!   request and reply shapes, pushes encoded once per format.
//! - [`router`]: the one router. Parses a route's request, calls the domain, shapes the reply.
//! - Domain: [`user`] (accounts, profiles, login log, reset, revocation) with [`auth`]
//!   (argon2id, tokens), [`group`] (membership, roles, info, mutes), [`message`] (every kind,
//!   idempotent sends, gapless seqs, history, sync, recall) and [`conversation`] (read
//!   positions, unread counts, pins, drafts). The domain knows nothing of sockets or wire
//!   types; it publishes [`events`] for live sessions.
//! - [`gateway`]: turns events into pushes (encoded once per format) and closes.
//! - [`registry`]: the live sessions of this node by user, each with a bounded outbound queue.
//! - [`store`]: persistence behind the [`store::Store`] trait, on SQLite or PostgreSQL.
//! - [`media`]: uploads streamed to an object store (`<data-dir>/files` or S3), their type
//!   sniffed and hash taken.
//! - [`notify`]: out-of-band delivery (reset secrets) to a webhook or an outbox file.
//! - [`config`] and [`error`]: the one configuration struct and the one error enum.
//!
//! [`run`] wires them together; `main.rs` only parses flags and waits for a signal.

pub mod auth;
pub mod bus;
pub mod config;
pub mod conversation;
pub mod error;
pub mod events;
pub mod gateway;
pub mod group;
pub mod limits;
pub mod media;
pub mod message;
pub mod metrics;
pub mod notify;
pub mod proto;
pub mod registry;
pub mod router;
pub mod store;
pub mod transport;
pub mod user;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

use crate::auth::{Passwords, Tokens};
use crate::bus::{Bus, LocalHub, RedisBus};
use crate::conversation::Conversations;
use crate::gateway::Gateway;
use crate::group::Groups;
use crate::limits::Limits;
use crate::media::Media;
use crate::message::Messages;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::registry::Registry;
use crate::router::Router;
use crate::store::Store;
use crate::store::sql::SqlStore;
use crate::user::Users;

/// How long shutdown waits for sessions to say goodbye.
const SESSION_DRAIN: Duration = Duration::from_secs(5);

/// State shared by every connection of a running server.
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// The one router.
    pub router: Router,
    /// Live sessions of this node.
    pub registry: Arc<Registry>,
    /// Delivery to sessions here and, through the bus, on other nodes.
    pub gateway: Arc<Gateway>,
    /// The database.
    pub store: Arc<dyn Store>,
    /// Exported metrics.
    pub metrics: Arc<Metrics>,
    /// Rate limits.
    pub limits: Arc<Limits>,
    /// Cancelled when the server starts shutting down; sessions close with 1001.
    pub shutdown: CancellationToken,
    /// The socket tasks, awaited at shutdown.
    pub sessions: TaskTracker,
    /// Open WebSocket connections, against `--max-connections`.
    pub connections: std::sync::atomic::AtomicUsize,
    /// Browser origins allowed to open sockets (`None`: any).
    pub allowed_origins: Option<Vec<String>>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// Serves on `listener` until `shutdown` completes, then closes every session with 1001,
/// lets in-flight HTTP requests finish, and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&config).await.context("opening the database")?);
    let metrics = Arc::new(Metrics::default());
    let node = config.node_id.clone().unwrap_or_else(|| {
        let mut id = [0u8; 6];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        hex::encode(id)
    });
    let key = auth::load_or_create_key(config.jwt_secret.as_deref(), &config.data_dir)?;
    let registry = Arc::new(Registry::default());
    let (bus, inbound): (Arc<dyn Bus>, _) = match &config.redis_url {
        Some(url) => {
            let (bus, inbound) = RedisBus::connect(url, &node, metrics.clone()).await.context("connecting to Redis")?;
            (Arc::new(bus), inbound)
        }
        None => {
            let (bus, inbound) = LocalHub::default().attach(&node);
            (Arc::new(bus), inbound)
        }
    };
    let gateway = Gateway::start(
        node.clone(),
        registry.clone(),
        bus,
        inbound,
        store.clone(),
        metrics.clone(),
        config.max_sessions_per_user,
    );
    let hash_concurrency =
        config.hash_concurrency.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let limits = Arc::new(Limits::new(&config));
    let content_limits =
        message::Limits { max_text: config.max_text_chars, recall_window_ms: config.recall_window_secs as i64 * 1000 };
    let messages = Arc::new(Messages::new(store.clone(), gateway.clone(), content_limits));
    let conversations = Conversations::new(store.clone(), gateway.clone());
    let (objects, part_bytes) = media::open_storage(config.media_url.as_deref(), &config.data_dir.join("files"))
        .context("opening media storage")?;
    let media = Media::new(store.clone(), objects, part_bytes, config.max_upload_bytes);
    let groups = Groups::new(store.clone(), gateway.clone(), messages.clone(), config.group_max_members);
    let users = Users::new(
        store.clone(),
        Passwords::new(hash_concurrency).context("starting hashing threads")?,
        Tokens::new(&key, &config.jwt_issuer, config.token_ttl_secs),
        Notifier::new(config.notify_webhook.as_deref(), config.data_dir.join("outbox.jsonl"))?,
        gateway.clone(),
        limits.clone(),
        config.public_url(),
    );
    let cancel = CancellationToken::new();
    let sweeper = {
        let (limits, cancel) = (limits.clone(), cancel.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = every.tick() => limits.sweep(),
                }
            }
        })
    };
    let app = Arc::new(App {
        router: Router::new(users, groups, messages, conversations, media, gateway.clone(), limits.clone()),
        limits,
        registry,
        gateway,
        store,
        metrics,
        shutdown: cancel.clone(),
        sessions: TaskTracker::new(),
        connections: Default::default(),
        allowed_origins: config.allowed_origins(),
        config,
    });

    tracing::info!(addr = %listener.local_addr()?, node, "chatgate serving");
    let service = transport::http::app(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            cancel.cancel();
        })
        .await?;
    sweeper.abort();
    app.sessions.close();
    if tokio::time::timeout(SESSION_DRAIN, app.sessions.wait()).await.is_err() {
        tracing::warn!("some sessions did not close in time");
    }
    tracing::info!("chatgate stopped");
    Ok(())
}

/// Installs the global tracing subscriber the configuration asks for.
pub fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        config::LogFormat::Text => builder.init(),
        config::LogFormat::Json => builder.json().init(),
    }
}

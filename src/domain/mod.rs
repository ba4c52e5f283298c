//! The domain: the rules of users, groups, messages, conversations and media, over the store.
//!
//! It knows no wire type, socket or serde wire struct. It reaches the world above only through
//! the traits in [`ports`] (events for live sessions, presence, out-of-band notices), which the
//! delivery layer implements and [`Domain::new`] is handed.

pub mod auth;
pub mod budget;
pub mod content;
pub mod conversation;
pub mod feed;
pub mod group;
pub mod limits;
pub mod links;
pub mod media;
pub mod message;
pub mod ports;
pub mod receipts;
pub mod text;
pub mod user;

use std::sync::Arc;

use anyhow::Context;

pub use conversation::Conversations;
pub use group::Groups;
pub use limits::Limits;
pub use media::{Download, Media};
pub use message::{ContentLimits, Known, Made, Messages, Version};
pub use ports::{Events, Notices, Presence};
pub use receipts::Receipts;
pub use user::Users;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

/// Every domain service, wired once at start-up.
pub struct Domain {
    /// Accounts, tokens, profiles.
    pub users: Users,
    /// Groups and membership.
    pub groups: Groups,
    /// Messages.
    pub messages: Arc<Messages>,
    /// Each participant's conversations.
    pub conversations: Conversations,
    /// Uploads and downloads.
    pub media: Media,
    /// Who is online.
    pub presence: Arc<dyn Presence>,
    /// Rate limits.
    pub limits: Arc<Limits>,
    store: Arc<dyn Store>,
}

/// What the domain is handed from the layers above.
pub struct Outlets {
    /// Where events go.
    pub events: Arc<dyn Events>,
    /// Who is online.
    pub presence: Arc<dyn Presence>,
    /// Where out-of-band notices go.
    pub notices: Arc<dyn Notices>,
    /// The node's metrics.
    pub metrics: Arc<Metrics>,
}

impl Domain {
    /// Builds every service from the configuration.
    pub fn new(config: &Config, store: Arc<dyn Store>, outlets: Outlets) -> anyhow::Result<Domain> {
        let Outlets { events, presence, notices, metrics } = outlets;
        let key = auth::load_or_create_key(config.jwt_secret.as_deref(), &config.data_dir)?;
        let hash_threads =
            config.hash_concurrency.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let limits = Arc::new(Limits::new(config));
        let content = ContentLimits {
            max_text: config.max_text_chars,
            recall_window_ms: config.recall_window_secs as i64 * 1000,
            edit_window_ms: config.edit_window_secs as i64 * 1000,
        };
        let messages = Arc::new(Messages::new(store.clone(), events.clone(), content));
        let (objects, part_bytes) = media::open_storage(config.media_url.as_deref(), &config.data_dir.join("files"))
            .context("opening media storage")?;
        let users = Users::new(
            store.clone(),
            auth::Passwords::new(hash_threads, metrics).context("starting hashing threads")?,
            auth::Tokens::new(&key, &config.jwt_issuer, config.token_ttl_secs),
            notices,
            events.clone(),
            limits.clone(),
            config.public_url(),
        );
        Ok(Domain {
            users,
            groups: Groups::new(store.clone(), events.clone(), messages.clone(), config.group_max_members),
            conversations: Conversations::new(store.clone(), events.clone(), Receipts::new(store.clone(), events)),
            media: Media::new(
                store.clone(),
                objects,
                part_bytes,
                (config.max_upload_bytes, config.storage_quota_bytes),
                links::LinkSigner::new(&key, config.file_link_secs),
            ),
            messages,
            presence,
            limits,
            store,
        })
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }
}

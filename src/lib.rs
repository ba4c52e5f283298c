#![warn(missing_docs)]
//! chatgate: a real-time chat gateway and IM backend.
//!
//! # Layers
//!
//! Each folder is a layer, and a layer imports only from those below it: [`model`] <
//! [`store`] < [`domain`] < [`api`] < [`delivery`] < [`net`] (README's codemap gives each
//! layer's contents and invariants; `src/layers.rs` checks every import against its table of
//! allowed edges). [`config`], [`error`] and [`metrics`] are shared by every layer and import
//! none. [`run`] wires the layers together; `main.rs` only parses flags and waits for a signal.

pub mod api;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod model;
pub mod net;
pub mod store;

#[cfg(test)]
mod layers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
pub use model::now_ms;

use crate::delivery::bus::{Bus, LocalHub, RedisBus};
use crate::delivery::{Gateway, Notifier, Registry};
use crate::domain::{Domain, Outlets};
use crate::metrics::Metrics;
use crate::net::App;
use crate::store::Store;
use crate::store::sql::SqlStore;

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
    let gateway = Gateway::start(node.clone(), registry.clone(), bus, inbound, store.clone(), metrics.clone(), &config);
    let notices = Arc::new(Notifier::new(config.notify_webhook.as_deref(), config.data_dir.join("outbox.jsonl"))?);
    let outlets = Outlets { events: gateway.clone(), presence: gateway.clone(), notices, metrics: metrics.clone() };
    let domain = Domain::new(&config, store, outlets)?;
    let sweeper = sweep_limits(&domain);
    let app = Arc::new(App {
        api: api::Api::new(domain),
        registry,
        gateway,
        metrics,
        shutdown: CancellationToken::new(),
        sessions: TaskTracker::new(),
        connections: Default::default(),
        allowed_origins: config.allowed_origins(),
        tarpit: tokio::sync::Semaphore::new(net::http::TARPIT_SLOTS),
        config,
    });
    tracing::info!(addr = %listener.local_addr()?, node, "chatgate serving");
    let served = net::serve(listener, app, shutdown).await;
    sweeper.abort();
    tracing::info!("chatgate stopped");
    served
}

/// Sweeps idle rate-limit keys every minute, so that cycling names or addresses cannot grow
/// memory without bound.
fn sweep_limits(domain: &Domain) -> tokio::task::JoinHandle<()> {
    let limits = domain.limits.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            limits.sweep();
        }
    })
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

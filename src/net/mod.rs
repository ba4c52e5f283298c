//! The network edge: HTTP ([`http`], with the streaming [`files`] routes and the static [`web`]
//! client), the WebSocket ([`ws`]), the [`router`] that puts them on their paths, and serving
//! them on a listener until shutdown.
//!
//! Transports decode frames, say who is calling, hand the call to the [`Api`] and encode its
//! answer. They know no domain rule and no store.

pub mod files;
pub mod http;
pub mod router;
pub mod web;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::Api;
use crate::config::Config;
use crate::delivery::{Gateway, Registry};
use crate::metrics::Metrics;

/// How long shutdown waits for sessions to say goodbye.
const SESSION_DRAIN: Duration = Duration::from_secs(5);

/// State shared by every connection of a running server.
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// The routes.
    pub api: Api,
    /// Live sessions of this node.
    pub registry: Arc<Registry>,
    /// Delivery to sessions here and, through the bus, on other nodes.
    pub gateway: Arc<Gateway>,
    /// Exported metrics.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server starts shutting down; sessions close with 1001.
    pub shutdown: CancellationToken,
    /// The socket tasks, awaited at shutdown.
    pub sessions: TaskTracker,
    /// Open WebSocket connections, against `--max-connections`.
    pub connections: AtomicUsize,
    /// Browser origins allowed to open sockets (`None`: any).
    pub allowed_origins: Option<Vec<String>>,
}

/// Serves `app` on `listener` until `shutdown` completes, then closes every session with 1001,
/// lets in-flight HTTP requests finish, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cancel = app.shutdown.clone();
    let service = router::app(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            cancel.cancel();
        })
        .await?;
    app.sessions.close();
    if tokio::time::timeout(SESSION_DRAIN, app.sessions.wait()).await.is_err() {
        tracing::warn!("some sessions did not close in time");
    }
    Ok(())
}

/// The bearer token of an `Authorization` header, if any.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_owned())
}

/// The client's user agent, or empty.
fn user_agent(headers: &HeaderMap) -> String {
    headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

//! The router: every path this node serves over HTTP, and the layers around them.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::get;

use super::{App, files, http, web, ws};

/// The HTTP application.
pub fn app(state: Arc<App>) -> axum::Router {
    let limit = state.config.max_frame_bytes;
    axum::Router::new()
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(|State(app): State<Arc<App>>| async move { app.metrics.render() }))
        .route("/ws", get(ws::upgrade))
        // Uploads stream to storage, so the frame limit does not apply; the media service
        // enforces its own.
        .route("/file/upload", axum::routing::post(files::upload).layer(DefaultBodyLimit::disable()))
        // `/file/link` is a table route; naming it keeps it from matching `/file/{id}`.
        .route("/file/link", axum::routing::post(http::route))
        .route("/file/{id}", get(files::download))
        .merge(web::routes())
        .fallback(http::route)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

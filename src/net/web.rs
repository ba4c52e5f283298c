//! The web client and the JavaScript SDK, embedded in the binary and served as static files:
//! `/` (the client), `/app.js` with its modules (`/actions.js`, `/compose.js`, `/dialogs.js`),
//! `/style.css`, the page a password-reset link opens (`/reset-password`, `/reset.js`), and
//! `/sdk/chatgate.js` with its content builders (`/sdk/content.js`), MessagePack codec and
//! TypeScript declarations.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

/// What the page may load and where it may connect: this server only (and the blob: URLs of
/// pictures, videos and audio being sent, which the page reads the size and duration of).
const POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self' ws: wss:; \
                      style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// An HTML page, under the content security policy.
fn page(body: &'static str) -> Response {
    let mut page = asset(body, "text/html; charset=utf-8");
    page.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    page
}

/// JavaScript.
const JS: &str = "text/javascript; charset=utf-8";

/// Serves `body` as `content_type`.
fn file<S: Clone + Send + Sync + 'static>(body: &'static str, content_type: &'static str) -> MethodRouter<S> {
    get(move || async move { asset(body, content_type) })
}

/// The static routes, merged into the HTTP application.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { page(include_str!("../../web/index.html")) }))
        .route("/reset-password", get(|| async { page(include_str!("../../web/reset.html")) }))
        .route("/reset.js", file(include_str!("../../web/reset.js"), JS))
        .route("/app.js", file(include_str!("../../web/app.js"), JS))
        .route("/actions.js", file(include_str!("../../web/actions.js"), JS))
        .route("/compose.js", file(include_str!("../../web/compose.js"), JS))
        .route("/messages.js", file(include_str!("../../web/messages.js"), JS))
        .route("/mention.js", file(include_str!("../../web/mention.js"), JS))
        .route("/notify.js", file(include_str!("../../web/notify.js"), JS))
        .route("/upload.js", file(include_str!("../../web/upload.js"), JS))
        .route("/outbox.js", file(include_str!("../../web/outbox.js"), JS))
        .route("/text.js", file(include_str!("../../web/text.js"), JS))
        .route("/dialogs.js", file(include_str!("../../web/dialogs.js"), JS))
        .route("/style.css", file(include_str!("../../web/style.css"), "text/css; charset=utf-8"))
        .route("/sdk/chatgate.js", file(include_str!("../../sdk/js/chatgate.js"), JS))
        .route("/sdk/content.js", file(include_str!("../../sdk/js/content.js"), JS))
        .route("/sdk/msgpack.js", file(include_str!("../../sdk/js/msgpack.js"), JS))
        .route("/sdk/chatgate.d.ts", file(include_str!("../../sdk/js/chatgate.d.ts"), "text/plain; charset=utf-8"))
}

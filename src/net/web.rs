//! The web client and the JavaScript SDK, embedded in the binary and served as static files:
//! `/` (the client), `/app.js` with its modules `/compose.js` and `/dialogs.js`, `/style.css`,
//! the page a password-reset link opens (`/reset-password`, `/reset.js`), and `/sdk/chatgate.js` with its content builders
//! (`/sdk/content.js`), MessagePack codec and TypeScript declarations.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What the page may load and where it may connect: this server only (and the blob: URLs of
/// pictures being sent).
const POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:; \
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

/// The static routes, merged into the HTTP application.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { page(include_str!("../../web/index.html")) }))
        .route("/reset-password", get(|| async { page(include_str!("../../web/reset.html")) }))
        .route(
            "/reset.js",
            get(|| async { asset(include_str!("../../web/reset.js"), "text/javascript; charset=utf-8") }),
        )
        .route("/app.js", get(|| async { asset(include_str!("../../web/app.js"), "text/javascript; charset=utf-8") }))
        .route(
            "/compose.js",
            get(|| async { asset(include_str!("../../web/compose.js"), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dialogs.js",
            get(|| async { asset(include_str!("../../web/dialogs.js"), "text/javascript; charset=utf-8") }),
        )
        .route("/style.css", get(|| async { asset(include_str!("../../web/style.css"), "text/css; charset=utf-8") }))
        .route(
            "/sdk/chatgate.js",
            get(|| async { asset(include_str!("../../sdk/js/chatgate.js"), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/sdk/content.js",
            get(|| async { asset(include_str!("../../sdk/js/content.js"), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/sdk/msgpack.js",
            get(|| async { asset(include_str!("../../sdk/js/msgpack.js"), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/sdk/chatgate.d.ts",
            get(|| async { asset(include_str!("../../sdk/js/chatgate.d.ts"), "text/plain; charset=utf-8") }),
        )
}

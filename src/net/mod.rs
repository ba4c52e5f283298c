//! Transports: HTTP and the WebSocket. They decode frames, authenticate, call the one
//! [`Router`](crate::router::Router) and encode its answer. They know nothing of the domain.

pub mod http;
pub mod web;
pub mod ws;

use axum::http::HeaderMap;

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

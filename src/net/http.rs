//! The HTTP mirror of every route and `/readyz`, with the reply encoding the other HTTP
//! handlers share; [`super::router`] puts them on their paths.
//!
//! POST takes a JSON body (or MessagePack with `Content-Type: application/msgpack`, answered in
//! kind); GET takes query parameters. The token comes in `Authorization: Bearer` or as the
//! `token` parameter. The body is the same object a socket reply carries, minus `type` and `id`,
//! with the status the error catalogue gives.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::proxy::Peer;
use super::{App, bearer, client_ip, user_agent};
use crate::api::frame::{self, Format, Payload, Reply};
use crate::api::{Auth, Caller, Method, route_label};
use crate::error::Error;
use crate::model::{Origin, Transport};

/// Encodes a reply (or an error) as an HTTP response in `format`.
pub fn respond(format: Format, result: Result<Value, Error>) -> Response {
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(Error::Internal(err)) => {
            tracing::error!(error = ?err, "request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Err(err) => StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let body = frame::encode(&Reply::new(None, false, result), format);
    let content_type = match format {
        Format::Json => "application/json",
        Format::MsgPack => "application/msgpack",
    };
    let body = match body {
        Payload::Text(t) => Bytes::from(t),
        Payload::Binary(b) => b,
    };
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
}

pub(super) async fn route(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let format = if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/msgpack") || ct.starts_with("application/x-msgpack"))
    {
        Format::MsgPack
    } else {
        Format::Json
    };
    let (method, data) = match method {
        HttpMethod::GET => (Method::Get, query_data(uri.query())),
        HttpMethod::POST => (Method::Post, body_data(&body, format)),
        _ => return respond(format, Err(Error::MethodNotAllowed)),
    };
    let data = match data {
        Ok(data) => data,
        Err(err) => return respond(format, Err(err)),
    };
    if method == Method::Get && data.contains_key("token") {
        return respond(format, Err(super::token_in_url()));
    }
    let auth = match bearer(&headers) {
        Some(token) => Auth::Token(token),
        None => Auth::Anonymous,
    };
    let caller = Caller {
        auth,
        origin: Origin {
            ip: client_ip(&app, peer, &headers).to_string(),
            user_agent: user_agent(&headers),
            transport: Transport::Http,
        },
        turn: None,
    };
    let started = std::time::Instant::now();
    let mut result = app.api.dispatch(&caller, method, uri.path(), Value::Object(data)).await;
    let failure = result.as_ref().err().map(|e| (e.status(), e.family()));
    app.metrics.observe(route_label(uri.path()), started.elapsed().as_secs_f64(), failure);
    if let Err(Error::RateLimited { retry_after_ms }) = &mut result {
        let held = hold_refusal(&app, *retry_after_ms).await;
        *retry_after_ms = retry_after_ms.saturating_sub(held).max(1);
    }
    respond(format, result.map(|outcome| outcome.data))
}

/// Longest a refused request's answer is held back.
const TARPIT_MAX_MS: u64 = 250;

/// Refusals held back at once at most; past it they are answered at once.
pub const TARPIT_SLOTS: usize = 4096;

/// Holds a `rate_limited` answer for the wait it announces (at most [`TARPIT_MAX_MS`]), while
/// a place is free, and answers how long it held it (the answer then announces only the rest).
/// A client that would retry at once, as a flood does, sends no faster than its limit lets
/// through anyway, and its connection costs no CPU while it waits; one that honours
/// `retryAfter` loses nothing. So a closed-loop flood of refusals can't take the CPU that
/// others' logins and messages need.
async fn hold_refusal(app: &App, retry_after_ms: u64) -> u64 {
    let Ok(_place) = app.tarpit.try_acquire() else { return 0 };
    let held = retry_after_ms.min(TARPIT_MAX_MS);
    tokio::time::sleep(std::time::Duration::from_millis(held)).await;
    held
}

/// The query string's parameters as a `data` object.
pub(super) fn query_data(query: Option<&str>) -> Result<Map<String, Value>, Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| Error::MalformedFrame(format!("query string: {e}")))?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

fn body_data(body: &[u8], format: Format) -> Result<Map<String, Value>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = frame::decode_document(body, format).map_err(Error::MalformedFrame)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Error::MalformedFrame("the body must be an object".into())),
    }
}

/// `GET /readyz`: whether this node can serve, for the load balancer: its database answers and
/// it is not shutting down. A bus (Redis) outage does not count: messages are still stored and
/// acknowledged, and delivery catches up by sync, so a Redis blip never takes every node out
/// of the balancer at once. It shows in `/healthz` and in the `bus_up` gauge instead.
pub(super) async fn readyz(State(app): State<Arc<App>>) -> Response {
    let (database, bus) = tokio::join!(app.api.ready(), app.gateway.ready());
    let draining = app.shutdown.is_cancelled();
    let status = if database && !draining { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({"database": database, "bus": bus, "draining": draining, "node": app.gateway.node()});
    (status, axum::Json(body)).into_response()
}

/// `GET /healthz`: 200 while the process serves HTTP at all, with what it depends on:
/// `status` is `degraded` while the database or the bus does not answer.
pub(super) async fn healthz(State(app): State<Arc<App>>) -> Response {
    let (database, bus) = tokio::join!(app.api.ready(), app.gateway.ready());
    let status = if database && bus { "ok" } else { "degraded" };
    let body = serde_json::json!({"status": status, "database": database, "bus": bus, "node": app.gateway.node()});
    (StatusCode::OK, axum::Json(body)).into_response()
}

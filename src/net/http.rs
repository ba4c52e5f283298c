//! The HTTP mirror of every route, plus `/healthz`, `/readyz`, `/metrics`, the `/ws` upgrade and
//! the web client's files.
//!
//! POST takes a JSON body (or MessagePack with `Content-Type: application/msgpack`, answered in
//! kind); GET takes query parameters. The token comes in `Authorization: Bearer` or as the
//! `token` parameter. The body is the same object a socket reply carries, minus `type` and `id`,
//! with the status the error catalogue gives.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value};

use super::{bearer, user_agent};
use crate::App;
use crate::error::Error;
use crate::proto::{self, Format, Payload, Reply};
use crate::router::{Auth, Caller, Method};
use crate::user::{Origin, Transport};

/// The HTTP application.
pub fn app(state: Arc<App>) -> axum::Router {
    let limit = state.config.max_frame_bytes;
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|State(app): State<Arc<App>>| async move { app.metrics.render() }))
        .route("/ws", get(super::ws::upgrade))
        // Uploads stream to storage, so the frame limit does not apply; the media service
        // enforces its own.
        .route("/file/upload", axum::routing::post(upload).layer(DefaultBodyLimit::disable()))
        .route("/file/{id}", get(download))
        .merge(super::web::routes())
        .fallback(route)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

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
    let body = proto::encode(&Reply::new(None, false, result), format);
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

async fn route(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    let mut data = match data {
        Ok(data) => data,
        Err(err) => return respond(format, Err(err)),
    };
    let param_token = data.remove("token").and_then(|t| t.as_str().map(str::to_owned));
    let auth = match bearer(&headers).or(param_token) {
        Some(token) => Auth::Token(token),
        None => Auth::Anonymous,
    };
    let caller = Caller {
        auth,
        origin: Origin { ip: peer.ip().to_string(), user_agent: user_agent(&headers), transport: Transport::Http },
    };
    let started = std::time::Instant::now();
    let result = app.router.dispatch(&caller, method, uri.path(), Value::Object(data)).await;
    app.metrics.observe(super::ws::route_label(uri.path(), &result), started.elapsed().as_secs_f64());
    respond(format, result.map(|outcome| outcome.data))
}

fn query_data(query: Option<&str>) -> Result<Map<String, Value>, Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| Error::MalformedFrame(format!("query string: {e}")))?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

fn body_data(body: &[u8], format: Format) -> Result<Map<String, Value>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = match format {
        Format::Json => serde_json::from_slice(body).map_err(|e| Error::MalformedFrame(e.to_string()))?,
        Format::MsgPack => rmp_serde::from_slice(body).map_err(|e| Error::MalformedFrame(e.to_string()))?,
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Error::MalformedFrame("the body must be an object".into())),
    }
}

/// Who calls, from the `Authorization` header or a `token` query parameter (what an `<img>`
/// can carry).
fn caller_of(peer: SocketAddr, headers: &HeaderMap, uri: &Uri) -> Caller {
    let param =
        query_data(uri.query()).ok().and_then(|mut q| q.remove("token")).and_then(|t| t.as_str().map(str::to_owned));
    Caller {
        auth: bearer(headers).or(param).map_or(Auth::Anonymous, Auth::Token),
        origin: Origin { ip: peer.ip().to_string(), user_agent: user_agent(headers), transport: Transport::Http },
    }
}

/// `POST /file/upload`: a raw body with its type, or the first file of a multipart form.
async fn upload(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request) -> Response {
    let caller = caller_of(peer, request.headers(), request.uri());
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    let result = if is_multipart {
        match Multipart::from_request(request, &app).await {
            Ok(mut form) => loop {
                match form.next_field().await {
                    Ok(Some(field)) if field.file_name().is_some() || field.name() == Some("file") => {
                        break app.router.upload(&caller, field).await;
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => break Err(Error::validation("file", "the form has no file field")),
                    Err(e) => break Err(Error::MalformedFrame(format!("multipart: {e}"))),
                }
            },
            Err(e) => Err(Error::MalformedFrame(format!("multipart: {e}"))),
        }
    } else {
        app.router.upload(&caller, request.into_body().into_data_stream()).await
    };
    respond(Format::Json, result)
}

/// `GET /file/{fileId}`: the bytes, with their sniffed type, an `ETag` and one-range `Range`
/// support (video seeking).
async fn download(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers();
    let caller = caller_of(peer, headers, request.uri());
    let meta = match app.router.file(&caller, &id).await {
        Ok(meta) => meta,
        Err(err) => return respond(Format::Json, Err(err)),
    };
    let size = meta.size as u64;
    let etag = format!("\"{}\"", meta.sha256);
    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, "private, max-age=31536000, immutable");
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return response.status(StatusCode::NOT_MODIFIED).body(Body::empty()).unwrap_or_else(|_| fallback());
    }
    // A Range that does not parse is ignored, as RFC 9110 says; one that parses but fits no byte
    // of the file is refused. Several ranges would need a multipart body: the whole file answers.
    let range =
        match headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(http_range_header::parse_range_header) {
            Some(Ok(parsed)) => match parsed.validate(size) {
                Ok(ranges) if ranges.len() == 1 => Some(*ranges[0].start()..ranges[0].end() + 1),
                Ok(_) => None,
                Err(_) => {
                    return response
                        .status(StatusCode::RANGE_NOT_SATISFIABLE)
                        .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                        .body(Body::empty())
                        .unwrap_or_else(|_| fallback());
                }
            },
            _ => None,
        };
    let mime = meta.mime.clone();
    let download = match app.router.download(meta, range).await {
        Ok(download) => download,
        Err(err) => return respond(Format::Json, Err(err)),
    };
    let served = download.range.clone();
    if served.start > 0 || served.end < size {
        response = response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", served.start, served.end - 1));
    }
    // Only media renders inline: anything else (HTML, SVG, scripts) would run in our origin.
    if !["image/", "video/", "audio/"].iter().any(|p| mime.starts_with(p)) || mime == "image/svg+xml" {
        response = response.header(header::CONTENT_DISPOSITION, "attachment");
    }
    response
        .header(header::CONTENT_TYPE, mime)
        .header(header::CONTENT_LENGTH, served.end - served.start)
        .body(Body::from_stream(download.body))
        .unwrap_or_else(|_| fallback())
}

/// What a response that cannot be built becomes.
fn fallback() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// `GET /readyz`: 200 when the database, and the bus if there is one, answer.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let database = app.store.ping().await.is_ok();
    let bus = app.gateway.ready().await;
    let status = if database && bus { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(serde_json::json!({"database": database, "bus": bus, "node": app.gateway.node()})))
        .into_response()
}

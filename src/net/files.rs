//! The file routes, which stream: uploads into storage, downloads with ranges.
//!
//! A download is authorized by a signed link (`?exp=…&sig=…`, from `/file/link` or an upload's
//! reply), which is what an `<img>` carries, or by `Authorization: Bearer` and the caller's
//! right to read the file. Files are served sandboxed, and only media inline.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::http::{query_data, respond};
use super::proxy::Peer;
use super::{App, bearer, client_ip, user_agent};
use crate::api::frame::Format;
use crate::api::{Auth, Caller};
use crate::error::Error;
use crate::model::{FileMeta, Origin, Transport};

/// Who calls, from the `Authorization` header: never from the URL.
fn caller_of(app: &App, peer: Peer, headers: &HeaderMap) -> Caller {
    Caller {
        auth: bearer(headers).map_or(Auth::Anonymous, Auth::Token),
        origin: Origin {
            ip: client_ip(app, peer, headers).to_string(),
            user_agent: user_agent(headers),
            transport: Transport::Http,
        },
        turn: None,
    }
}

/// How a download proves it may read the file: a signed link's `exp` and `sig`, or else the
/// caller's token. A `?token=` is refused.
async fn readable(app: &App, caller: &Caller, id: String, uri: &Uri) -> Result<FileMeta, Error> {
    let mut query = query_data(uri.query())?;
    if query.contains_key("token") {
        return Err(super::token_in_url());
    }
    let mut take = |name: &str| query.remove(name).and_then(|v| v.as_str().map(str::to_owned));
    match (take("exp"), take("sig")) {
        (Some(exp), Some(sig)) => app.api.file_by_link(caller, id, &exp, &sig).await,
        (None, None) => app.api.file(caller, id).await,
        _ => Err(Error::LinkInvalid),
    }
}

/// `POST /file/upload`: a raw body with its type, or the first file of a multipart form.
pub(super) async fn upload(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: Request,
) -> Response {
    let caller = caller_of(&app, peer, request.headers());
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
                        break app.api.upload(&caller, field).await;
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => break Err(Error::validation("file", "the form has no file field")),
                    Err(e) => break Err(Error::MalformedFrame(format!("multipart: {e}"))),
                }
            },
            Err(e) => Err(Error::MalformedFrame(format!("multipart: {e}"))),
        }
    } else {
        app.api.upload(&caller, request.into_body().into_data_stream()).await
    };
    respond(Format::Json, result)
}

/// `GET /file/{fileId}`: the bytes, with their sniffed type, an `ETag` and one-range `Range`
/// support (video seeking).
pub(super) async fn download(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers();
    let caller = caller_of(&app, peer, headers);
    let meta = match readable(&app, &caller, id, request.uri()).await {
        Ok(meta) => meta,
        Err(err) => return respond(Format::Json, Err(err)),
    };
    let size = meta.size as u64;
    let etag = format!("\"{}\"", meta.sha256);
    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        // A user's file is never a page of ours: opened directly, it runs no script, submits no
        // form and reaches no cookie of this origin.
        .header(header::CONTENT_SECURITY_POLICY, "sandbox")
        .header(header::REFERRER_POLICY, "no-referrer")
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
    let download = match app.api.download(meta, range).await {
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

//! The network edge: HTTP ([`http`], with the streaming [`files`] routes and the static [`web`]
//! client), the WebSocket ([`ws`]), the [`router`] that puts them on their paths, and serving
//! them on a listener until shutdown, through [`proxy`], which reads the PROXY v2 header of
//! trusted load balancers.
//!
//! Transports decode frames, say who is calling, hand the call to the [`Api`] and encode its
//! answer. They know no domain rule and no store.

pub mod files;
pub mod http;
pub mod proxy;
pub mod router;
pub mod web;
pub mod ws;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
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
use proxy::{Peer, ProxyListener};

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
    /// Places for HTTP refusals held back before they are answered ([`http::TARPIT_SLOTS`]).
    pub tarpit: tokio::sync::Semaphore,
}

/// Serves `app` on `listener` until `shutdown` completes, then closes every session with 1001,
/// lets in-flight HTTP requests finish, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cancel = app.shutdown.clone();
    let listener = ProxyListener::new(listener, app.config.trusted_proxies.clone())?;
    let service = router::app(app.clone()).into_make_service_with_connect_info::<Peer>();
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

/// The answer to a long-lived token in a URL, where it would be copied, logged and cached:
/// refused, rather than ignored, so that the caller learns what to do instead.
fn token_in_url() -> crate::error::Error {
    crate::error::Error::validation(
        "token",
        "tokens are not accepted in URLs: send Authorization: Bearer, open sockets with a /user/ticket \
         and show files by /file/link",
    )
}

/// The client's address, for per-address limits and the login log.
///
/// It starts from the [`Peer`]: the TCP peer, or the client a trusted proxy named in a PROXY
/// v2 header, which then stands exactly where the TCP peer would. If that address is not a
/// trusted proxy (`--trusted-proxy`), it is the answer, whatever `Forwarded` or
/// `X-Forwarded-For` say. If it is, the answer is the rightmost address of `Forwarded` (or else
/// `X-Forwarded-For`) that is not itself a trusted proxy. Anything a client wrote into those
/// headers sits left of what the proxies appended, so it is never reached. So a client named
/// by a PROXY header is the client, and its headers count only when it is itself a trusted
/// proxy (a balancer behind another).
fn client_ip(app: &App, peer: Peer, headers: &HeaderMap) -> IpAddr {
    let trusted = |ip: &IpAddr| proxy::trusts(&app.config.trusted_proxies, *ip);
    let peer = peer.0.ip().to_canonical();
    if !trusted(&peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if trusted(ip) => continue,
            Some(ip) => return *ip,
            // An entry that does not parse (`unknown`, an obfuscated name): nothing left of it
            // can be trusted, and the last proxy's view is the best there is.
            None => break,
        }
    }
    peer
}

/// The addresses the proxies recorded, oldest first: `Forwarded`'s `for=` values if the header
/// is there, else `X-Forwarded-For`'s, across every line of the header. `None` for an entry
/// that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let lines = |name: &str| -> Vec<String> {
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    };
    let forwarded = lines("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    key.trim().eq_ignore_ascii_case("for").then(|| parse_hop(value))
                })
            })
            .collect();
    }
    lines("x-forwarded-for").iter().flat_map(|line| line.split(',')).map(parse_hop).collect()
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"` or `2001:db8::1`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    text.strip_prefix('[')?.split(']').next()?.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The client's user agent, or empty.
fn user_agent(headers: &HeaderMap) -> String {
    headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn chain(pairs: &[(&'static str, &'static str)]) -> Vec<Option<IpAddr>> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        forwarded_chain(&headers)
    }

    #[test]
    fn forwarded_chains_are_read_in_order() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            chain(&[("x-forwarded-for", "1.2.3.4, 10.0.0.1"), ("x-forwarded-for", "127.0.0.2")]),
            vec![ip("1.2.3.4"), ip("10.0.0.1"), ip("127.0.0.2")]
        );
        assert_eq!(
            chain(&[("forwarded", r#"for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711""#)]),
            vec![ip("192.0.2.60"), ip("2001:db8:cafe::17")]
        );
        assert_eq!(chain(&[("x-forwarded-for", "unknown, 198.51.100.7:1234")]), vec![None, ip("198.51.100.7")]);
        assert_eq!(chain(&[("forwarded", "for=_hidden"), ("x-forwarded-for", "1.2.3.4")]), vec![None]);
    }
}

//! Idle-session memory: holds N authenticated idle WebSocket sessions on one chatgate node and
//! reports the server's resident memory per session.
//!
//! Run: `cargo bench --bench idle` (N = 10000), or `cargo bench --bench idle -- 18000`.
//! The server's RSS is read before the sessions open (after the users exist and the server has
//! warmed up) and again once all N are open and have each answered a request; the difference
//! over N is the figure.

mod common;

use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde_json::json;

/// Sessions share users, like a user's several devices; registering is deliberately slow.
const SESSIONS_PER_USER: usize = 50;
/// Connections being opened at once.
const CONNECT_CONCURRENCY: usize = 200;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let server = common::Server::start(&[]).await;
    let users = server.users("idle", n.div_ceil(SESSIONS_PER_USER)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_kib();

    let opened = Instant::now();
    let sockets: Vec<_> = stream::iter(0..n)
        .map(|i| {
            let server = &server;
            let token = users[i % users.len()].1.clone();
            async move {
                let mut ws = server.socket(&token).await;
                // One request proves the session is authenticated and fully set up.
                let reply = common::request(&mut ws, 1, "/user/info", json!({})).await;
                assert_eq!(reply["code"], 0, "{reply}");
                ws
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    let open_secs = opened.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib();
    let per_socket = (after.saturating_sub(before) as f64 * 1024.0) / n as f64;

    println!("sessions            {n} authenticated, {} users, {SESSIONS_PER_USER} sessions each", users.len());
    println!("server RSS before   {before} KiB");
    println!("server RSS after    {after} KiB");
    println!("per session         {per_socket:.0} bytes ({:.2} KiB)", per_socket / 1024.0);
    println!("open + auth + 1 req {:.0} sessions/s", n as f64 / open_secs);
    println!(
        "{}",
        json!({"bench": "idle", "sessions": n, "rss_before_kib": before, "rss_after_kib": after,
               "bytes_per_session": per_socket.round(), "sessions_per_sec": (n as f64 / open_secs).round()})
    );
    drop(sockets);
}

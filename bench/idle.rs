//! Idle-session memory: holds N authenticated idle WebSocket sessions on one chatgate node and
//! reports the server's resident memory per session.
//!
//! Run: `cargo bench --bench idle` (N = 10000), or `cargo bench --bench idle -- 18000`.
//! The server is the release `chatgate` binary, started here on a free loopback port with a
//! temporary SQLite data dir. Its RSS is read from /proc before the sessions open (after the
//! users exist and the server has warmed up) and again once all N are open and have answered a
//! request; the difference over N is the figure.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Sessions share users, like a user's several devices; registering is deliberately slow.
const SESSIONS_PER_USER: usize = 50;
/// Connections being opened at once.
const CONNECT_CONCURRENCY: usize = 200;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmRSS")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_chatgate"))
            .args(["--listen", &addr, "--data-dir", dir.path().to_str().unwrap(), "--log", "warn"])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting chatgate"),
    );
    let pid = server.0.id();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let started = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let users = n.div_ceil(SESSIONS_PER_USER);
    let tokens: Vec<String> = stream::iter(0..users)
        .map(|i| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let body: Value = http
                    .post(format!("{base}/user/register"))
                    .json(&json!({"username": format!("idle{i}"), "password": "idle-bench-password"}))
                    .send()
                    .await
                    .expect("register")
                    .json()
                    .await
                    .expect("register body");
                body["data"]["token"].as_str().expect("token").to_owned()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid);

    let client_config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let opened = Instant::now();
    let sockets: Vec<_> = stream::iter(0..n)
        .map(|i| {
            let token = tokens[i % users].clone();
            let url = format!("ws://{addr}/ws");
            async move {
                let mut request = url.into_client_request().unwrap();
                request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
                let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(client_config), false)
                    .await
                    .expect("connect");
                // One request proves the session is authenticated and fully set up.
                let frame = json!({"type": "req", "id": 1, "route": "/user/info"}).to_string();
                ws.send(Message::Text(frame.into())).await.expect("send");
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) => {
                            let reply: Value = serde_json::from_str(&t).expect("reply");
                            assert_eq!(reply["code"], 0, "{reply}");
                            break;
                        }
                        Some(Ok(_)) => continue,
                        other => panic!("session failed: {other:?}"),
                    }
                }
                ws
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    let open_secs = opened.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let per_socket = (after.saturating_sub(before) as f64 * 1024.0) / n as f64;

    println!("sessions            {n} authenticated, {users} users, {SESSIONS_PER_USER} sessions each");
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

//! Helpers shared by the benchmarks: a release `chatgate` in its own process, users, sockets.

#![allow(dead_code, reason = "each benchmark uses a different subset")]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A chatgate server process, killed on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the release binary with `extra` flags, pinned to CPU 0 when taskset exists.
    pub async fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let bin = env!("CARGO_BIN_EXE_chatgate");
        let mut args: Vec<&str> = vec!["--listen", &addr, "--data-dir", dir.path().to_str().unwrap(), "--log", "warn"];
        args.extend_from_slice(extra);
        let pinned = Command::new("taskset").arg("--version").output().is_ok();
        let mut cmd = if pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", "0", bin]);
            c
        } else {
            Command::new(bin)
        };
        let child = cmd.args(&args).stdout(Stdio::null()).spawn().expect("starting chatgate");
        let server = Server { child, addr, _dir: dir };
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("http://{}/healthz", server.addr)).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("server status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Registers `count` users named `{prefix}{i}` and returns `(id, token)` for each.
    pub async fn users(&self, prefix: &str, count: usize) -> Vec<(String, String)> {
        let http = reqwest::Client::new();
        stream::iter(0..count)
            .map(|i| {
                let http = http.clone();
                let url = format!("http://{}/user/register", self.addr);
                async move {
                    let body: Value = http
                        .post(url)
                        .json(&json!({"username": format!("{prefix}{i}"), "password": "bench-password"}))
                        .send()
                        .await
                        .expect("register")
                        .json()
                        .await
                        .expect("register body");
                    let data = &body["data"];
                    (
                        data["userinfo"]["id"].as_str().expect("id").to_owned(),
                        data["token"].as_str().expect("token").to_owned(),
                    )
                }
            })
            .buffered(8)
            .collect()
            .await
    }

    /// Calls a route over HTTP with `token`.
    pub async fn call(&self, token: &str, route: &str, data: Value) -> Value {
        let body: Value = reqwest::Client::new()
            .post(format!("http://{}{route}", self.addr))
            .bearer_auth(token)
            .json(&data)
            .send()
            .await
            .expect("call")
            .json()
            .await
            .expect("call body");
        assert_eq!(body["code"], 0, "{route}: {body}");
        body["data"].clone()
    }

    /// Opens an authenticated socket with small buffers, like a gateway's own.
    pub async fn socket(&self, token: &str) -> Socket {
        let mut request = format!("ws://{}/ws", self.addr).into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await.expect("connect").0
    }
}

/// Sends a request frame and waits for its reply, skipping pushes.
pub async fn request(ws: &mut Socket, id: u64, route: &str, data: Value) -> Value {
    let frame = json!({"type": "req", "id": id, "route": route, "data": data}).to_string();
    ws.send(Message::Text(frame.into())).await.expect("send");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let reply: Value = serde_json::from_str(&t).expect("reply");
                if reply["type"] == "res" && reply["id"] == id {
                    return reply;
                }
            }
            Some(Ok(_)) => continue,
            other => panic!("socket failed: {other:?}"),
        }
    }
}

/// Microseconds since `start`.
pub fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

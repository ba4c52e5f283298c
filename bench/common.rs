//! Helpers shared by the benchmarks: a release `chatgate` in its own process, users, sockets.

#![allow(dead_code, reason = "each benchmark uses a different subset")]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A chatgate server process, killed on drop.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:port`.
    pub addr: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A local cluster from `scripts/cluster.sh`, stopped on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// The balancer's URL.
    pub lb: String,
    /// Each node as a `Server` address (`127.0.0.1:port`).
    pub nodes: Vec<String>,
    /// `127.0.0.1:port` of its Redis.
    pub redis_port: u16,
}

impl Cluster {
    /// Starts `n` release nodes with Redis, PostgreSQL and haproxy.
    pub fn start(n: usize) -> Cluster {
        let dir = tempfile::Builder::new().prefix("chatgate-bench-").tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh");
        let out = Command::new(script)
            .args(["start", dir.path().to_str().unwrap(), &n.to_string()])
            .env("CHATGATE_BIN", env!("CARGO_BIN_EXE_chatgate"))
            .output()
            .expect("cluster.sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut cluster = Cluster { dir, lb: String::new(), nodes: Vec::new(), redis_port: 0 };
        assert!(out.status.success(), "cluster.sh: {text}{}", String::from_utf8_lossy(&out.stderr));
        for line in text.lines() {
            if let Some(lb) = line.strip_prefix("LB_URL=") {
                cluster.lb = lb.to_owned();
            } else if let Some(urls) = line.strip_prefix("NODE_URLS=") {
                cluster.nodes = urls.split(' ').map(|u| u.trim_start_matches("http://").to_owned()).collect();
            } else if let Some(url) = line.strip_prefix("REDIS_URL=") {
                cluster.redis_port = url.rsplit(':').next().unwrap().parse().unwrap();
            }
        }
        cluster
    }

    /// A `Server` handle on node `i` (not owned: the cluster stops it).
    pub fn node(&self, i: usize) -> Server {
        Server { child: None, addr: self.nodes[i].clone(), _dir: None }
    }

    /// Redis PUBLISH calls so far.
    pub fn publishes(&self) -> u64 {
        let out = Command::new("redis-cli")
            .args(["-p", &self.redis_port.to_string(), "INFO", "commandstats"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh");
        let _ = Command::new(script).args(["stop", self.dir.path().to_str().unwrap()]).status();
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
        let server = Server { child: Some(child), addr, _dir: Some(dir) };
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
        self.child.as_ref().map_or(0, Child::id)
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

/// Sends each sender keeps in flight.
pub const WINDOW: usize = 8;

/// Microseconds since `start`.
pub fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// The send time a `message.new` frame carries, found without parsing the whole frame: the
/// load generator must stay cheaper than the server it measures.
pub fn sent_at(frame: &str) -> Option<u64> {
    if !frame.contains("\"message.new\"") {
        return None;
    }
    let at = frame.find("\"t\":")? + 4;
    let digits: &str = &frame[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Counts deliveries and their latencies on one receiving socket until `stop` turns true.
pub fn receive(
    mut ws: Socket,
    start: Instant,
    delivered: Arc<AtomicU64>,
    latency: Arc<Mutex<Histogram<u64>>>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut local = Histogram::<u64>::new(3).unwrap();
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                frame = ws.next() => {
                    let Some(Ok(Message::Text(text))) = frame else {
                        if frame.is_none() { break } else { continue }
                    };
                    if let Some(t) = sent_at(&text) {
                        let _ = local.record(micros(start).saturating_sub(t).max(1));
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        latency.lock().await.add(&local).unwrap();
    })
}

/// Sends to `chat_type`/`to` with `WINDOW` in flight until `deadline`; returns acknowledgements.
pub async fn send_loop(
    ws: Socket,
    chat_type: &'static str,
    to: String,
    start: Instant,
    deadline: Instant,
    tag: usize,
) -> u64 {
    let (mut sink, mut stream) = ws.split();
    let window = Arc::new(Semaphore::new(WINDOW));
    let acked = Arc::new(AtomicU64::new(0));
    let reader = {
        let (window, acked) = (window.clone(), acked.clone());
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(text) = frame
                    && text.contains("\"type\":\"res\"")
                {
                    assert!(text.contains("\"code\":0"), "send failed: {text}");
                    acked.fetch_add(1, Ordering::Relaxed);
                    window.add_permits(1);
                }
            }
        })
    };
    let mut n = 0u64;
    while Instant::now() < deadline {
        window.acquire().await.unwrap().forget();
        n += 1;
        let frame = json!({"type": "req", "id": n, "route": "/message/send", "data": {
            "chatType": chat_type, "to": to, "kind": "custom",
            "content": {"data": {"t": micros(start)}}, "clientMsgId": format!("{tag}-{n}")}});
        sink.send(Message::Text(frame.to_string().into())).await.unwrap();
    }
    // Let the last sends be acknowledged.
    let _ = tokio::time::timeout(Duration::from_secs(10), window.acquire_many(WINDOW as u32)).await;
    reader.abort();
    acked.load(Ordering::Relaxed)
}

pub fn summary(name: &str, h: &Histogram<u64>) -> Value {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:<8} latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
    json!({"p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99), "p999_ms": ms(0.999), "max_ms": h.max() as f64 / 1000.0})
}

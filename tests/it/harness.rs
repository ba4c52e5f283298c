//! Shared helpers: servers, databases and clients.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chatgate::Config;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{OnceCell, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// How long a test waits for any one expected event before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// Generates one test per database backend from `async fn $name(backend: Backend)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::harness::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::harness::Backend::Postgres).await }
        }
    )*};
}

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the server's temp data dir.
    Sqlite,
    /// A fresh database on the suite's PostgreSQL server.
    Postgres,
}

/// A chatgate server running in this process.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data dir.
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// Starts a server on `backend` with extra flags.
    pub async fn start_with(backend: Backend, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("chatgate.db").display()),
            Backend::Postgres => postgres_database().await,
        };
        Server::start_in(dir, &url, extra).await
    }

    /// Starts a node of a cluster: a fresh data dir, the shared database at `url`.
    pub async fn node(url: &str, extra: &[&str]) -> Server {
        Server::start_in(tempfile::tempdir().expect("temp dir"), url, extra).await
    }

    async fn start_in(dir: tempfile::TempDir, url: &str, extra: &[&str]) -> Server {
        let data_dir = dir.path().to_str().expect("utf-8 path").to_owned();
        let mut args = vec![
            "chatgate",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data_dir,
            "--database-url",
            &url,
            "--db-max-connections",
            "4",
            // Nodes of one cluster share a signing key, as a deployment must.
            "--jwt-secret",
            "integration-tests-shared-signing-key-0123456789",
            // One test client sends far faster than a person; the rate-limit tests set their own.
            "--rate-session",
            "100000",
            "--rate-user",
            "100000",
            "--rate-address",
            "100000",
            "--login-attempts-per-minute",
            "100000",
            "--resets-per-hour",
            "100000",
        ];
        args.extend_from_slice(extra);
        let config = Config::parse_from(args);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(chatgate::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let server = Server { addr, dir, stop: Some(stop), task: Some(task) };
        server.wait_healthy().await;
        server
    }

    /// Starts a server on `backend` with the default configuration.
    pub async fn start(backend: Backend) -> Server {
        Server::start_with(backend, &[]).await
    }

    async fn wait_healthy(&self) {
        let url = format!("http://{}/healthz", self.addr);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = reqwest::get(&url).await
                && resp.status().is_success()
            {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "server did not become healthy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Base HTTP URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The lines of the reset outbox, waiting until at least `count` exist.
    pub async fn outbox(&self, count: usize) -> Vec<Value> {
        let path = self.dir.path().join("outbox.jsonl");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // Only whole lines: the server may be writing the next one.
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let complete = text.rfind('\n').map_or("", |end| &text[..end]);
            let lines: Vec<Value> =
                complete.lines().map(|l| serde_json::from_str(l).expect("outbox line is JSON")).collect();
            if lines.len() >= count {
                return lines;
            }
            assert!(tokio::time::Instant::now() < deadline, "outbox never reached {count} lines");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

// ---- PostgreSQL ----

struct Postgres {
    port: u16,
}

static POSTGRES: OnceCell<Postgres> = OnceCell::const_new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_tool(tool: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", tool]);
        c
    } else {
        Command::new(tool)
    };
    let out = cmd.args(args).output().unwrap_or_else(|e| panic!("running {tool}: {e} (is PostgreSQL installed?)"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

async fn postgres_server() -> &'static Postgres {
    POSTGRES
        .get_or_init(|| async {
            tokio::task::spawn_blocking(|| {
                let dir: PathBuf = tempfile::Builder::new().prefix("chatgate-pg-").tempdir().expect("pg dir").keep();
                if is_root() {
                    pg_tool_plain("chown", &["-R", "postgres:postgres", dir.to_str().unwrap()]);
                }
                let data = dir.join("data");
                let data_s = data.to_str().unwrap();
                pg_tool("initdb", &["-D", data_s, "-A", "trust", "-U", "postgres", "--no-sync"]);
                let port = free_port();
                let opts = format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                    dir.display()
                );
                pg_tool("pg_ctl", &["-D", data_s, "-o", &opts, "-l", dir.join("log").to_str().unwrap(), "-w", "start"]);
                spawn_reaper(&dir, &data);
                Postgres { port }
            })
            .await
            .expect("starting PostgreSQL")
        })
        .await
}

fn pg_tool_plain(tool: &str, args: &[&str]) {
    let status = Command::new(tool).args(args).status().expect(tool);
    assert!(status.success(), "{tool} failed");
}

/// Stops the server and removes its files once this test process has exited.
#[allow(clippy::zombie_processes, reason = "the reaper must outlive this process, so it is never waited on")]
fn spawn_reaper(dir: &Path, data: &Path) {
    let stop = if is_root() {
        format!("runuser -u postgres -- pg_ctl -D '{}' -m immediate stop", data.display())
    } else {
        format!("pg_ctl -D '{}' -m immediate stop", data.display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawning the PostgreSQL reaper");
}

/// A fresh, empty database on the suite's PostgreSQL server.
pub async fn postgres_database() -> String {
    let pg = postgres_server().await;
    let name = format!("t{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let port = pg.port.to_string();
    let sql = format!("CREATE DATABASE {name}");
    tokio::task::spawn_blocking(move || {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &sql,
            ])
            .output()
            .expect("psql");
        assert!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
    })
    .await
    .expect("create database");
    format!("postgres://postgres@127.0.0.1:{}/{name}", pg.port)
}

// ---- clients ----

/// A WebSocket frame encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// JSON text frames.
    Json,
    /// MessagePack binary frames.
    MsgPack,
}

/// A raw WebSocket client that correlates replies and keeps pushes aside.
pub struct Ws {
    /// The socket.
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Encoding of requests.
    pub wire: Wire,
    next_id: i64,
    pushes: VecDeque<Value>,
}

/// Why a socket ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    /// The close code, if a close frame came.
    pub code: Option<u16>,
    /// Its reason.
    pub reason: String,
}

impl Ws {
    /// Opens `/ws` with the given query string (without `?`) and optional bearer token.
    pub async fn connect(
        server: &Server,
        wire: Wire,
        query: &str,
        bearer: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let format = match wire {
            Wire::Json => "json",
            Wire::MsgPack => "msgpack",
        };
        // A query that names its own format is sent as it is.
        let query = if query.contains("format=") { query.to_owned() } else { format!("format={format}&{query}") };
        let mut request = format!("ws://{}/ws?{query}", server.addr).into_client_request()?;
        if let Some(token) = bearer {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request.headers_mut().insert("user-agent", "chatgate-it".parse().unwrap());
        let (socket, _) = connect_async(request).await?;
        Ok(Ws { socket, wire, next_id: 1, pushes: VecDeque::new() })
    }

    /// Wraps a socket opened elsewhere.
    pub fn wrap(socket: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Ws {
        Ws { socket, wire: Wire::Json, next_id: 1, pushes: VecDeque::new() }
    }

    /// Opens an anonymous socket.
    pub async fn open(server: &Server, wire: Wire) -> Ws {
        Ws::connect(server, wire, "", None).await.expect("ws connect")
    }

    /// Sends a value in this socket's encoding.
    pub async fn send_value(&mut self, frame: &Value) {
        let msg = match self.wire {
            Wire::Json => Message::Text(frame.to_string().into()),
            Wire::MsgPack => Message::Binary(rmp_serde::to_vec_named(frame).unwrap().into()),
        };
        self.socket.send(msg).await.expect("ws send");
    }

    /// Reads the next data frame as JSON, whatever its encoding; `Err` when the socket closes.
    pub async fn recv(&mut self) -> Result<Value, Closed> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next()).await.expect("timed out waiting for a frame");
            match frame {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(&t).expect("server sent bad JSON"));
                }
                Some(Ok(Message::Binary(b))) => {
                    return Ok(rmp_serde::from_slice(&b).expect("server sent bad MessagePack"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    return Err(Closed { code: None, reason: String::new() });
                }
            }
        }
    }

    /// Sends a request and returns its reply (the whole frame), keeping pushes for later.
    pub async fn request(&mut self, route: &str, data: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_value(&json!({"type": "req", "id": id, "route": route, "data": data})).await;
        self.reply_to(json!(id)).await
    }

    /// Waits for the reply with `id`.
    pub async fn reply_to(&mut self, id: Value) -> Value {
        loop {
            let frame = self.recv().await.expect("socket closed while waiting for a reply");
            match frame["type"].as_str() {
                Some("res") if frame["id"] == id => return frame,
                Some("push") => self.pushes.push_back(frame),
                _ => panic!("unexpected frame {frame}"),
            }
        }
    }

    /// Waits for the next push named `event`.
    pub async fn push(&mut self, event: &str) -> Value {
        if let Some(i) = self.pushes.iter().position(|p| p["event"] == event) {
            return self.pushes.remove(i).unwrap();
        }
        loop {
            let frame = self.recv().await.unwrap_or_else(|c| panic!("socket closed ({c:?}) waiting for {event}"));
            if frame["type"] == "push" && frame["event"] == event {
                return frame;
            }
            if frame["type"] == "push" {
                self.pushes.push_back(frame);
            }
        }
    }

    /// Reads until the socket closes and returns how.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match self.recv().await {
                Ok(frame) if frame["type"] == "push" => self.pushes.push_back(frame),
                Ok(_) => continue,
                Err(closed) => return closed,
            }
        }
    }
}

/// How a test talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// WebSocket with JSON frames.
    WsJson,
    /// WebSocket with MessagePack frames.
    WsMsgPack,
    /// Plain HTTP.
    Http,
}

/// All transports, for tests that must hold over each.
pub const ALL_VIAS: [Via; 3] = [Via::WsJson, Via::WsMsgPack, Via::Http];

/// A reply, whichever transport carried it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// 0 or 1.
    pub code: i64,
    /// The reason, on failure.
    pub error: Option<String>,
    /// The data (null on failure).
    pub data: Value,
    /// The HTTP status, over HTTP.
    pub status: Option<u16>,
}

impl Reply {
    /// Asserts success and returns the data.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.code, 0, "expected success, got {:?} {:?}", self.error, self.data);
        self.data
    }

    /// Asserts failure with `reason`.
    #[track_caller]
    pub fn fails(&self, reason: &str) {
        assert_eq!(self.code, 1, "expected {reason}, got success {}", self.data);
        assert_eq!(self.error.as_deref(), Some(reason));
        assert!(self.data.is_null());
    }
}

/// A client of one user over one transport. Over the socket, login binds the socket; over HTTP
/// the token from the last register or login goes in `Authorization`.
pub struct Api {
    addr: SocketAddr,
    http: reqwest::Client,
    /// The socket, for socket transports.
    pub ws: Option<Ws>,
    /// The token of the last register or login.
    pub token: Option<String>,
}

/// Routes that are GET over HTTP.
fn is_get(route: &str, data: &Value) -> bool {
    matches!(
        route,
        "/user/loginLog"
            | "/user/online"
            | "/group/room/info"
            | "/group/room/list"
            | "/group/room/members"
            | "/message/history"
            | "/message/readers"
            | "/conversation/list"
            | "/conversation/info"
            | "/conversation/unread"
    ) || (route == "/user/info" && data.get("userinfo").is_none())
}

impl Api {
    /// A new client.
    pub async fn new(server: &Server, via: Via) -> Api {
        let ws = match via {
            Via::WsJson => Some(Ws::open(server, Wire::Json).await),
            Via::WsMsgPack => Some(Ws::open(server, Wire::MsgPack).await),
            Via::Http => None,
        };
        Api { addr: server.addr, http: reqwest::Client::new(), ws, token: None }
    }

    /// An HTTP client using `token`.
    pub fn with_token(server: &Server, token: String) -> Api {
        Api { addr: server.addr, http: reqwest::Client::new(), ws: None, token: Some(token) }
    }

    /// Calls a route.
    pub async fn call(&mut self, route: &str, data: Value) -> Reply {
        let reply = match &mut self.ws {
            Some(ws) => {
                let frame = ws.request(route, data).await;
                Reply {
                    code: frame["code"].as_i64().unwrap(),
                    error: frame["error"].as_str().map(str::to_owned),
                    data: frame["data"].clone(),
                    status: None,
                }
            }
            None => {
                let url = format!("http://{}{}", self.addr, route);
                let mut req = if is_get(route, &data) {
                    let query: Vec<(String, String)> = data
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                        .collect();
                    self.http.get(url).query(&query)
                } else {
                    self.http.post(url).json(&data)
                };
                if let Some(token) = &self.token {
                    req = req.bearer_auth(token);
                }
                let resp = req.send().await.expect("http request");
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.expect("http body is JSON");
                Reply {
                    code: body["code"].as_i64().unwrap(),
                    error: body["error"].as_str().map(str::to_owned),
                    data: body["data"].clone(),
                    status: Some(status),
                }
            }
        };
        if reply.code == 0
            && let Some(token) = reply.data["token"].as_str()
        {
            self.token = Some(token.to_owned());
        }
        reply
    }

    /// Registers `username` with `password` and returns the userinfo.
    pub async fn register(&mut self, username: &str, password: &str) -> Value {
        self.call("/user/register", json!({"username": username, "password": password})).await.ok()["userinfo"].clone()
    }
}

/// Registers `name` over plain HTTP at `base` (`http://host:port`); returns its token and id.
pub async fn register_at(base: &str, name: &str) -> (String, String) {
    let reply: Value = reqwest::Client::new()
        .post(format!("{base}/user/register"))
        .json(&json!({"username": name, "password": "a long enough password"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("register reply");
    let data = &reply["data"];
    (data["token"].as_str().expect("token").to_owned(), data["userinfo"]["id"].as_str().expect("id").to_owned())
}

/// Registers `name` over `via` and returns the client and the user's id.
pub async fn user(server: &Server, via: Via, name: &str) -> (Api, String) {
    let mut api = Api::new(server, via).await;
    let info = api.register(name, "a long enough password").await;
    (api, info["id"].as_str().expect("id").to_owned())
}

/// A socket of `api`'s user (which must have a token), in `wire`, once the server has bound
/// it (its `session.ready` has arrived).
pub async fn device(server: &Server, api: &Api, wire: Wire) -> Ws {
    let mut ws = Ws::connect(server, wire, "", api.token.as_deref()).await.expect("device connects");
    ws.push("session.ready").await;
    ws
}

impl Ws {
    /// Asserts that no push is on its way: a ping's pong comes back first. (Pushes already read
    /// and set aside are not looked at.)
    pub async fn no_push(&mut self) {
        self.send_value(&json!({"type": "ping"})).await;
        let next = self.recv().await.expect("socket open");
        assert_eq!(next, json!({"type": "pong"}), "expected no push before the pong");
    }
}

// ---- Redis ----

/// A redis-server of one test, on a random port; killed when dropped.
pub struct Redis {
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Redis {
    /// Starts a throwaway redis-server (no persistence).
    pub async fn start() -> Redis {
        let mut redis = Redis { port: free_port(), dir: tempfile::tempdir().expect("redis dir"), child: None };
        redis.launch().await;
        redis
    }

    async fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("running redis-server (is it installed?)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The URL nodes connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs a command through redis-cli and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out =
            Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Kills the server (SIGKILL): every connection drops at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.launch().await;
    }

    /// Waits until `count` nodes subscribe to `channel` (a bus channel such as `g:5`).
    pub async fn wait_subscribers(&self, channel: &str, count: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let out = self.cli(&["PUBSUB", "NUMSUB", &format!("chatgate:{channel}")]);
            let n: usize = out.lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0);
            if n == count {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{channel} has {n} subscribers, expected {count}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- processes ----

/// A `chatgate` binary in a process of its own, in its own data dir, on a free port; killed
/// (SIGKILL) when dropped. For tests that measure the process, kill it or restart it.
pub struct Process {
    /// The child.
    pub child: std::process::Child,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// `127.0.0.1:port`.
    pub addr: SocketAddr,
    /// Its data dir, kept across restarts.
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Process {
    /// Starts the binary with `args` (after `--listen` and `--data-dir`) and `env`, its output
    /// to `<data-dir>/server.log`, and waits until it answers `/healthz`.
    pub async fn start(args: &[&str], env: &[(&str, String)]) -> Process {
        let dir = tempfile::tempdir().expect("temp dir");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let (child, addr) = Process::spawn(dir.path(), &args, &env);
        let mut process = Process { child, base: format!("http://{addr}"), addr, dir, args, env };
        process.wait_healthy().await;
        process
    }

    fn spawn(dir: &Path, args: &[String], env: &[(String, String)]) -> (std::process::Child, SocketAddr) {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_chatgate"))
            .args(["--listen", &addr.to_string(), "--data-dir", dir.to_str().unwrap()])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("starting chatgate");
        (child, addr)
    }

    async fn wait_healthy(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if reqwest::get(format!("{}/healthz", self.base)).await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chatgate exited with {status}: {}", self.log());
            }
            assert!(tokio::time::Instant::now() < deadline, "chatgate did not become healthy: {}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts it again on the same data dir (on a new port), after it ended or was killed.
    pub async fn restart(&mut self) {
        self.kill();
        let (child, addr) = Process::spawn(self.dir.path(), &self.args, &self.env);
        (self.child, self.addr, self.base) = (child, addr, format!("http://{addr}"));
        self.wait_healthy().await;
    }

    /// Asks it to stop (SIGTERM) and waits, at most `within`, for it to exit; its exit status.
    pub async fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Its resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Kills it with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL server of one test, in its own temp dir on a free port, which the test may stop
/// and start again (an outage); stopped and removed when dropped.
pub struct OwnPostgres {
    dir: PathBuf,
    /// Its port.
    pub port: u16,
}

impl OwnPostgres {
    /// Creates and starts it, with a `chatgate` database.
    pub async fn start() -> OwnPostgres {
        let dir: PathBuf = tempfile::Builder::new().prefix("chatgate-own-pg-").tempdir().expect("pg dir").keep();
        if is_root() {
            pg_tool_plain("chown", &["-R", "postgres:postgres", dir.to_str().unwrap()]);
        }
        let data = dir.join("data");
        let data = data.to_str().unwrap().to_owned();
        let pg = OwnPostgres { dir, port: free_port() };
        tokio::task::spawn_blocking(move || {
            pg_tool("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"])
        })
        .await
        .expect("initdb");
        // Stopped even if this process dies first.
        spawn_reaper(&pg.dir, &pg.dir.join("data"));
        pg.resume().await;
        let port = pg.port.to_string();
        tokio::task::spawn_blocking(move || {
            let out = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    "CREATE DATABASE chatgate",
                ])
                .output()
                .expect("psql");
            assert!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
        })
        .await
        .expect("create database");
        pg
    }

    /// The database URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/chatgate", self.port)
    }

    /// Stops the server at once (`-m immediate`: every connection drops, as in a crash).
    pub async fn stop(&self) {
        let data = self.dir.join("data").to_str().unwrap().to_owned();
        tokio::task::spawn_blocking(move || pg_tool("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]))
            .await
            .expect("pg_ctl");
    }

    /// Starts it again on the same port.
    pub async fn resume(&self) {
        let data = self.dir.join("data").to_str().unwrap().to_owned();
        let log = self.dir.join("log").to_str().unwrap().to_owned();
        // Commits reach the OS before they are acknowledged (no synchronous_commit=off): an
        // immediate stop, a crash, must not lose them.
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        tokio::task::spawn_blocking(move || pg_tool("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"]))
            .await
            .expect("pg_ctl");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let data = data.to_str().unwrap();
        let mut stop = if is_root() { Command::new("runuser") } else { Command::new("pg_ctl") };
        if is_root() {
            stop.args(["-u", "postgres", "--", "pg_ctl"]);
        }
        let _ = stop.args(["-D", data, "-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- S3 ----

/// An S3-compatible object store (s3s-fs over a temp dir) served in this process on a random
/// port, with one bucket.
pub struct S3 {
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    /// The bucket's name.
    pub bucket: String,
    root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

const S3_KEY: &str = "chatgate-test-key";
const S3_SECRET: &str = "chatgate-test-secret-0123456789";

impl S3 {
    /// Starts the store with an empty bucket named `bucket`.
    pub async fn start(bucket: &str) -> S3 {
        let root = tempfile::tempdir().expect("s3 dir");
        std::fs::create_dir(root.path().join(bucket)).expect("bucket dir");
        let mut builder = s3s::service::S3ServiceBuilder::new(s3s_fs::FileSystem::new(root.path()).expect("s3s-fs"));
        builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY, S3_SECRET));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind s3");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(socket);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        S3 { endpoint, bucket: bucket.to_owned(), root, task }
    }

    /// The environment a node needs to use this store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", S3_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET.into()),
        ]
    }

    /// Every stored object's key, and the store's unfinished multipart parts.
    pub fn contents(&self) -> (Vec<String>, Vec<String>) {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let bucket = self.root.path().join(&self.bucket);
        let mut objects = Vec::new();
        walk(&bucket, &bucket, &mut objects);
        let parts = std::fs::read_dir(self.root.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".part"))
            .collect();
        (objects, parts)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

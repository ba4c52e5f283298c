//! Clients: a raw WebSocket client that correlates replies and keeps pushes aside ([`Ws`]), and
//! one user's client over any transport ([`Api`]).

use std::collections::VecDeque;
use std::net::SocketAddr;

use chatgate::api::Method;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use super::{Server, WAIT};

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

/// Whether `route` is a GET over HTTP, as the server's route table says; for a path with a
/// GET and a POST form, `data` picks, as it does on the socket.
fn is_get(route: &str, data: &Value) -> bool {
    chatgate::api::routes::find(Method::Socket, route, data).is_ok_and(|r| r.method == Method::Get)
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

    /// Registers `username` with `password` and returns the userinfo. The server's hashing
    /// queue is short: `rate_limited` is waited out as it asks, as a client would.
    pub async fn register(&mut self, username: &str, password: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let reply = self.call("/user/register", json!({"username": username, "password": password})).await;
            if reply.error.as_deref() != Some("rate_limited") || tokio::time::Instant::now() > deadline {
                return reply.ok()["userinfo"].clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Registers `name` over plain HTTP at `base` (`http://host:port`); returns its token and id.
pub async fn register_at(base: &str, name: &str) -> (String, String) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let reply = loop {
        let reply: Value = reqwest::Client::new()
            .post(format!("{base}/user/register"))
            .json(&json!({"username": name, "password": "a long enough password"}))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("register reply");
        if reply["error"] != "rate_limited" || tokio::time::Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let data = &reply["data"];
    (data["token"].as_str().expect("token").to_owned(), data["userinfo"]["id"].as_str().expect("id").to_owned())
}

/// Sends `request` and reads its JSON reply.
pub async fn json_reply(request: reqwest::RequestBuilder) -> Value {
    request.send().await.expect("request").json().await.expect("JSON reply")
}

/// Uploads `bytes` to the server at `base` as the user of `token`; answers the whole reply.
pub async fn upload_at(base: &str, token: &str, bytes: Vec<u8>) -> Value {
    let request = reqwest::Client::new().post(format!("{base}/file/upload")).bearer_auth(token).body(bytes);
    request.send().await.expect("upload").json().await.expect("upload reply")
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

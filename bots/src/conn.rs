//! Dialing a server and speaking its protocol: chatgate's frames, socket.io's Engine.IO v4
//! framing, or a bare broadcast server's plain text.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

/// A bot's socket.
pub type Socket = WebSocketStream<TcpStream>;

/// How long a session may take to open and authenticate.
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);

/// The server's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// chatgate: `/ws` with `Authorization: Bearer`, `session.ready`, request and push frames.
    Chatgate,
    /// socket.io 4 over its WebSocket transport (Engine.IO v4 framing).
    Socketio,
    /// soketi, the Pusher protocol: a private channel and client events (app `app-key`,
    /// secret `app-secret`, client messages enabled).
    Soketi,
    /// A bare WebSocket broadcast server: every text frame goes to every other socket.
    Bare,
}

/// Small client buffers, as a gateway's own: the bots hold many sockets per process.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Connects to `server` from `source` (any port) and performs the WebSocket handshake on
/// `path`. Errors are short reasons, for counting.
pub async fn dial(
    server: SocketAddr,
    source: Option<IpAddr>,
    path: &str,
    bearer: Option<&str>,
    rcvbuf: Option<u32>,
) -> Result<Socket, String> {
    let socket = TcpSocket::new_v4().map_err(|e| reason_of_io(&e))?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(|e| format!("bind: {}", reason_of_io(&e)))?;
    }
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).map_err(|e| reason_of_io(&e))?;
    }
    let stream = socket.connect(server).await.map_err(|e| reason_of_io(&e))?;
    stream.set_nodelay(true).map_err(|e| reason_of_io(&e))?;
    let mut request = format!("ws://{server}{path}").into_client_request().map_err(|e| format!("request: {e}"))?;
    if let Some(token) = bearer {
        let value = format!("Bearer {token}").parse().map_err(|_| "the token is not a header value".to_owned())?;
        request.headers_mut().insert("authorization", value);
    }
    match client_async_with_config(request, stream, Some(client_config())).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(format!("http_{}", response.status().as_u16())),
        Err(e) => Err(format!("handshake: {e}")),
    }
}

fn reason_of_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("os_{code}_{:?}", e.kind()).to_lowercase(),
        None => format!("{:?}", e.kind()).to_lowercase(),
    }
}

/// Opens a session: dials, then does what the protocol needs before traffic (chatgate waits
/// for `session.ready`; socket.io connects to its default namespace).
pub async fn open(
    protocol: Protocol,
    server: SocketAddr,
    source: Option<IpAddr>,
    token: Option<&str>,
    rcvbuf: Option<u32>,
) -> Result<Socket, String> {
    let opening = async {
        match protocol {
            // Without a token the socket stays anonymous (what a flood uses).
            Protocol::Chatgate => match token {
                Some(token) => {
                    let mut ws = dial(server, source, "/ws", Some(token), rcvbuf).await?;
                    wait_for(&mut ws, |t| t.starts_with(r#"{"type":"push","event":"session.ready""#)).await?;
                    Ok(ws)
                }
                None => dial(server, source, "/ws", None, rcvbuf).await,
            },
            Protocol::Socketio => {
                let mut ws = dial(server, source, "/socket.io/?EIO=4&transport=websocket", None, rcvbuf).await?;
                wait_for(&mut ws, |t| t.starts_with('0')).await?;
                ws.send(Message::Text("40".into())).await.map_err(|e| format!("send: {e}"))?;
                wait_for(&mut ws, |t| t.starts_with("40")).await?;
                Ok(ws)
            }
            Protocol::Soketi => {
                let path = "/app/app-key?protocol=7&client=chatgate-bots&version=1.0&flash=false";
                let mut ws = dial(server, source, path, None, rcvbuf).await?;
                let hello = wait_for(&mut ws, |t| t.contains("pusher:connection_established")).await?;
                let socket_id = pusher_socket_id(&hello).ok_or("no socket_id")?;
                let subscribe = format!(
                    r#"{{"event":"pusher:subscribe","data":{{"auth":"{}","channel":"{PUSHER_CHANNEL}"}}}}"#,
                    pusher_auth(&socket_id, PUSHER_CHANNEL)
                );
                ws.send(Message::Text(subscribe.into())).await.map_err(|e| format!("send: {e}"))?;
                wait_for(&mut ws, |t| t.contains("pusher_internal:subscription_succeeded")).await?;
                Ok(ws)
            }
            Protocol::Bare => dial(server, source, "/", None, rcvbuf).await,
        }
    };
    tokio::time::timeout(OPEN_TIMEOUT, opening).await.unwrap_or_else(|_| Err("open_timeout".into()))
}

/// The channel every soketi bot subscribes to and sends client events on.
pub const PUSHER_CHANNEL: &str = "private-room";
const PUSHER_KEY: &str = "app-key";
const PUSHER_SECRET: &str = "app-secret";

/// The socket id in `pusher:connection_established` (its data is JSON inside a string).
fn pusher_socket_id(hello: &str) -> Option<String> {
    let outer: serde_json::Value = serde_json::from_str(hello).ok()?;
    let inner: serde_json::Value = serde_json::from_str(outer["data"].as_str()?).ok()?;
    Some(inner["socket_id"].as_str()?.to_owned())
}

/// A private channel's subscription signature: `key:hex(HMAC-SHA256(secret, "socket:channel"))`.
fn pusher_auth(socket_id: &str, channel: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(PUSHER_SECRET.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{socket_id}:{channel}").as_bytes());
    format!("{PUSHER_KEY}:{}", hex::encode(mac.finalize().into_bytes()))
}

async fn wait_for(ws: &mut Socket, done: impl Fn(&str) -> bool) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if done(&text) => return Ok(text.to_string()),
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map_or("closed".into(), |f| format!("closed_{}", u16::from(f.code))));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("closed".into()),
        }
    }
}

/// A frame's meaning to a bot.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A message delivered: its conversation, seq and send time (µs since the epoch).
    Delivery { conversation: &'a str, seq: u64, sent_us: u64 },
    /// A reply: its request id, and the error reason when it failed (seq of the stored
    /// message on success).
    Reply { id: u64, error: Option<&'a str>, seq: Option<u64> },
    /// A protocol-level ping (socket.io's `2`, Pusher's `pusher:ping`), to be answered with this.
    Ping(&'static str),
    /// Anything else.
    Other,
}

/// The conversation name of protocols that have only one broadcast room.
pub const ROOM: &str = "room";

/// Reads a text frame without parsing it whole: the load generator must cost far less than
/// the server it measures.
pub fn classify(protocol: Protocol, text: &str) -> Incoming<'_> {
    match protocol {
        Protocol::Chatgate => {
            if text.starts_with(r#"{"type":"push","event":"message.new""#) {
                match (
                    string_after(text, r#""conversationId":""#),
                    number_after(text, r#""seq":"#),
                    number_after(text, r#""t":"#),
                ) {
                    (Some(conversation), Some(seq), Some(sent_us)) => Incoming::Delivery { conversation, seq, sent_us },
                    _ => Incoming::Other,
                }
            } else if text.starts_with(r#"{"type":"res""#) {
                // A frame too broken to carry an id is answered with `"id":null`.
                let id = number_after(text, r#""id":"#).unwrap_or(0);
                let error = string_after(text, r#""error":""#);
                Incoming::Reply { id, error, seq: if error.is_none() { number_after(text, r#""seq":"#) } else { None } }
            } else {
                Incoming::Other
            }
        }
        Protocol::Soketi => {
            if text.starts_with(r#"{"event":"pusher:ping""#) {
                return Incoming::Ping(r#"{"event":"pusher:pong","data":{}}"#);
            }
            if !text.starts_with(r#"{"event":"client-msg""#) {
                return Incoming::Other;
            }
            match (number_after(text, r#""seq":"#), number_after(text, r#""t":"#)) {
                (Some(seq), Some(sent_us)) => Incoming::Delivery { conversation: ROOM, seq, sent_us },
                _ => Incoming::Other,
            }
        }
        Protocol::Socketio | Protocol::Bare => {
            if protocol == Protocol::Socketio && text == "2" {
                return Incoming::Ping("3");
            }
            if protocol == Protocol::Socketio && !text.starts_with("42") {
                return Incoming::Other;
            }
            match (number_after(text, r#""seq":"#), number_after(text, r#""t":"#)) {
                (Some(seq), Some(sent_us)) => Incoming::Delivery { conversation: ROOM, seq, sent_us },
                _ => Incoming::Other,
            }
        }
    }
}

/// The frame a sender sends: for chatgate a `/message/send` request with id `id`; for the
/// others the broadcast payload. `seq` is the sender's own count (the peers have no server seq).
/// `pad` (a JSON member such as `,"pad":"xxxx"`, or empty) is carried along to make messages
/// larger; see [`pad_member`].
pub fn send_frame(
    protocol: Protocol,
    id: u64,
    chat_type: &str,
    to: &str,
    key: &str,
    sent_us: u64,
    pad: &str,
) -> String {
    match protocol {
        Protocol::Chatgate => format!(
            r#"{{"type":"req","id":{id},"route":"/message/send","data":{{"chatType":"{chat_type}","to":"{to}","kind":"custom","clientMsgId":"{key}-{id}","content":{{"data":{{"t":{sent_us}{pad}}}}}}}}}"#
        ),
        Protocol::Socketio => format!(r#"42["msg",{{"seq":{id},"t":{sent_us}{pad}}}]"#),
        Protocol::Soketi => {
            format!(r#"{{"event":"client-msg","channel":"{PUSHER_CHANNEL}","data":{{"seq":{id},"t":{sent_us}{pad}}}}}"#)
        }
        Protocol::Bare => format!(r#"{{"seq":{id},"t":{sent_us}{pad}}}"#),
    }
}

/// The JSON member that pads a message by `bytes` characters (nothing for 0).
pub fn pad_member(bytes: usize) -> String {
    if bytes == 0 { String::new() } else { format!(r#","pad":"{}""#, "x".repeat(bytes)) }
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = &text[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

fn string_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(key)? + key.len();
    let rest = &text[at..];
    Some(&rest[..rest.find('"')?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatgate_frames_are_read_without_parsing() {
        let push = r#"{"type":"push","event":"message.new","data":{"message":{"id":"9","conversationId":"g:3","seq":41,"chatType":"group","from":"1","to":"3","kind":"custom","content":{"data":{"t":1700000000123456}},"clientMsgId":"s-1","sentAt":1700000000125,"status":"normal"}}}"#;
        assert_eq!(
            classify(Protocol::Chatgate, push),
            Incoming::Delivery { conversation: "g:3", seq: 41, sent_us: 1_700_000_000_123_456 }
        );
        let ok = r#"{"type":"res","id":17,"code":0,"message":"ok","data":{"message":{"id":"9","conversationId":"g:3","seq":41}}}"#;
        assert_eq!(classify(Protocol::Chatgate, ok), Incoming::Reply { id: 17, error: None, seq: Some(41) });
        let err = r#"{"type":"res","id":18,"code":1,"message":"slow down","data":null,"error":"rate_limited","retryAfter":20}"#;
        assert_eq!(
            classify(Protocol::Chatgate, err),
            Incoming::Reply { id: 18, error: Some("rate_limited"), seq: None }
        );
        assert_eq!(classify(Protocol::Chatgate, r#"{"type":"push","event":"typing","data":{}}"#), Incoming::Other);
        let broken = r#"{"type":"res","id":null,"code":1,"message":"bad","data":null,"error":"frame.malformed"}"#;
        assert_eq!(
            classify(Protocol::Chatgate, broken),
            Incoming::Reply { id: 0, error: Some("frame.malformed"), seq: None }
        );
    }

    #[test]
    fn pusher_handshake_parts() {
        let hello = r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1234.5678\",\"activity_timeout\":30}"}"#;
        assert_eq!(pusher_socket_id(hello).as_deref(), Some("1234.5678"));
        // Pusher's documented example: secret 7ad3773142a6692b25b8, key 278d425bdf160c739803.
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"7ad3773142a6692b25b8").unwrap();
        mac.update(b"1234.1234:private-foobar");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        assert!(pusher_auth("1.2", PUSHER_CHANNEL).starts_with("app-key:"));
    }

    #[test]
    fn peer_frames_round_trip() {
        let io = send_frame(Protocol::Socketio, 5, "group", "1", "k", 77, "");
        assert_eq!(io, r#"42["msg",{"seq":5,"t":77}]"#);
        assert_eq!(classify(Protocol::Socketio, &io), Incoming::Delivery { conversation: ROOM, seq: 5, sent_us: 77 });
        assert_eq!(classify(Protocol::Socketio, "2"), Incoming::Ping("3"));
        let pusher = send_frame(Protocol::Soketi, 7, "group", "1", "k", 79, "");
        let v: serde_json::Value = serde_json::from_str(&pusher).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["channel"].as_str(), v["data"]["seq"].as_u64()),
            (Some("client-msg"), Some(PUSHER_CHANNEL), Some(7))
        );
        assert_eq!(classify(Protocol::Soketi, &pusher), Incoming::Delivery { conversation: ROOM, seq: 7, sent_us: 79 });
        assert_eq!(
            classify(Protocol::Soketi, r#"{"event":"pusher:ping","data":{}}"#),
            Incoming::Ping(r#"{"event":"pusher:pong","data":{}}"#)
        );
        assert_eq!(classify(Protocol::Socketio, r#"40{"sid":"x"}"#), Incoming::Other);
        let bare = send_frame(Protocol::Bare, 6, "group", "1", "k", 78, &pad_member(4));
        assert_eq!(bare, r#"{"seq":6,"t":78,"pad":"xxxx"}"#);
        assert_eq!(classify(Protocol::Bare, &bare), Incoming::Delivery { conversation: ROOM, seq: 6, sent_us: 78 });
        let req = send_frame(Protocol::Chatgate, 3, "single", "12", "bot-4", 99, "");
        let v: serde_json::Value = serde_json::from_str(&req).unwrap();
        assert_eq!(v["data"]["clientMsgId"], "bot-4-3");
        assert_eq!(v["data"]["content"]["data"]["t"], 99);
        let padded: serde_json::Value =
            serde_json::from_str(&send_frame(Protocol::Chatgate, 3, "single", "12", "bot-4", 99, &pad_member(3)))
                .unwrap();
        assert_eq!(padded["data"]["content"]["data"]["pad"], "xxx");
        assert_eq!(v["data"]["to"], "12");
    }
}

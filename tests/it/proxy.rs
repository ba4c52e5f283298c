//! PROXY protocol v2, spoken by hand over raw sockets the way haproxy's `send-proxy-v2` does:
//! read from trusted proxies only, the client it names is the client, and a broken or stalled
//! header costs its own connection and nobody else's.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{Api, Backend, Server, Via, WAIT, Ws, register_at};
use crate::on_both;

on_both!(
    a_trusted_proxy_names_the_client_over_http_and_websocket,
    an_untrusted_peer_s_header_is_not_read,
    broken_and_stalled_headers_hold_up_nobody
);

const SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
const PASSWORD: &str = "a long enough password";

/// A PROXY v2 header for a TCP connection from `client` to `server`.
fn proxied(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let (family, addresses) = match (client, server) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => (0x11, [&c.ip().octets()[..], &s.ip().octets()].concat()),
        (SocketAddr::V6(c), SocketAddr::V4(s)) => {
            (0x21, [&c.ip().octets()[..], &s.ip().to_ipv6_mapped().octets()].concat())
        }
        _ => unreachable!("the test server listens on IPv4"),
    };
    let body = [addresses, client.port().to_be_bytes().to_vec(), server.port().to_be_bytes().to_vec()].concat();
    header(0x21, family, &body)
}

/// A v2 header with its version and command byte, family byte and body.
fn header(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let length = u16::try_from(body.len()).unwrap().to_be_bytes();
    [SIGNATURE, &[command, family], &length, body].concat()
}

/// A connection to `server`, from `source` (a loopback address) if given.
async fn connect(server: &Server, source: Option<IpAddr>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
    }
    socket.connect(server.addr).await.unwrap()
}

/// Writes `preamble` and a one-shot HTTP/1.1 request, and reads the whole answer.
async fn raw_http(
    stream: &mut TcpStream,
    preamble: &[u8],
    method: &str,
    path: &str,
    extra: &str,
    body: &str,
) -> String {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: chatgate\r\nuser-agent: raw-proxy\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    );
    stream.write_all(&[preamble, request.as_bytes()].concat()).await.unwrap();
    let mut answer = Vec::new();
    // A reset (the server dropped bytes it did not read) still leaves what had arrived.
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await.expect("an answer in time");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The JSON body of a raw HTTP answer.
fn body(answer: &str) -> Value {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not HTTP: {answer:?}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
}

fn login(name: &str) -> String {
    json!({"username": name, "password": PASSWORD}).to_string()
}

/// A login log entry's address and transport.
fn entry(ip: &str, transport: &str) -> (String, String) {
    (ip.to_owned(), transport.to_owned())
}

/// The address and transport of the newest entries of `token`'s login log, newest first.
async fn login_log(server: &Server, token: &str) -> Vec<(String, String)> {
    let log = Api::with_token(server, token.to_owned()).call("/user/loginLog", json!({})).await.ok();
    log["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| (l["ip"].as_str().unwrap().to_owned(), l["transport"].as_str().unwrap().to_owned()))
        .collect()
}

/// From a trusted proxy: a PROXY header's client is logged, over HTTP and over the WebSocket;
/// it is not overridden by its `X-Forwarded-For` unless it is a trusted proxy itself; `LOCAL`
/// and no header at all keep the proxy's address (and its `X-Forwarded-For` counts again).
async fn a_trusted_proxy_names_the_client_over_http_and_websocket(backend: Backend) {
    let server = Server::start_with(backend, &["--trusted-proxy", "127.0.0.1/32"]).await;
    let (token, _) = register_at(&server.url(""), "pp-alice").await;
    let forged = "x-forwarded-for: 198.51.100.9\r\n";

    let cases = [
        (proxied("203.0.113.7:4711".parse().unwrap(), server.addr), forged, "203.0.113.7"),
        (proxied("[2001:db8::7]:4711".parse().unwrap(), server.addr), "", "2001:db8::7"),
        // A client that is itself a trusted proxy passes the word on.
        (proxied("127.0.0.1:4711".parse().unwrap(), server.addr), forged, "198.51.100.9"),
        // LOCAL: the balancer's own connection.
        (header(0x20, 0x00, &[]), "", "127.0.0.1"),
        // No header: plain HTTP from the trusted proxy, its X-Forwarded-For read as before.
        (Vec::new(), forged, "198.51.100.9"),
    ];
    for (preamble, extra, expected) in cases {
        let mut stream = connect(&server, None).await;
        let answer = raw_http(&mut stream, &preamble, "POST", "/user/login", extra, &login("pp-alice")).await;
        assert_eq!(body(&answer)["code"], 0, "{expected}: {answer}");
        assert_eq!(login_log(&server, &token).await[0], entry(expected, "http"));
    }

    // The WebSocket handshake after a header, on the same connection.
    let mut stream = connect(&server, None).await;
    stream.write_all(&proxied("203.0.113.8:4711".parse().unwrap(), server.addr)).await.unwrap();
    let request = format!("ws://{}/ws", server.addr).into_client_request().unwrap();
    let (socket, _) = tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
        .await
        .expect("the handshake after a PROXY header");
    let mut ws = Ws::wrap(socket);
    let reply = ws.request("/user/login", json!({"username": "pp-alice", "password": PASSWORD})).await;
    assert_eq!(reply["code"], 0, "{reply}");
    assert_eq!(login_log(&server, &token).await[0], entry("203.0.113.8", "ws"));
}

/// A header from a peer that is not a trusted proxy is never read: the request fails as bad
/// HTTP, nothing is logged, and the address stays the peer's, whatever the header says.
async fn an_untrusted_peer_s_header_is_not_read(backend: Backend) {
    // 127.0.0.1 is the peer here, trusted by no flag; 10.0.0.0/8 is some other balancer.
    let server = Server::start_with(backend, &["--trusted-proxy", "10.0.0.0/8"]).await;
    let (token, _) = register_at(&server.url(""), "pp-bob").await;
    let logged = login_log(&server, &token).await.len();
    let header = proxied("203.0.113.7:4711".parse().unwrap(), server.addr);
    for source in [None, Some("127.0.0.2".parse().unwrap())] {
        let mut stream = connect(&server, source).await;
        let answer = raw_http(&mut stream, &header, "POST", "/user/login", "", &login("pp-bob")).await;
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 400"), "{source:?}: {answer:?}");
    }
    assert_eq!(login_log(&server, &token).await.len(), logged, "a login went through");

    // The same peer without the header: served, under its own address.
    let mut stream = connect(&server, Some("127.0.0.2".parse().unwrap())).await;
    let answer =
        raw_http(&mut stream, &[], "POST", "/user/login", "x-forwarded-for: 203.0.113.7\r\n", &login("pp-bob")).await;
    assert_eq!(body(&answer)["code"], 0, "{answer}");
    assert_eq!(login_log(&server, &token).await[0], entry("127.0.0.2", "http"));
}

/// A trusted proxy's connections with a garbage header, one too short for its addresses, a
/// truncated one, one stalled inside the signature and one that sends nothing: each is dropped
/// on its own (the broken ones at once, the others at the 5 s header timeout), and meanwhile
/// other clients are served at once.
async fn broken_and_stalled_headers_hold_up_nobody(backend: Backend) {
    let server = Server::start_with(backend, &["--trusted-proxy", "127.0.0.1/32"]).await;
    let (token, _) = register_at(&server.url(""), "pp-carol").await;
    let started = Instant::now();

    let mut garbage = connect(&server, None).await;
    garbage.write_all(&header(0x2f, 0x11, &[0; 12])).await.unwrap();
    let mut short = connect(&server, None).await;
    short.write_all(&header(0x21, 0x11, &[0; 4])).await.unwrap();
    let mut truncated = connect(&server, None).await;
    truncated.write_all(&proxied("203.0.113.7:4711".parse().unwrap(), server.addr)[..20]).await.unwrap();
    let mut stalled = connect(&server, None).await;
    stalled.write_all(&SIGNATURE[..7]).await.unwrap();
    let mut silent = connect(&server, None).await;

    // Others are served meanwhile, with or without a header of their own.
    let mut prompt = connect(&server, None).await;
    let header = proxied("203.0.113.9:4711".parse().unwrap(), server.addr);
    let answer = raw_http(&mut prompt, &header, "POST", "/user/login", "", &login("pp-carol")).await;
    assert_eq!(body(&answer)["code"], 0, "{answer}");
    assert_eq!(login_log(&server, &token).await[0], entry("203.0.113.9", "http"));
    let mut plain = Api::new(&server, Via::Http).await;
    plain.call("/user/login", json!({"username": "pp-carol", "password": PASSWORD})).await.ok();
    assert!(started.elapsed() < Duration::from_secs(3), "held up for {:?}", started.elapsed());

    // A header that cannot be read ends its connection at once; one that is not complete could
    // still be, and ends at the timeout.
    for stream in [&mut garbage, &mut short] {
        ended(stream).await;
    }
    assert!(started.elapsed() < Duration::from_secs(3), "a broken header was dropped late");
    for stream in [&mut truncated, &mut stalled, &mut silent] {
        ended(stream).await;
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(4500) && elapsed < Duration::from_secs(9), "stalled for {elapsed:?}");
}

/// Waits until the server ends the connection, having sent nothing: a close, or a reset when
/// it dropped bytes it had not read.
async fn ended(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await.expect("the server ended it in time");
    match read {
        Ok(_) => assert!(rest.is_empty(), "the server answered {:?}", String::from_utf8_lossy(&rest)),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset),
    }
}

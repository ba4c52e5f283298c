//! PROXY protocol v2 from trusted load balancers (haproxy's `send-proxy-v2`): the listener
//! that hands axum each connection with the address of the client it carries.
//!
//! A balancer that speaks PROXY writes a binary header before the first HTTP byte, naming the
//! client it accepted the connection from. That works the same for HTTP and WebSocket, and
//! needs no header a client could also write.
//!
//! - Only a peer in `--trusted-proxy` may name a client this way. From anyone else nothing is
//!   looked at: the bytes go to HTTP untouched, and a PROXY header is just a bad request.
//! - A trusted peer may also not send one (a balancer that uses `X-Forwarded-For`, a health
//!   check): the first bytes are only peeked at, and anything but the v2 signature is left for
//!   HTTP.
//! - The accept loop only accepts. A trusted peer's connection gets a task of its own to read
//!   its header, bounded in time ([`HEADER_TIMEOUT`]) and size ([`MAX_HEADER`]), so that one
//!   slow or broken connection holds up nobody else; a bad header drops that connection only.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use ipnet::IpNet;
use proxy_header::{ParseConfig, Protocol, ProxyHeader};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What a PROXY v2 header starts with. It cannot start an HTTP request (it holds a NUL byte
/// and an empty request line), so a peek can tell the two apart.
pub const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The fixed part of a v2 header: the signature, version and command, family and protocol,
/// and the length of the rest.
const FIXED: usize = 16;

/// Largest header accepted: the fixed part, two IPv6 addresses with ports (36 bytes) and room
/// to spare for the TLVs a balancer may append (TLS details, a unique id, an authority).
pub const MAX_HEADER: usize = 4096;

/// How long a trusted peer has to send its whole header once its connection is accepted. A
/// trusted peer that sends nothing at all in that time is dropped too: until its first bytes
/// there is no telling whether a header is coming.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the start of a header that arrived split is looked at again: a peek answers at
/// once while any byte is waiting, so waiting for the rest by peeking would spin. A balancer
/// writes the header in one segment; this is only for the odd one that does not.
const SPLIT_RETRY: Duration = Duration::from_millis(10);

/// Connections ready for axum, waiting for its accept loop to take them.
const READY_QUEUE: usize = 128;

/// Where a connection comes from, as the transport knows it: the client a trusted proxy named
/// in a PROXY v2 header, else the TCP peer. [`super::client_ip`] turns it into the client's
/// address for limits and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, ProxyListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ProxyListener>) -> Self {
        *stream.remote_addr()
    }
}

/// A TCP listener that reads the PROXY v2 header of trusted peers' connections before axum
/// gets them. Its accept loop runs in a task of its own, which ends (closing the socket) once
/// this listener is dropped.
pub struct ProxyListener {
    ready: mpsc::Receiver<(TcpStream, Peer)>,
    local: SocketAddr,
}

impl ProxyListener {
    /// Starts accepting on `listener`; PROXY headers are read from peers in `trusted` only.
    pub fn new(listener: TcpListener, trusted: Vec<IpNet>) -> io::Result<ProxyListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        tokio::spawn(accept_loop(listener, trusted, tx));
        Ok(ProxyListener { ready, local })
    }
}

impl Listener for ProxyListener {
    type Io = TcpStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (TcpStream, Peer) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop ends only once this listener is gone, so this is never reached;
            // if it were, accepting nothing more is all there is left to do.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Peer> {
        Ok(Peer(self.local))
    }
}

/// Accepts connections until `ready` closes: an untrusted peer's straight to axum, a trusted
/// peer's through a task that reads its PROXY header first.
async fn accept_loop(listener: TcpListener, trusted: Vec<IpNet>, ready: mpsc::Sender<(TcpStream, Peer)>) {
    loop {
        let accepted = tokio::select! {
            _ = ready.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (mut stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(err) => {
                accept_failed(err).await;
                continue;
            }
        };
        if !trusts(&trusted, peer.ip()) {
            if ready.send((stream, Peer(peer))).await.is_err() {
                return;
            }
            continue;
        }
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HEADER_TIMEOUT, read_header(&mut stream, peer)).await {
                Ok(Ok(client)) => {
                    // Fails only when the server is shutting down: the connection just ends.
                    let _ = ready.send((stream, Peer(client))).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, error = %err, "bad PROXY header, connection dropped"),
                Err(_) => tracing::debug!(%peer, "PROXY header not complete in time, connection dropped"),
            }
        });
    }
}

/// What axum's own listener does on an accept error: a connection that failed before it was
/// accepted is nobody's concern; anything else (out of descriptors) is logged and waited out,
/// since connections closing will free what is short.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(err.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %err, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Why a trusted peer's connection was dropped before HTTP.
#[derive(Debug, thiserror::Error)]
enum BadHeader {
    #[error("the connection closed before sending anything")]
    Closed,
    #[error("a PROXY header of {0} bytes, over the {MAX_HEADER}-byte limit")]
    TooLong(usize),
    #[error("a malformed PROXY v2 header: {0}")]
    Malformed(proxy_header::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// How the first bytes of a connection begin.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    /// Not with the v2 signature: HTTP, or anything else HTTP will judge.
    NotProxy,
    /// With as much of the signature and the fixed part as has arrived; more is needed.
    Partial,
    /// With a v2 header's fixed part: the whole header is this many bytes.
    Header(usize),
}

/// Classifies the first bytes of a connection (at most [`FIXED`] are looked at).
fn classify(start: &[u8]) -> Start {
    let signature = &start[..start.len().min(SIGNATURE.len())];
    if !SIGNATURE.starts_with(signature) {
        return Start::NotProxy;
    }
    match start.get(FIXED - 2..FIXED) {
        Some(&[high, low]) => Start::Header(FIXED + usize::from(u16::from_be_bytes([high, low]))),
        _ => Start::Partial,
    }
}

/// Reads the PROXY v2 header at the start of `stream`, if there is one, consuming exactly its
/// bytes, and answers the client's address; without a header, nothing is consumed and the
/// answer is `peer`.
async fn read_header(stream: &mut TcpStream, peer: SocketAddr) -> Result<SocketAddr, BadHeader> {
    let mut start = [0u8; FIXED];
    let total = loop {
        let seen = stream.peek(&mut start).await?;
        match classify(&start[..seen]) {
            Start::NotProxy => return Ok(peer),
            Start::Header(total) => break total,
            Start::Partial if seen == 0 => return Err(BadHeader::Closed),
            Start::Partial => tokio::time::sleep(SPLIT_RETRY).await,
        }
    };
    if total > MAX_HEADER {
        return Err(BadHeader::TooLong(total));
    }
    let mut header = vec![0u8; total];
    stream.read_exact(&mut header).await?;
    client_of(&header, peer)
}

/// The client a whole v2 header names: its source address for a proxied TCP connection. A
/// `LOCAL` header (the balancer's own connection, such as a health check), and one whose
/// addresses are unspecified, Unix sockets or UDP, names no TCP client: `peer` stands.
fn client_of(header: &[u8], peer: SocketAddr) -> Result<SocketAddr, BadHeader> {
    let config = ParseConfig { include_tlvs: false, allow_v1: false, allow_v2: true };
    let (parsed, _) = ProxyHeader::parse(header, config).map_err(BadHeader::Malformed)?;
    Ok(match parsed.proxied_address() {
        Some(address) if address.protocol == Protocol::Stream => address.source,
        _ => peer,
    })
}

/// Whether `ip` is one of the trusted proxies; an IPv4 address reached over IPv6
/// (`::ffff:a.b.c.d`) counts as the IPv4 address it is.
pub(super) fn trusts(trusted: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use tokio::io::AsyncWriteExt;

    use super::*;

    /// The TCP peer the connections of these tests come from.
    fn peer() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    /// A v2 header: version 2 with `command` (0 LOCAL, 1 PROXY), `family` (address family and
    /// protocol) and `body` (addresses and TLVs).
    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut header = SIGNATURE.to_vec();
        header.extend_from_slice(&[0x20 | command, family]);
        header.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        header.extend_from_slice(body);
        header
    }

    /// The address block of a TCP over IPv4 header from `source`:4711 to 127.0.0.1:8080.
    fn tcp4(source: [u8; 4]) -> Vec<u8> {
        [&source[..], &[127, 0, 0, 1], &4711u16.to_be_bytes(), &8080u16.to_be_bytes()].concat()
    }

    #[test]
    fn the_start_of_a_connection_is_told_apart() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Start::NotProxy);
        assert_eq!(classify(b"\r\n\r\nGET"), Start::NotProxy);
        assert_eq!(classify(b"PROXY TCP4 "), Start::NotProxy, "version 1 is not accepted");
        assert_eq!(classify(b""), Start::Partial);
        assert_eq!(classify(b"\r\n\r\n\0"), Start::Partial);
        assert_eq!(classify(&[&SIGNATURE[..], &[0x21, 0x11, 0]].concat()), Start::Partial);
        assert_eq!(classify(&v2(1, 0x11, &tcp4([203, 0, 113, 7]))[..FIXED]), Start::Header(28));
        assert_eq!(classify(&[&SIGNATURE[..], &[0x21, 0x11, 0xff, 0xff]].concat()), Start::Header(FIXED + 65535));
    }

    #[test]
    fn headers_name_tcp_clients_only() {
        let client = |header: Vec<u8>| client_of(&header, peer()).map_err(|e| e.to_string());
        assert_eq!(client(v2(1, 0x11, &tcp4([203, 0, 113, 7]))), Ok("203.0.113.7:4711".parse().unwrap()));
        let v6 = [
            &Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7).octets()[..],
            &Ipv6Addr::LOCALHOST.octets(),
            &[0x12, 0x67, 0x1f, 0x90],
        ]
        .concat();
        assert_eq!(client(v2(1, 0x21, &v6)), Ok("[2001:db8::7]:4711".parse().unwrap()));
        // TLVs after the addresses are skipped.
        let with_tlvs = [tcp4([198, 51, 100, 1]), vec![0x05, 0x00, 0x02, b'i', b'd']].concat();
        assert_eq!(client(v2(1, 0x11, &with_tlvs)), Ok("198.51.100.1:4711".parse().unwrap()));
        // The balancer's own connections (LOCAL), and addresses that are no TCP client's.
        assert_eq!(client(v2(0, 0x00, &[])), Ok(peer()));
        assert_eq!(client(v2(0, 0x11, &tcp4([203, 0, 113, 7]))), Ok(peer()), "LOCAL ignores its addresses");
        assert_eq!(client(v2(1, 0x00, &[])), Ok(peer()));
        assert_eq!(client(v2(1, 0x12, &tcp4([203, 0, 113, 7]))), Ok(peer()), "UDP");
        assert_eq!(client(v2(1, 0x31, &[0; 216])), Ok(peer()), "Unix sockets");
    }

    #[test]
    fn malformed_headers_are_refused() {
        let refused = |header: Vec<u8>| client_of(&header, peer()).is_err();
        let mut version1 = v2(1, 0x11, &tcp4([203, 0, 113, 7]));
        version1[12] = 0x11;
        assert!(refused(version1), "version 1 in a v2 header");
        assert!(refused(v2(2, 0x11, &tcp4([203, 0, 113, 7]))), "unknown command");
        assert!(refused(v2(1, 0x41, &tcp4([203, 0, 113, 7]))), "unknown family");
        assert!(refused(v2(1, 0x11, &tcp4([203, 0, 113, 7])[..8])), "addresses cut short");
        assert!(refused(v2(1, 0x21, &tcp4([203, 0, 113, 7]))), "IPv6 in an IPv4 block");
    }

    /// A connected pair of loopback sockets: (client, server).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        (client, listener.accept().await.unwrap().0)
    }

    /// What is left on `stream` after the header, up to the client's end.
    async fn rest(stream: &mut TcpStream) -> Vec<u8> {
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        rest
    }

    #[tokio::test]
    async fn exactly_the_header_is_consumed() {
        let (mut client, mut server) = pair().await;
        client
            .write_all(&[v2(1, 0x11, &tcp4([203, 0, 113, 7])), b"GET / HTTP/1.1\r\n".to_vec()].concat())
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        assert_eq!(read_header(&mut server, peer()).await.unwrap(), "203.0.113.7:4711".parse().unwrap());
        assert_eq!(rest(&mut server).await, b"GET / HTTP/1.1\r\n");

        // Without a header nothing is consumed.
        let (mut client, mut server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        client.shutdown().await.unwrap();
        assert_eq!(read_header(&mut server, peer()).await.unwrap(), peer());
        assert_eq!(rest(&mut server).await, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_header_split_across_segments_is_waited_for() {
        let (mut client, mut server) = pair().await;
        let header = v2(1, 0x11, &tcp4([203, 0, 113, 7]));
        let reading =
            tokio::spawn(async move { (read_header(&mut server, peer()).await.map_err(|e| e.to_string()), server) });
        for part in [&header[..5], &header[5..14], &header[14..20], &header[20..]] {
            client.write_all(part).await.unwrap();
            client.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        client.write_all(b"GET").await.unwrap();
        client.shutdown().await.unwrap();
        let (client_addr, mut server) = reading.await.unwrap();
        assert_eq!(client_addr, Ok("203.0.113.7:4711".parse().unwrap()));
        assert_eq!(rest(&mut server).await, b"GET");
    }

    #[tokio::test]
    async fn oversized_truncated_and_empty_headers_fail() {
        let (mut client, mut server) = pair().await;
        client.write_all(&[&SIGNATURE[..], &[0x21, 0x11, 0x10, 0x00]].concat()).await.unwrap();
        assert!(matches!(read_header(&mut server, peer()).await, Err(BadHeader::TooLong(4112))));

        let (mut client, mut server) = pair().await;
        client.write_all(&v2(1, 0x11, &tcp4([203, 0, 113, 7]))[..20]).await.unwrap();
        client.shutdown().await.unwrap();
        assert!(matches!(read_header(&mut server, peer()).await, Err(BadHeader::Io(_))));

        let (mut client, mut server) = pair().await;
        client.shutdown().await.unwrap();
        assert!(matches!(read_header(&mut server, peer()).await, Err(BadHeader::Closed)));
    }

    #[tokio::test]
    async fn a_stalled_header_holds_up_nobody_and_untrusted_bytes_are_left_alone() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut proxied = ProxyListener::new(listener, vec!["127.0.0.1/32".parse().unwrap()]).unwrap();
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled.write_all(&SIGNATURE[..6]).await.unwrap();
        let mut prompt = TcpStream::connect(addr).await.unwrap();
        prompt.write_all(&v2(1, 0x11, &tcp4([203, 0, 113, 7]))).await.unwrap();
        let (_, Peer(client)) =
            tokio::time::timeout(Duration::from_secs(2), proxied.accept()).await.expect("not held up");
        assert_eq!(client, "203.0.113.7:4711".parse().unwrap());

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut plain = ProxyListener::new(listener, vec!["10.0.0.0/8".parse().unwrap()]).unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let header = v2(1, 0x11, &tcp4([203, 0, 113, 7]));
        client.write_all(&header).await.unwrap();
        client.shutdown().await.unwrap();
        let (mut stream, Peer(from)) = plain.accept().await;
        assert_eq!(from, client.local_addr().unwrap());
        assert_eq!(rest(&mut stream).await, header);
    }

    #[test]
    fn ipv4_reached_over_ipv6_is_trusted_as_ipv4() {
        let trusted = ["127.0.0.1/32".parse().unwrap()];
        assert!(trusts(&trusted, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!trusts(&trusted, "127.0.0.2".parse().unwrap()));
    }
}

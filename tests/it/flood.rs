//! A malformed-frame flood: every bad frame gets a typed error or a close, the server stays up,
//! and a healthy client on the same node keeps being served.

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::harness::{Server, Via, Wire, Ws, device, user};
use crate::on_both;

on_both!(ten_thousand_bad_frames);

/// The bad frames, by kind: what each must get back.
fn bad_frames() -> Vec<(&'static str, Message, Expect)> {
    let raw_text = |bytes: Vec<u8>| Message::Frame(Frame::message(bytes, OpCode::Data(Data::Text), true));
    let deep_json = "[".repeat(100_000 / 2);
    // MessagePack arrays of one element, nested far deeper than any decoder should recurse.
    let deep_msgpack = vec![0x91u8; 60_000];
    vec![
        ("bad JSON", Message::Text("{\"type\":\"req\",".into()), Expect::Error("frame.malformed")),
        ("not an object", Message::Text("[1,2,3]".into()), Expect::Error("frame.malformed")),
        ("unknown type", Message::Text(r#"{"type":"zap","id":1}"#.into()), Expect::Error("frame.unknown_type")),
        (
            "a raw NUL",
            Message::Text("{\"type\":\"req\",\"id\":1,\"route\":\"/user/\u{0}info\"}".into()),
            Expect::Error("frame.malformed"),
        ),
        (
            "an escaped NUL",
            Message::Text(r#"{"type":"req","id":1,"route":"/user/\u0000info"}"#.into()),
            Expect::Error("route.unknown"),
        ),
        (
            "huge numbers",
            Message::Text(r#"{"type":"req","id":123456789012345678901234567890,"route":"/x"}"#.into()),
            Expect::Error("frame.malformed"),
        ),
        (
            "huge float",
            Message::Text(r#"{"type":"req","id":1,"route":"/message/history","data":{"limit":1e400}}"#.into()),
            Expect::Error("frame.malformed"),
        ),
        ("deep JSON", Message::Text(deep_json.into()), Expect::Error("frame.malformed")),
        ("deep MessagePack", Message::Binary(deep_msgpack.into()), Expect::Error("frame.malformed")),
        ("bad MessagePack", Message::Binary(vec![0xc1, 0xff, 0x00].into()), Expect::Error("frame.malformed")),
        ("invalid UTF-8", raw_text(vec![b'{', 0xff, 0xfe, b'}']), Expect::Close(1007)),
        ("oversized", Message::Text("x".repeat(70 * 1024).into()), Expect::Close(1009)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Error(&'static str),
    Close(u16),
}

async fn ten_thousand_bad_frames(backend: crate::harness::Backend) {
    let server = Server::start(backend).await;
    let (healthy, _) = user(&server, Via::Http, "flood-healthy").await;
    let mut healthy_ws = device(&server, &healthy, Wire::Json).await;
    let kinds = bad_frames();
    let mut sent = 0;
    let mut answered = std::collections::BTreeMap::<&str, usize>::new();
    let mut socket = Ws::open(&server, Wire::Json).await;
    while sent < 10_000 {
        let (name, frame, expect) = &kinds[sent % kinds.len()];
        socket.socket.send(frame.clone()).await.expect("send a bad frame");
        sent += 1;
        match *expect {
            Expect::Error(reason) => {
                let reply = socket.recv().await.unwrap_or_else(|c| panic!("{name}: closed {c:?}"));
                assert_eq!(
                    (reply["type"].as_str(), reply["error"].as_str()),
                    (Some("res"), Some(reason)),
                    "{name}: {reply}"
                );
            }
            Expect::Close(code) => {
                let closed = socket.closed().await;
                assert_eq!(closed.code, Some(code), "{name}");
                socket = Ws::open(&server, Wire::Json).await;
            }
        }
        *answered.entry(name).or_default() += 1;
        // The healthy client is served throughout.
        if sent % 1000 == 0 {
            let reply = healthy_ws.request("/user/info", json!({})).await;
            assert_eq!(reply["code"], 0, "{reply}");
        }
    }
    assert_eq!(answered.values().sum::<usize>(), 10_000);
    let status = reqwest::get(server.url("/healthz")).await.unwrap().status();
    assert_eq!(status, 200, "the server is up after the flood");
    let reply: Value = healthy_ws.request("/conversation/unread", json!({})).await;
    assert_eq!(reply["code"], 0);
}

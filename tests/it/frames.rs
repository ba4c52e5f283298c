//! Bad input over the socket: each gets a typed error or the documented close, and neither the
//! connection (where it survives) nor the server goes down.

use futures::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Backend, Server, Wire, Ws};
use crate::on_both;

on_both!(
    compression_is_not_negotiated,
    shutdown_closes_sessions_1001,
    bad_frames_get_typed_errors,
    oversized_frame_closes_1009,
    invalid_utf8_closes_1007,
    ping_and_pushes_in_the_session_format
);

async fn bad_frames_get_typed_errors(backend: Backend) {
    let server = Server::start(backend).await;
    for wire in [Wire::Json, Wire::MsgPack] {
        let mut ws = Ws::open(&server, wire).await;

        // Undecodable bytes in either frame type.
        ws.socket.send(Message::Text("{not json".into())).await.unwrap();
        let reply = ws.recv().await.unwrap();
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_i64(), reply["error"].as_str()),
            (Some("res"), Some(1), Some("frame.malformed"))
        );
        assert!(reply["id"].is_null());
        ws.socket.send(Message::Binary(vec![0xc1, 0xff, 0x00].into())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap()["error"], "frame.malformed");
        // Valid encodings of the wrong shape.
        ws.socket.send(Message::Text("[1,2,3]".into())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap()["error"], "frame.malformed");
        ws.socket.send(Message::Text("\"\\u0000\"".into())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap()["error"], "frame.malformed");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        ws.socket.send(Message::Text(deep.into())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap()["error"], "frame.malformed");
        ws.socket.send(Message::Text(r#"{"type":"req","id":1e999,"route":"/user/info"}"#.into())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap()["error"], "frame.malformed");

        ws.send_value(&json!({"type": "shout", "id": 9})).await;
        let reply = ws.recv().await.unwrap();
        assert_eq!((reply["error"].as_str(), &reply["id"]), (Some("frame.unknown_type"), &json!(9)));
        ws.send_value(&json!({"type": "req", "route": "/user/info"})).await;
        assert_eq!(ws.recv().await.unwrap()["error"], "frame.malformed");
        ws.send_value(&json!({"type": "req", "id": "r1", "data": {}})).await;
        let reply = ws.recv().await.unwrap();
        assert_eq!((reply["error"].as_str(), &reply["id"]), (Some("frame.malformed"), &json!("r1")));
        ws.send_value(&json!({"type": "req", "id": 3, "route": "/user/login", "data": "nope"})).await;
        assert_eq!(ws.recv().await.unwrap()["error"], "frame.malformed");

        let reply = ws.request("/no/such/route", json!({})).await;
        assert_eq!((reply["code"].as_i64(), reply["error"].as_str()), (Some(1), Some("route.unknown")));
        assert!(reply["message"].is_string());
        let reply = ws.request("/user/login", json!({"username": ["x"], "password": "long enough"})).await;
        assert_eq!(reply["error"], "validation.username");
        let reply = ws.request("/user/login", json!({"username": "someone"})).await;
        assert_eq!(reply["error"], "validation.password");
        let reply = ws.request("/user/register", json!({"username": "nul\u{0}byte", "password": "long enough"})).await;
        assert_eq!(reply["error"], "validation.username");

        // The connection is still good for real work.
        let name = format!("survivor-{wire:?}").to_lowercase();
        let reply = ws.request("/user/register", json!({"username": name, "password": "long enough"})).await;
        assert_eq!(reply["code"], 0, "{reply}");
    }
}

async fn oversized_frame_closes_1009(backend: Backend) {
    let server = Server::start_with(backend, &["--max-frame-bytes", "4096"]).await;
    let mut ws = Ws::open(&server, Wire::Json).await;
    let big = json!({"type": "req", "id": 1, "route": "/user/login", "data": {"username": "x".repeat(5000), "password": "y"}});
    ws.send_value(&big).await;
    let closed = ws.closed().await;
    assert_eq!(closed.code, Some(1009), "{closed:?}");
    // Under the limit is fine, and the server is still up.
    let mut ws = Ws::open(&server, Wire::Json).await;
    let reply = ws.request("/user/login", json!({"username": "x".repeat(3000), "password": "yyyyyyyy"})).await;
    assert_eq!(reply["error"], "auth.invalid_credentials");
}

async fn invalid_utf8_closes_1007(backend: Backend) {
    let server = Server::start(backend).await;
    let mut ws = Ws::open(&server, Wire::Json).await;
    // tungstenite's client checks UTF-8 before sending a Text message, so send the raw frame.
    let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    ws.socket.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(ws.closed().await.code, Some(1007));
    let mut ws = Ws::open(&server, Wire::Json).await;
    assert_eq!(ws.request("/nope", json!({})).await["error"], "route.unknown");
}

async fn ping_and_pushes_in_the_session_format(backend: Backend) {
    let server = Server::start(backend).await;
    for wire in [Wire::Json, Wire::MsgPack] {
        let mut ws = Ws::open(&server, wire).await;
        ws.send_value(&json!({"type": "ping"})).await;
        assert_eq!(ws.recv().await.unwrap(), json!({"type": "pong"}));
        // A reply uses its request's encoding, whatever the session's format.
        ws.socket.send(Message::Text(r#"{"type":"ping"}"#.into())).await.unwrap();
        let frame = tokio::time::timeout(crate::harness::WAIT, futures::StreamExt::next(&mut ws.socket))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(matches!(frame, Message::Text(_)), "{frame:?}");
        ws.socket
            .send(Message::Binary(rmp_serde::to_vec_named(&json!({"type":"ping"})).unwrap().into()))
            .await
            .unwrap();
        let frame = tokio::time::timeout(crate::harness::WAIT, futures::StreamExt::next(&mut ws.socket))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(matches!(frame, Message::Binary(_)), "{frame:?}");
    }
    // Bad handshakes: an unknown format, a bad token.
    assert!(Ws::connect(&server, Wire::Json, "format=xml", None).await.is_err());
    assert!(Ws::connect(&server, Wire::Json, "", Some("abc.def.ghi")).await.is_err());
}

async fn shutdown_closes_sessions_1001(backend: Backend) {
    let server = Server::start(backend).await;
    let mut anonymous = Ws::open(&server, Wire::Json).await;
    let mut bound = Ws::open(&server, Wire::MsgPack).await;
    let reply = bound.request("/user/register", json!({"username": "henry", "password": "henry's password"})).await;
    assert_eq!(reply["code"], 0);
    let stopping = tokio::spawn(server.stop());
    for ws in [&mut anonymous, &mut bound] {
        let closed = ws.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (Some(1001), "server shutting down"));
    }
    stopping.await.unwrap();
}

/// permessage-deflate is refused: a client that offers it gets a plain socket.
async fn compression_is_not_negotiated(backend: Backend) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = Server::start(backend).await;
    let mut request = format!("ws://{}/ws", server.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-extensions", "permessage-deflate; client_max_window_bits".parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert!(response.headers().get("sec-websocket-extensions").is_none(), "{:?}", response.headers());
    socket.send(Message::Text(r#"{"type":"ping"}"#.into())).await.unwrap();
    let pong = tokio::time::timeout(crate::harness::WAIT, futures::StreamExt::next(&mut socket))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Text(r#"{"type":"pong"}"#.into()));
}

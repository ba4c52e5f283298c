//! Faults: the database going away, a node killed mid-send, a graceful stop under load.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{OwnPostgres, Process, Server, WAIT, register_at};

async fn post(base: &str, token: &str, route: &str, data: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{base}{route}")).bearer_auth(token).json(&data).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// While PostgreSQL is down, requests fail fast with `unavailable` and the node stays up;
/// when it comes back, the node serves again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_fast_and_recovers() {
    let pg = OwnPostgres::start().await;
    let server = Server::node(&pg.url(), &[]).await;
    let base = format!("http://{}", server.addr);
    let (alice, _) = register_at(&base, "outage-alice").await;
    let (_, bob) = register_at(&base, "outage-bob").await;
    let send = |key: &'static str| json!({"chatType": "single", "to": bob, "kind": "text", "content": {"text": key}, "clientMsgId": key});
    assert_eq!(post(&base, &alice, "/message/send", send("before")).await.1["code"], 0);

    pg.stop().await;
    for (route, data) in
        [("/message/send", send("during")), ("/conversation/read", json!({"conversationId": "s:1:2", "seq": 1}))]
    {
        let started = Instant::now();
        let (status, body) = post(&base, &alice, route, data).await;
        assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")), "{route}: {body}");
        assert!(started.elapsed() < Duration::from_secs(3), "{route} took {:?} to fail", started.elapsed());
    }
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), 200, "the node stays up");
    assert_eq!(reqwest::get(format!("{base}/readyz")).await.unwrap().status(), 503, "and says it is not ready");

    pg.resume().await;
    let deadline = Instant::now() + WAIT;
    while reqwest::get(format!("{base}/readyz")).await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "the node did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, after) = post(&base, &alice, "/message/send", send("after")).await;
    assert_eq!(after["code"], 0, "{after}");
    let (_, retried) = post(&base, &alice, "/message/send", send("during")).await;
    assert_eq!(retried["code"], 0, "{retried}");
    // The message refused during the outage was not stored: its retry is new, after "after".
    assert_eq!(retried["data"]["message"]["seq"], 3);
    server.stop().await;
}

/// Senders pipelining on sockets, the node SIGKILLed mid-stream: every message that was
/// acknowledged is in the database afterwards, with its seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill() {
    let mut node = Process::start(
        &["--log", "warn", "--hash-concurrency", "1", "--rate-session", "100000", "--rate-user", "100000"],
        &[],
    )
    .await;
    let (alice, _) = register_at(&node.base, "crash-alice").await;
    let (_, bob) = register_at(&node.base, "crash-bob").await;
    let (ws, _) = tokio_tungstenite::connect_async(as_bearer(node.addr, &alice)).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let acked = tokio::spawn(async move {
        let mut acked = BTreeMap::new();
        while let Some(Ok(Message::Text(text))) = stream.next().await {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] == "res" && frame["code"] == 0 {
                let message = &frame["data"]["message"];
                acked.insert(message["clientMsgId"].as_str().unwrap().to_owned(), message["seq"].as_i64().unwrap());
            }
        }
        acked
    });
    let sender = tokio::spawn(async move {
        for i in 0.. {
            let frame = json!({"type": "req", "id": i, "route": "/message/send", "data": {
                "chatType": "single", "to": bob, "kind": "text", "content": {"text": format!("m{i}")}, "clientMsgId": format!("k{i}")}});
            if sink.send(Message::Text(frame.to_string().into())).await.is_err() {
                return i;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        0
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    node.kill();
    let attempted = sender.await.unwrap();
    let acked = acked.await.unwrap();
    assert!(acked.len() > 50, "only {} of {attempted} sends were acknowledged before the kill", acked.len());

    node.restart().await;
    let stored = all_messages(&node.base, &alice).await;
    for (key, seq) in &acked {
        assert_eq!(stored.get(key), Some(seq), "acknowledged {key} (seq {seq}) is not stored as acknowledged");
    }
    let seqs: Vec<i64> = stored.values().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    assert_eq!(seqs, (1..=stored.len() as i64).collect::<Vec<_>>(), "stored seqs are gapless");
}

/// The one conversation of a user, by listing.
async fn acked_conversation(base: &str, token: &str) -> String {
    let list: Value = reqwest::Client::new()
        .get(format!("{base}/conversation/list"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["data"]["conversations"][0]["conversationId"].as_str().unwrap().to_owned()
}

/// clientMsgId → seq of every message of the user's one conversation, paged by history.
async fn all_messages(base: &str, token: &str) -> BTreeMap<String, i64> {
    let conversation = acked_conversation(base, token).await;
    let http = reqwest::Client::new();
    let mut out = BTreeMap::new();
    let mut after = 0;
    loop {
        let after_s = after.to_string();
        let page: Value = http
            .get(format!("{base}/message/history"))
            .bearer_auth(token)
            .query(&[("conversationId", conversation.as_str()), ("afterSeq", after_s.as_str()), ("limit", "100")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for m in page["data"]["messages"].as_array().unwrap() {
            after = m["seq"].as_i64().unwrap();
            out.insert(m["clientMsgId"].as_str().unwrap().to_owned(), after);
        }
        if page["data"]["hasMore"] != true {
            return out;
        }
    }
}

/// SIGTERM while requests stream in: the socket closes with 1001 after a close handshake, every
/// request the server read is answered, and what is stored is exactly what was acknowledged, so
/// the unanswered requests (never read) are safe to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_answers_every_request_and_keeps_every_ack() {
    let node = Process::start(
        &["--log", "warn", "--hash-concurrency", "1", "--rate-session", "100000", "--rate-user", "100000"],
        &[],
    )
    .await;
    let (alice, _) = register_at(&node.base, "stop-alice").await;
    let (_, bob) = register_at(&node.base, "stop-bob").await;
    let (ws, _) = tokio_tungstenite::connect_async(as_bearer(node.addr, &alice)).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    for i in 0..300 {
        let frame = json!({"type": "req", "id": i, "route": "/message/send", "data": {
            "chatType": "single", "to": bob, "kind": "text", "content": {"text": format!("m{i}")}, "clientMsgId": format!("s{i}")}});
        sink.send(Message::Text(frame.to_string().into())).await.unwrap();
    }
    let mut acked = BTreeMap::new();
    let mut failed = Vec::new();
    let mut stopping = None;
    let mut node = Some(node);
    let close = loop {
        match tokio::time::timeout(WAIT, stream.next()).await.expect("the socket went quiet") {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                // Stop once the node answers the burst (on a loaded machine it may not have read
                // a frame yet when the burst is sent), with most of it still in flight.
                if frame["type"] == "res"
                    && let Some(mut node) = node.take()
                {
                    let stop = async move { node.terminate(Duration::from_secs(20)).await.map(|s| (s, node)) };
                    stopping = Some(tokio::spawn(stop));
                }
                if frame["type"] == "res" {
                    if frame["code"] == 0 {
                        let m = &frame["data"]["message"];
                        acked.insert(m["clientMsgId"].as_str().unwrap().to_owned(), m["seq"].as_i64().unwrap());
                    } else {
                        failed.push(frame);
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    // Answer the close, as a client does; the server waits for it before it lets go.
    let _ = sink.close().await;
    let stopping = stopping.expect("the node answered nothing before closing");
    let (status, mut node) = stopping.await.unwrap().expect("the node did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert_eq!(close, Some(1001));
    assert!(!acked.is_empty());
    assert!(failed.is_empty(), "requests read during the stop were refused: {failed:?}");
    node.restart().await;
    let stored = all_messages(&node.base, &alice).await;
    assert_eq!(stored, acked, "what is stored is exactly what was acknowledged");
}

/// The handshake of a socket to `addr` authenticated by `token` in its header.
fn as_bearer(addr: std::net::SocketAddr, token: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

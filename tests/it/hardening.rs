//! Limits and hostile input at the edge: heartbeats, token checks, origins, connection and
//! session limits.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{Api, Backend, Server, Via, Wire, Ws, device, user};
use crate::on_both;

on_both!(
    a_slow_consumer_is_dropped_and_nobody_waits,
    ready_push_grace_and_reaping,
    expired_token_ends_the_session,
    forged_tokens_are_refused,
    origins_and_limits,
    request_login_and_reset_rates
);

async fn request_login_and_reset_rates(backend: Backend) {
    let server = Server::start_with(
        backend,
        &["--rate-session", "5", "--login-attempts-per-minute", "3", "--resets-per-hour", "1"],
    )
    .await;
    let (alice, _) = user(&server, Via::Http, "rate-alice").await;

    // A burst past the session's bucket: typed refusals with a retry hint, then the close.
    let mut ws = device(&server, &alice, Wire::Json).await;
    for id in 0..40 {
        ws.send_value(&json!({"type": "req", "id": id, "route": "/user/info"})).await;
    }
    let (mut answered, mut limited) = (0, 0);
    let closed = loop {
        match ws.recv().await {
            Ok(frame) if frame["type"] == "res" && frame["code"] == 0 => answered += 1,
            Ok(frame) if frame["error"] == "rate_limited" => {
                assert!(frame["retryAfter"].as_u64().unwrap() > 0, "{frame}");
                limited += 1;
            }
            Ok(_) => continue,
            Err(closed) => break closed,
        }
    };
    // The burst (10) and whatever refilled while the server read the 40 frames.
    assert!((5..=20).contains(&answered), "answered {answered}");
    assert!(limited >= 10, "limited {limited}");
    assert_eq!((closed.code, closed.reason.as_str()), (Some(1008), "rate limit exceeded"));
    // Other sessions of the user are not punished for it.
    let mut other = device(&server, &alice, Wire::Json).await;
    assert_eq!(other.request("/user/info", json!({})).await["code"], 0);

    // Login attempts per username: past the limit even the right password waits.
    let mut anon = Api::new(&server, Via::Http).await;
    for _ in 0..3 {
        anon.call("/user/login", json!({"username": "rate-alice", "password": "wrong password"}))
            .await
            .fails("auth.invalid_credentials");
    }
    let reply = anon.call("/user/login", json!({"username": "rate-alice", "password": "a long enough password"})).await;
    reply.fails("rate_limited");
    assert_eq!(reply.status, Some(429));

    // Reset requests per account: the same answer, but only one notification.
    let first = anon.call("/user/changePassword", json!({"username": "rate-alice"})).await.ok();
    let second = anon.call("/user/changePassword", json!({"username": "rate-alice"})).await.ok();
    assert_eq!(first, second);
    server.outbox(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.outbox(1).await.len(), 1, "a second notification was sent");
}

/// The key the harness gives every server.
const KEY: &[u8] = b"integration-tests-shared-signing-key-0123456789";

async fn ready_push_grace_and_reaping(backend: Backend) {
    let server = Server::start_with(
        backend,
        &["--ping-interval-secs", "1", "--ping-timeout-secs", "1", "--auth-grace-secs", "1"],
    )
    .await;
    let (mut alice, alice_id) = user(&server, Via::Http, "hb-alice").await;

    // Authenticated at the handshake: session.ready comes first, with the heartbeat terms.
    let mut ws = Ws::connect(&server, Wire::Json, "", alice.token.as_deref()).await.unwrap();
    let ready = ws.recv().await.unwrap();
    assert_eq!(ready["event"], "session.ready");
    assert_eq!(
        ready["data"],
        json!({"userId": alice_id, "node": ready["data"]["node"], "pingInterval": 1000, "pongTimeout": 1000})
    );
    // Authenticated later, by login: session.ready too.
    let mut later = Ws::open(&server, Wire::MsgPack).await;
    later.request("/user/login", json!({"username": "hb-alice", "password": "a long enough password"})).await;
    assert_eq!(later.push("session.ready").await["data"]["userId"], alice_id.as_str());

    // A socket that never authenticates is closed after the grace period.
    let started = Instant::now();
    let mut anonymous = Ws::open(&server, Wire::Json).await;
    let closed = anonymous.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (Some(1008), "authentication timeout"));
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());

    // A peer that goes silent (never reads, so never answers pings) is reaped within
    // interval + timeout of its last frame, and goes offline.
    drop(later);
    drop(ws);
    let silent = device(&server, &alice, Wire::Json).await;
    let went_silent = Instant::now();
    let deadline = went_silent + Duration::from_secs(8);
    loop {
        let online = alice.call("/user/online", json!({"ids": alice_id})).await.ok();
        if online["online"][&alice_id] == false {
            break;
        }
        assert!(Instant::now() < deadline, "the silent socket was never reaped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(went_silent.elapsed() >= Duration::from_millis(1500), "reaped too early: {:?}", went_silent.elapsed());
    drop(silent);
}

async fn expired_token_ends_the_session(backend: Backend) {
    let server = Server::start_with(backend, &["--token-ttl-secs", "4"]).await;
    let (alice, _) = user(&server, Via::Http, "exp-alice").await;
    let mut ws = device(&server, &alice, Wire::Json).await;
    assert_eq!(ws.push("session.kicked").await["data"]["reason"], "token_expired");
    let closed = ws.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (Some(4001), "token expired"));
    let mut late = Api::with_token(&server, alice.token.clone().unwrap());
    late.call("/user/info", json!({})).await.fails("auth.token_invalid");
}

fn forged(header: &Header, claims: &serde_json::Value, key: &[u8]) -> String {
    encode(header, claims, &EncodingKey::from_secret(key)).unwrap()
}

async fn forged_tokens_are_refused(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, alice_id) = user(&server, Via::Http, "forge-alice").await;
    let now = chatgate::now_ms() / 1000;
    let claims = |iss: &str, iat: i64, nbf: i64, exp: i64| json!({"sub": alice_id, "iss": iss, "iat": iat, "nbf": nbf, "exp": exp, "jti": "00ff00ff00ff00ff", "ver": 0});
    let good = claims("chatgate", now, now, now + 3600);
    // The control: a token we mint the same way is accepted, so the refusals below are real.
    let control = forged(&Header::new(Algorithm::HS256), &good, KEY);
    assert!(Ws::connect(&server, Wire::Json, "", Some(&control)).await.is_ok());

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let mut tampered_parts: Vec<String> = alice.token.clone().unwrap().split('.').map(str::to_owned).collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&tampered_parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("1");
    tampered_parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let refused = [
        ("alg none", unsigned),
        ("wrong algorithm", forged(&Header::new(Algorithm::HS512), &good, KEY)),
        (
            "expired",
            forged(&Header::new(Algorithm::HS256), &claims("chatgate", now - 7200, now - 7200, now - 3600), KEY),
        ),
        (
            "not yet valid",
            forged(&Header::new(Algorithm::HS256), &claims("chatgate", now, now + 3600, now + 7200), KEY),
        ),
        ("wrong issuer", forged(&Header::new(Algorithm::HS256), &claims("someone-else", now, now, now + 3600), KEY)),
        (
            "another key",
            forged(&Header::new(Algorithm::HS256), &good, b"a-completely-different-signing-key-0123456789"),
        ),
        ("tampered payload", tampered_parts.join(".")),
    ];
    for (what, token) in refused {
        assert!(
            Ws::connect(&server, Wire::Json, "", Some(&token)).await.is_err(),
            "{what} was accepted at the handshake"
        );
        let mut api = Api::with_token(&server, token);
        let reply = api.call("/user/info", json!({})).await;
        reply.fails("auth.token_invalid");
        assert_eq!(reply.status, Some(401), "{what}");
    }
}

async fn origins_and_limits(backend: Backend) {
    let server = Server::start_with(
        backend,
        &["--allowed-origins", "https://chat.example", "--max-connections", "3", "--max-sessions-per-user", "2"],
    )
    .await;
    let (alice, _) = user(&server, Via::Http, "limits-alice").await;
    let with_origin = |origin: &'static str| {
        let mut request = format!("ws://{}/ws", server.addr).into_client_request().unwrap();
        request.headers_mut().insert("origin", origin.parse().unwrap());
        request
    };
    // Exact matches only: no suffix, prefix or path tricks.
    let ok = tokio_tungstenite::connect_async(with_origin("https://chat.example")).await;
    assert!(ok.is_ok());
    drop(ok);
    for origin in [
        "https://chat.example.evil.test",
        "https://evil.test",
        "http://chat.example",
        "https://evil.test/https://chat.example",
        "null",
    ] {
        match tokio_tungstenite::connect_async(with_origin(origin)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403, "{origin}"),
            other => panic!("{origin} was not refused: {:?}", other.map(|_| ())),
        }
    }

    // Sessions per user: a third session ends the oldest.
    let mut first = device(&server, &alice, Wire::Json).await;
    let _second = device(&server, &alice, Wire::Json).await;
    let _third = device(&server, &alice, Wire::Json).await;
    assert_eq!(first.push("session.kicked").await["data"]["reason"], "session_limit");
    assert_eq!(first.closed().await.code, Some(4001));

    // Connections per node: the node refuses with 503 when full, and admits again once a
    // place frees up.
    // The kicked session's place comes back once its socket has closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    let _fourth = loop {
        match Ws::connect(&server, Wire::Json, "", None).await {
            Ok(ws) => break ws,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("no place ever freed up: {e}"),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Ws::connect(&server, Wire::Json, "", None).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 503);
                break;
            }
            Ok(extra) => {
                // The kicked session's place may not be free yet; this one took it.
                drop(extra);
                assert!(Instant::now() < deadline, "the node never reported itself full");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(reqwest::get(server.url("/healthz")).await.unwrap().status(), 200, "a full node still serves HTTP");
    drop(_fourth);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Ws::connect(&server, Wire::Json, "", None).await.is_err() {
        assert!(Instant::now() < deadline, "a freed place was never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A member that never reads is dropped once its queue passes its byte budget; the others
/// receive everything, in order, and nobody waits for it.
async fn a_slow_consumer_is_dropped_and_nobody_waits(backend: Backend) {
    let server = Server::start_with(backend, &["--outbound-queue-bytes", "262144"]).await;
    let (mut owner, _) = user(&server, Via::Http, "flood-owner").await;
    let (fast, fast_id) = user(&server, Via::Http, "flood-fast").await;
    let (slow, slow_id) = user(&server, Via::Http, "flood-slow").await;
    let gid = owner.call("/group/room/add", json!({"name": "Flood", "members": [fast_id, slow_id]})).await.ok()["group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut fast_ws = device(&server, &fast, Wire::Json).await;
    let _slow_ws = device(&server, &slow, Wire::Json).await;
    const MESSAGES: usize = 300;
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while seqs.len() < MESSAGES {
            let m = fast_ws.push("message.new").await["data"]["message"].clone();
            if m["kind"] == "custom" {
                seqs.push(m["seq"].as_i64().unwrap());
            }
        }
        seqs
    });
    let blob = "x".repeat(50_000);
    for n in 0..MESSAGES {
        let body = json!({"chatType": "group", "to": gid, "kind": "custom", "content": {"data": blob}, "clientMsgId": format!("f{n}")});
        owner.call("/message/send", body).await.ok();
    }
    let seqs = tokio::time::timeout(Duration::from_secs(60), reader).await.expect("the fast member waited").unwrap();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "in order, none missing");
    // The slow member was dropped: offline, and counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let online = owner.call("/user/online", json!({"ids": slow_id})).await.ok();
        if online["online"][&slow_id] == false {
            break;
        }
        assert!(Instant::now() < deadline, "the slow consumer was never dropped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    let drops = metrics.lines().find(|l| l.starts_with("chatgate_queue_drops_total")).unwrap();
    assert!(!drops.ends_with(" 0"), "{drops}");
}

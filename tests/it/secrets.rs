//! What the server writes to its log: never a password, a token or a reset secret.

use std::time::Duration;

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::Process;

/// A full journey against the real binary at `debug` level, then a scan of all it logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log() {
    let mut server = Process::start(&["--log", "debug"], &[]).await;
    let base = server.base.clone();
    let port = server.addr.port();
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let post = |path: &str, body: Value| http.post(format!("{base}{path}")).json(&body).send();
    let password = "Sup3r-Secret-Passw0rd";
    let reg: Value = post("/user/register", json!({"username": "secretive", "password": password}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = reg["data"]["token"].as_str().unwrap().to_owned();
    post("/user/login", json!({"username": "secretive", "password": "Wr0ng-Secret-Passw0rd"})).await.unwrap();
    // A token in a query string is refused, and must not be logged on its way out either.
    let refused = http.get(format!("{base}/user/info?token={token}")).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws?token={token}")).await.is_err());
    let mut request = format!("ws://127.0.0.1:{port}/ws").into_client_request().unwrap();
    request.headers_mut().insert("user-agent", "secret-scan".parse().unwrap());
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "req", "id": 1, "route": "/user/auth", "data": {"token": token}}).to_string().into(),
    ))
    .await
    .unwrap();
    post("/user/changePassword", json!({"username": "secretive"})).await.unwrap();
    // The notice is written in the background: wait for its whole line.
    let outbox = server.dir.path().join("outbox.jsonl");
    let line = loop {
        let text = std::fs::read_to_string(&outbox).unwrap_or_default();
        if let Some((line, _)) = text.split_once('\n') {
            break line.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(30), "no reset notice");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let notice: Value = serde_json::from_str(&line).unwrap();
    let secret = notice["resetToken"].as_str().unwrap().to_owned();
    let new_password = "N3w-Secret-Passw0rd";
    post("/user/resetPassword", json!({"resetToken": secret, "password": new_password})).await.unwrap();
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();

    let logged = server.log();
    assert!(logged.len() > 100, "the server logged almost nothing at debug level: {logged}");
    let signature = token.rsplit('.').next().unwrap();
    for (what, value) in [
        ("password", password),
        ("wrong password", "Wr0ng-Secret-Passw0rd"),
        ("new password", new_password),
        ("token", token.as_str()),
        ("token signature", signature),
        ("reset secret", secret.as_str()),
    ] {
        assert!(!logged.contains(value), "the log contains the {what}");
    }
}

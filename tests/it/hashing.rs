//! Cheap checks come before expensive ones: a bogus reset secret, a taken name or bad input
//! never costs an argon2 run, and a flood of new-password hashing fails fast with
//! `rate_limited` instead of queueing, while logins keep their own threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::Rng;
use serde_json::json;

use crate::harness::{Api, Backend, Server, Via, user};
use crate::on_both;

on_both!(
    refusals_come_before_hashing,
    a_hashing_flood_fails_fast_and_spares_logins,
    password_guessing_from_a_few_addresses_keeps_others_logins_going
);

const NEW_QUEUED: &str = r#"chatgate_password_hashes_total{pool="new",outcome="queued"}"#;
const NEW_REFUSED: &str = r#"chatgate_password_hashes_total{pool="new",outcome="refused"}"#;

fn random_secret() -> String {
    let mut rng = rand::rng();
    (0..64).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap()).collect()
}

async fn refusals_come_before_hashing(backend: Backend) {
    let server = Server::start_with(backend, &["--hash-concurrency", "1"]).await;
    user(&server, Via::Http, "hash-alice").await;
    let hashed = server.metric(NEW_QUEUED).await;
    assert_eq!(hashed, 1.0, "registering hashed one new password");

    let mut anyone = Api::new(&server, Via::Http).await;
    let resets = (0..64).map(|_| {
        let server = &server;
        async move {
            let mut api = Api::new(server, Via::Http).await;
            let data = json!({"resetToken": random_secret(), "password": "a brand new password"});
            api.call("/user/resetPassword", data).await
        }
    });
    for reply in futures::future::join_all(resets).await {
        reply.fails("auth.reset_token_invalid");
    }
    let taken = json!({"username": "hash-alice", "password": "another long password"});
    anyone.call("/user/register", taken).await.fails("user.exists");
    let short = json!({"username": "hash-bob", "password": "short"});
    anyone.call("/user/register", short).await.fails("validation.password");
    let bad_name = json!({"username": "x", "password": "a long enough password"});
    anyone.call("/user/register", bad_name).await.fails("validation.username");
    assert_eq!(server.metric(NEW_QUEUED).await, hashed, "none of the refusals hashed a password");
}

async fn a_hashing_flood_fails_fast_and_spares_logins(backend: Backend) {
    let server = Server::start_with(backend, &["--hash-concurrency", "1"]).await;
    user(&server, Via::Http, "flood-carol").await;
    // 48 registrations at once against one hashing thread with a queue of 8.
    let registrations = (0..48).map(|i| {
        let server = &server;
        async move {
            let mut api = Api::new(server, Via::Http).await;
            let data = json!({"username": format!("flood-{i}"), "password": "a long enough password"});
            api.call("/user/register", data).await
        }
    });
    let login = async {
        let mut carol = Api::new(&server, Via::Http).await;
        carol.call("/user/login", json!({"username": "flood-carol", "password": "a long enough password"})).await
    };
    let (replies, login) = tokio::join!(futures::future::join_all(registrations), login);
    login.ok();
    let refused = replies.iter().filter(|r| r.error.as_deref() == Some("rate_limited")).count();
    let registered = replies.iter().filter(|r| r.error.is_none()).count();
    assert_eq!(refused + registered, replies.len(), "each registration is done or refused as busy");
    assert!(refused > 0 && registered > 0, "{registered} registered, {refused} refused");
    assert_eq!(server.metric(NEW_REFUSED).await, refused as f64);
}

/// An HTTP client whose connections come from the address `from`.
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(from)).build().unwrap()
}

/// A login at `base` by `http`; answers the reply's reason, or `None` on success.
async fn login_at(http: &reqwest::Client, base: &str, username: &str, password: &str) -> Option<String> {
    let login = http.post(format!("{base}/user/login")).json(&json!({"username": username, "password": password}));
    let reply = crate::harness::json_reply(login).await;
    reply["error"].as_str().map(str::to_owned)
}

async fn password_guessing_from_a_few_addresses_keeps_others_logins_going(backend: Backend) {
    // One checking thread, so that guesses fill its queue; the suite's lifted login limits let
    // them all through to it.
    let server = Server::start_with(backend, &["--hash-concurrency", "1"]).await;
    user(&server, Via::Http, "guess-victim").await;
    user(&server, Via::Http, "guess-person").await;
    // The guesser's first miss marks its address; then 64 guessers keep the queue full.
    let base = server.url("");
    assert_eq!(
        login_at(&client_from([127, 0, 0, 2]), &base, "guess-victim", "a wrong guess").await.as_deref(),
        Some("auth.invalid_credentials")
    );
    let stop = Arc::new(AtomicBool::new(false));
    let queue_full = Arc::new(tokio::sync::Notify::new());
    let guessers: Vec<_> = (0..64)
        .map(|_| {
            let (base, stop, queue_full) = (base.clone(), stop.clone(), queue_full.clone());
            tokio::spawn(async move {
                let http = client_from([127, 0, 0, 2]);
                while !stop.load(Ordering::Relaxed) {
                    let answer = login_at(&http, &base, "guess-victim", "a wrong guess").await;
                    if answer.as_deref() == Some("rate_limited") {
                        queue_full.notify_one();
                    }
                }
            })
        })
        .collect();
    queue_full.notified().await;
    // Someone else, from another address, gets in at once, every time.
    let (mut answers, person) = (Vec::new(), client_from([127, 0, 0, 3]));
    for _ in 0..10 {
        answers.push(login_at(&person, &base, "guess-person", "a long enough password").await);
    }
    stop.store(true, Ordering::Relaxed);
    for guesser in guessers {
        guesser.await.unwrap();
    }
    assert_eq!(answers, vec![None; 10], "a person's logins while another address guesses");
}

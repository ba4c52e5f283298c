//! /metrics has bounded cardinality: label values come from the route table (with one
//! `unknown`), a fixed set of status classes and a fixed set of reasons, whatever paths and
//! routes anonymous clients make up, and however many of them are rate-limited.

use std::collections::BTreeSet;

use rand::Rng;
use serde_json::json;

use crate::harness::{Backend, Server, Via, Wire, Ws, user};

/// The series in the exposition (names with labels), and its size.
async fn exposition(server: &Server) -> (BTreeSet<String>, usize) {
    let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.rsplit_once(' ').map_or(l, |(series, _)| series).to_owned())
        .collect();
    (series, text.len())
}

/// `count` requests to made-up paths over HTTP (both methods, anonymous) and made-up routes on
/// a signed-in socket.
async fn made_up_requests(server: &Server, token: &str, count: usize) {
    let http = reqwest::Client::new();
    let mut ws = Ws::connect(server, Wire::Json, "", Some(token)).await.unwrap();
    for i in 0..count {
        let path: String = {
            let mut rng = rand::rng();
            let len = rng.random_range(1..40);
            (0..len).map(|_| rng.random_range(b'a'..=b'z') as char).collect()
        };
        match i % 3 {
            0 => drop(http.get(server.url(&format!("/{path}"))).send().await.unwrap()),
            1 => drop(http.post(server.url(&format!("/user/{path}"))).json(&json!({})).send().await.unwrap()),
            _ => {
                let reply = ws.request(&format!("/{path}"), json!({})).await;
                assert!(reply["error"].is_string(), "{reply}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_paths_add_no_series() {
    // A tight per-address limit, so that most of the made-up requests are rate-limited; the
    // first 300 meet every label the rest can (route.unknown on each transport, rate_limited).
    let server = Server::start_with(Backend::Sqlite, &["--rate-address", "20"]).await;
    let (api, _) = user(&server, Via::Http, "metrics-user").await;
    let token = api.token.unwrap();
    made_up_requests(&server, &token, 300).await;
    let (before, _) = exposition(&server).await;
    made_up_requests(&server, &token, 3000).await;
    let (after, bytes) = exposition(&server).await;
    let added: Vec<&String> = after.difference(&before).collect();
    assert!(added.is_empty(), "3,000 made-up paths added series: {added:?}");
    assert!(bytes < 256 * 1024, "/metrics is {bytes} bytes");
    let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"route="unknown",status="4xx",reason="route.unknown""#), "{text}");
    assert!(text.contains(r#"reason="rate_limited""#), "some were rate-limited: {text}");
}

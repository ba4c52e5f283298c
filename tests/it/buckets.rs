//! Every transport charges the same buckets: a user's HTTP calls with their token count against
//! the per-user limit their sockets' frames count against, and so do their uploads and
//! downloads, which count against their address's bucket too.

use serde_json::json;

use crate::harness::{Api, Backend, Server, Via, Wire, device, upload_at, user};
use crate::on_both;

on_both!(
    http_and_socket_share_the_user_bucket,
    a_file_flood_is_refused_and_hurts_no_one_else,
    refusals_are_answered_when_the_wait_is_over
);

async fn http_and_socket_share_the_user_bucket(backend: Backend) {
    // 5 requests a second per user, bursts of 10; sessions and addresses keep the suite's
    // lifted limits, so only the user bucket can refuse.
    let server = Server::start_with(backend, &["--rate-user", "5"]).await;
    let (http, _) = user(&server, Via::Http, "bucket-user").await;
    let mut ws = device(&server, &http, Wire::Json).await;
    let mut http = Api::with_token(&server, http.token.clone().unwrap());
    // A refusal is answered when the bucket has room again (the server holds it that long), so
    // what passes is bounded by the burst plus the rate over the time taken.
    let started = std::time::Instant::now();
    let (mut served, mut refused) = (0, 0);
    for _ in 0..30 {
        match http.call("/user/info", json!({})).await.error.as_deref() {
            Some("rate_limited") => refused += 1,
            _ => served += 1,
        }
    }
    let allowed = 10.0 + 5.0 * started.elapsed().as_secs_f64() + 1.0;
    assert!(refused > 0 && f64::from(served) <= allowed, "{served} served ({allowed:.0} allowed), {refused} refused");
    // The socket of the same user finds the bucket empty too: of three frames in a row, at most
    // one finds the token that came back meanwhile.
    let mut refused_frames = 0;
    for _ in 0..3 {
        if ws.request("/user/info", json!({})).await["error"] == "rate_limited" {
            refused_frames += 1;
        }
    }
    assert!(refused_frames >= 2, "the socket's frames were charged to the same user: {refused_frames} of 3 refused");
}

async fn a_file_flood_is_refused_and_hurts_no_one_else(backend: Backend) {
    // 5 requests a second per user, bursts of 10; addresses keep the suite's lifted limits.
    let server = Server::start_with(backend, &["--rate-user", "5"]).await;
    let (flooder, _) = user(&server, Via::Http, "file-flooder").await;
    let (mut other, _) = user(&server, Via::Http, "file-bystander").await;
    let token = flooder.token.clone().unwrap();
    let up = upload_at(&server.url(""), &token, b"a small file".to_vec()).await;
    let url = server.url(up["data"]["url"].as_str().unwrap());
    let http = reqwest::Client::new();
    let (mut served, mut refused) = (0, 0);
    for _ in 0..40 {
        let download = http.get(&url).bearer_auth(&token).send().await.unwrap().status().as_u16();
        let upload = upload_at(&server.url(""), &token, b"more".to_vec()).await;
        match (download, upload["error"].as_str()) {
            (200, None) => served += 2,
            (429, Some("rate_limited")) => refused += 2,
            (d, u) => {
                served += usize::from(d == 200) + usize::from(u.is_none());
                refused += usize::from(d == 429) + usize::from(u == Some("rate_limited"));
            }
        }
    }
    assert!(served <= 30 && refused >= 50, "files are charged to the user: {served} served, {refused} refused");
    // Another user's calls and files go on.
    other.call("/user/info", json!({})).await.ok();
    let theirs = upload_at(&server.url(""), other.token.as_deref().unwrap(), b"mine".to_vec()).await;
    assert_eq!(theirs["code"], 0, "{theirs}");

    // Per address too: from one address, signed links (which name no user) run dry as well.
    let server = Server::start_with(backend, &["--rate-address", "5"]).await;
    let (owner, _) = user(&server, Via::Http, "link-owner").await;
    let up = upload_at(&server.url(""), owner.token.as_deref().unwrap(), b"linked".to_vec()).await;
    let link = server.url(up["data"]["link"].as_str().unwrap());
    let mut limited = 0;
    for _ in 0..30 {
        if http.get(&link).send().await.unwrap().status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 15, "signed-link downloads are charged to the address: {limited} of 30 refused");
}

/// A refused HTTP request is answered after the wait it announces (up to 250 ms), so that a
/// client retrying at once, as a flood does, can't spin the server's CPU on refusals.
async fn refusals_are_answered_when_the_wait_is_over(backend: Backend) {
    let server = Server::start_with(backend, &["--rate-address", "2"]).await;
    let http = reqwest::Client::new();
    let mut held = Vec::new();
    for _ in 0..12 {
        let started = std::time::Instant::now();
        let reply: serde_json::Value = http.get(server.url("/user/info")).send().await.unwrap().json().await.unwrap();
        if reply["error"] == "rate_limited" {
            held.push((started.elapsed().as_millis() as u64, reply["retryAfter"].as_u64().unwrap()));
        }
    }
    assert!(held.len() >= 4, "the address bucket refused: {held:?}");
    // What is left of the wait is announced: the whole wait was the time taken plus that.
    for (took, rest) in held {
        assert!(took + 5 >= (took + rest).min(250), "answered after {took} ms, announcing {rest} ms more");
    }
}

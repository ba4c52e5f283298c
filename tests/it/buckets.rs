//! Every transport charges the same buckets: a user's HTTP calls with their token count against
//! the per-user limit their sockets' frames count against.

use serde_json::json;

use crate::harness::{Api, Backend, Server, Via, Wire, device, user};
use crate::on_both;

on_both!(http_and_socket_share_the_user_bucket);

async fn http_and_socket_share_the_user_bucket(backend: Backend) {
    // 5 requests a second per user, bursts of 10; sessions and addresses keep the suite's
    // lifted limits, so only the user bucket can refuse.
    let server = Server::start_with(backend, &["--rate-user", "5"]).await;
    let (http, _) = user(&server, Via::Http, "bucket-user").await;
    let mut ws = device(&server, &http, Wire::Json).await;
    let mut http = Api::with_token(&server, http.token.clone().unwrap());
    let mut refused = 0;
    for _ in 0..30 {
        if http.call("/user/info", json!({})).await.error.as_deref() == Some("rate_limited") {
            refused += 1;
        }
    }
    assert!(refused >= 15, "HTTP calls with a token were charged to the user: {refused} of 30 refused");
    // The socket of the same user finds the bucket empty too.
    let reply = ws.request("/user/info", json!({})).await;
    assert_eq!(reply["error"], "rate_limited", "{reply}");
}
